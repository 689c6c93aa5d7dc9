//! DOT for Graphviz, and SVG through Graphviz's `dot` when it is installed.
//!
//! Processes are rounded blue boxes (program, pid, uid, arguments), files yellow notes (their
//! names), sockets diamonds (green: network peer, grey: local), pipes small circles. Edges
//! carry the operation and the UTC time (`write 12:00:01.234`; merged repeats show a count and
//! a span). The entry point has a red double border, the detection point a thick blue one, and
//! the chain between them is drawn in red.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::graph::{process_name, Node, NodeId, ProvGraph};
use crate::report::{chain_edges, edge_label};
use crate::start::Direction;
use crate::track::{group_edges, Trace};
use crate::Error;

/// Rendering limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotOptions {
    /// Draw at most this many nodes (those reached first, i.e. nearest the start; the chain's
    /// nodes always). `None`: all. Graphviz slows down past a few thousand nodes.
    pub max_nodes: Option<usize>,
}

/// Escapes text for a double-quoted DOT string: backslashes and quotes, newlines as `\n`,
/// other control characters dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Cuts text to `n` characters, with an ellipsis.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Label lines joined by DOT's `\n` (each line escaped).
fn lines(ls: &[String]) -> String {
    ls.iter().map(|l| escape(l)).collect::<Vec<_>>().join("\\n")
}

fn node_lines(g: &ProvGraph, id: NodeId) -> Vec<String> {
    match g.node(id) {
        Node::Process(p) => {
            let mut v = vec![format!("{}  [pid {}]", process_name(p), p.pid)];
            if !p.exe.is_empty() {
                v.push(short(&p.exe, 48));
            }
            if !p.argv.is_empty() {
                v.push(short(&p.argv.join(" "), 48));
            }
            if p.uid != u32::MAX {
                if p.euid != p.uid {
                    v.push(format!("uid {} euid {}", p.uid, p.euid));
                } else {
                    v.push(format!("uid {}", p.uid));
                }
            }
            v
        }
        Node::File(f) => {
            let mut v: Vec<String> = f.paths.iter().rev().take(3).map(|p| short(p, 56)).collect();
            if f.paths.len() > 3 {
                v.push(format!("(+{} more names)", f.paths.len() - 3));
            }
            if v.is_empty() {
                v.push(match f.inode {
                    Some(i) => format!("inode {i}"),
                    None => "?".into(),
                });
            }
            v
        }
        Node::Socket(s) => vec![
            short(&s.addr, 56),
            if s.local {
                "local socket"
            } else {
                "network peer"
            }
            .to_string(),
        ],
        Node::Pipe(p) => vec![format!("pipe (pid {})", p.pid)],
    }
}

fn node_style(n: &Node) -> &'static str {
    match n {
        Node::Process(_) => "shape=box, style=\"rounded,filled\", fillcolor=\"#dae8fc\"",
        Node::File(_) => "shape=note, style=filled, fillcolor=\"#fff2cc\"",
        Node::Socket(s) if s.local => "shape=diamond, style=filled, fillcolor=\"#eeeeee\"",
        Node::Socket(_) => "shape=diamond, style=filled, fillcolor=\"#d5e8d4\"",
        Node::Pipe(_) => "shape=circle, style=filled, fillcolor=\"#f5f5f5\", fontsize=8",
    }
}

/// DOT of a trace, every node.
pub fn dot(g: &ProvGraph, t: &Trace) -> String {
    dot_with(g, t, &DotOptions::default())
}

/// DOT of a trace, with limits.
pub fn dot_with(g: &ProvGraph, t: &Trace, opts: &DotOptions) -> String {
    let chain = chain_edges(g, t);
    let chain_set: HashSet<(NodeId, NodeId, crate::Op)> = chain
        .iter()
        .map(|&e| {
            let e = g.edge(e);
            (e.src, e.dst, e.op)
        })
        .collect();
    let mut shown: HashSet<NodeId> = HashSet::new();
    for &e in &chain {
        shown.insert(g.edge(e).src);
        shown.insert(g.edge(e).dst);
    }
    let limit = opts.max_nodes.unwrap_or(usize::MAX);
    for r in &t.nodes {
        if shown.len() >= limit && !shown.is_empty() {
            break;
        }
        shown.insert(r.node);
    }
    shown.insert(t.start.node);
    let entry = t.entry.as_ref().map(|e| e.node);

    let mut out = String::new();
    let what = match t.direction {
        Direction::Backward => "BackTracker from",
        Direction::Forward => "forward tracking from",
    };
    let mut title = vec![format!(
        "{what} {} at {}",
        g.label(t.start.node),
        t.start.at.utc()
    )];
    if shown.len() < t.nodes.len() {
        title.push(format!("{} of {} nodes shown", shown.len(), t.nodes.len()));
    }
    title.push(
        "boxes: processes · notes: files · diamonds: sockets (green: network) · times UTC".into(),
    );
    out.push_str("digraph provenance {\n");
    out.push_str(&format!(
        "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=12, labelloc=t, label=\"{}\"];\n",
        lines(&title)
    ));
    out.push_str("  node [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for r in &t.nodes {
        if !shown.contains(&r.node) {
            continue;
        }
        let n = g.node(r.node);
        let mut ls = node_lines(g, r.node);
        let mut extra = String::new();
        if Some(r.node) == entry {
            ls.insert(0, "ENTRY POINT".into());
            extra.push_str(", color=red, fontcolor=\"#b00000\", penwidth=2.5, peripheries=2");
        }
        if r.node == t.start.node {
            ls.insert(
                0,
                match t.direction {
                    Direction::Backward => "DETECTION POINT".into(),
                    Direction::Forward => "START".into(),
                },
            );
            extra.push_str(", color=\"#1f4e9e\", penwidth=3");
        }
        out.push_str(&format!(
            "  n{} [{}{}, label=\"{}\"];\n",
            r.node.0,
            node_style(n),
            extra,
            lines(&ls)
        ));
    }
    for grp in group_edges(g, t) {
        if !shown.contains(&grp.src) || !shown.contains(&grp.dst) {
            continue;
        }
        let mut ls = vec![edge_label(grp.op, grp.count, grp.first, grp.last)];
        if let Some(d) = g.detail(g.edge(grp.first_edge)) {
            ls.push(short(d, 60));
        }
        let style = if chain_set.contains(&(grp.src, grp.dst, grp.op)) {
            ", color=red, fontcolor=\"#b00000\", penwidth=2"
        } else {
            ""
        };
        out.push_str(&format!(
            "  n{} -> n{} [label=\"{}\"{}];\n",
            grp.src.0,
            grp.dst.0,
            lines(&ls),
            style
        ));
    }
    out.push_str("}\n");
    out
}

/// SVG of DOT text through Graphviz's `dot` on the `PATH`.
pub fn svg(dot: &str) -> Result<String, Error> {
    svg_with("dot", dot)
}

/// SVG of DOT text through the given Graphviz program.
pub fn svg_with(program: &str, dot: &str) -> Result<String, Error> {
    let mut child = Command::new(program)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::GraphvizMissing {
                    program: program.to_string(),
                }
            } else {
                Error::Graphviz {
                    program: program.to_string(),
                    message: e.to_string(),
                }
            }
        })?;
    let fail = |m: String| Error::Graphviz {
        program: program.to_string(),
        message: m,
    };
    // Feed stdin from a thread so a large output cannot fill its pipe while we still write.
    let mut stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
    let input = dot.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut stdout = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout)
            .map_err(|e| fail(e.to_string()))?;
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    let wrote = writer
        .join()
        .map_err(|_| fail("writer thread panicked".into()))?;
    if !status.success() {
        return Err(fail(format!("{status}: {}", stderr.trim())));
    }
    wrote.map_err(|e| fail(format!("writing DOT: {e}")))?;
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_newlines() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny\r\u{7}"), "x\\ny");
        assert_eq!(escape("/tmp/ünï"), "/tmp/ünï");
    }

    #[test]
    fn missing_graphviz_is_a_clear_error() {
        let e = svg_with("/nonexistent/dot-not-here", "digraph{}").unwrap_err();
        assert!(matches!(e, Error::GraphvizMissing { .. }));
        assert!(e.to_string().contains("install graphviz"));
    }

    #[test]
    fn short_cuts_with_an_ellipsis() {
        assert_eq!(short("abcdef", 4), "abc…");
        assert_eq!(short("abc", 4), "abc");
    }
}
