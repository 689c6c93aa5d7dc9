//! The report's JSON shape, DOT (escaping, shapes, marks) and SVG through Graphviz.

use mamori_prov::testkit::{inet, Proc, Sim};
use mamori_prov::{
    backtrack, build, dot, dot_with, forward, svg, BuildOptions, Direction, DotOptions, Error,
    ProvGraph, PruneRules, Report, StartSpec, Trace,
};
use serde_json::Value;

const T0: i64 = 1_765_022_400_000_000_000;

/// A web server exploited from 203.0.113.7; the shell it spawns writes a file with quotes and
/// a backslash in its name.
fn scenario() -> (ProvGraph, Trace) {
    let mut sim = Sim::new(T0);
    let mut httpd = Proc::new(80, 1, "/usr/sbin/httpd").uid(33);
    let lfd = sim.bind(&mut httpd, inet("0.0.0.0", 80));
    sim.accept(&mut httpd, lfd, inet("203.0.113.7", 51000));
    let mut sh = sim.fork(&httpd, 81);
    sim.exec(
        &mut sh,
        "/bin/sh",
        3,
        &["sh", "-c", r#"echo "pwned" > '/tmp/a"b\c'"#],
    );
    sim.create(&mut sh, r#"/tmp/a"b\c"#, 42);
    let g = build(&sim.events, &BuildOptions::default());
    let start: StartSpec = r#"file:/tmp/a"b\c"#.parse().unwrap();
    let t = backtrack(
        &g,
        start.resolve(&g, Direction::Backward).unwrap(),
        &PruneRules::default(),
    );
    (g, t)
}

#[test]
fn dot_escapes_labels_and_marks_the_points() {
    let (g, t) = scenario();
    let d = dot(&g, &t);
    assert!(d.starts_with("digraph provenance {"));
    // Quotes and backslashes escaped in the file's name and the shell's argv.
    assert!(d.contains(r#"/tmp/a\"b\\c"#), "{d}");
    assert!(
        d.contains(r#"sh -c echo \"pwned\" > '/tmp/a\"b\\c'"#),
        "{d}"
    );
    // No raw quote breaks a label: every line's quotes pair up once escapes are removed.
    for line in d.lines() {
        let unescaped = line.replace("\\\\", "").replace("\\\"", "");
        assert_eq!(unescaped.matches('"').count() % 2, 0, "unbalanced: {line}");
    }
    // Shapes per kind; entry and detection point marked.
    let line_of = |needle: &str| d.lines().find(|l| l.contains(needle)).unwrap().to_string();
    let httpd = line_of("httpd  [pid 80]");
    assert!(httpd.contains("shape=box"));
    let file = line_of("DETECTION POINT");
    assert!(file.contains("shape=note") && file.contains("penwidth=3"));
    let peer = line_of("ENTRY POINT");
    assert!(peer.contains("shape=diamond") && peer.contains("color=red"));
    assert!(peer.contains("peripheries=2") && peer.contains("203.0.113.7:51000"));
    assert!(peer.contains("network peer"));
    // Edges labelled with the operation and the UTC time; the chain in red.
    assert!(
        d.contains("label=\"create 12:00:00.004\", color=red"),
        "{d}"
    );
    assert!(
        d.contains("label=\"accept 12:00:00.001\", color=red"),
        "{d}"
    );
}

#[test]
fn dot_node_limit_keeps_the_chain() {
    let (g, t) = scenario();
    let d = dot_with(&g, &t, &DotOptions { max_nodes: Some(2) });
    assert!(d.contains("ENTRY POINT") && d.contains("DETECTION POINT"));
    assert!(d.contains(&format!("of {} nodes shown", t.nodes.len())));
}

#[test]
fn svg_through_graphviz() {
    let (g, t) = scenario();
    match svg(&dot(&g, &t)) {
        Ok(s) => {
            assert!(s.contains("<svg"), "{s}");
            assert!(s.contains("ENTRY POINT"));
            // Graphviz turned the escapes back into the name (XML-escaped in SVG).
            assert!(s.contains(r#"/tmp/a&quot;b\c"#), "{s}");
        }
        // Machines without Graphviz: the error must say what to do.
        Err(e @ Error::GraphvizMissing { .. }) => {
            assert!(e.to_string().contains("install graphviz"));
            eprintln!("skipped: {e}");
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn json_report_shape() {
    let (g, t) = scenario();
    let r = Report::new(&g, &t, r#"file:/tmp/a"b\c"#);
    let v: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["direction"], "backward");
    assert_eq!(v["start"]["spec"], r#"file:/tmp/a"b\c"#);
    assert_eq!(v["start"]["kind"], "file");
    assert_eq!(v["start"]["label"], r#"/tmp/a"b\c"#);
    assert_eq!(v["start"]["at"]["utc"], "2025-12-06T12:00:00.004Z");
    assert!(v["start"]["at"]["ns"].is_i64() && v["start"]["at"]["serial"].is_u64());
    assert_eq!(v["entry"]["kind"], "network_peer");
    assert_eq!(
        v["entry_candidates_total"], 2,
        "the peer, then the root process"
    );
    assert_eq!(v["entry_candidates"][1]["kind"], "root_process");
    assert_eq!(v["entry"]["label"], "203.0.113.7:51000");
    assert!(v["entry"]["why"]
        .as_str()
        .unwrap()
        .contains("latest socket input of httpd[80]"));
    let chain: Vec<&str> = v["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        chain,
        [
            "203.0.113.7:51000",
            "httpd[80]",
            "httpd[81]",
            "sh[81]",
            r#"/tmp/a"b\c"#
        ]
    );
    assert!(v["chain"][0]["by"].is_null());
    assert_eq!(v["chain"][1]["by"]["op"], "accept");
    assert_eq!(v["chain"][4]["by"]["op"], "create");
    let pc = &v["process_chain"];
    assert_eq!(pc.as_array().unwrap().len(), 3);
    assert_eq!(pc[2]["pid"], 81);
    assert_eq!(pc[2]["exe"], "/bin/sh");
    assert_eq!(pc[2]["argv"][0], "sh");
    assert_eq!(pc[2]["uid"], 33);
    assert_eq!(pc[2]["origin"], "exec");
    assert_eq!(v["modified_files"][0]["paths"][0], r#"/tmp/a"b\c"#);
    assert_eq!(v["modified_files"][0]["ops"][0], "create");
    // Nodes: their own fields flattened beside id/label/threshold.
    let nodes = v["nodes"].as_array().unwrap();
    let kinds: Vec<&str> = nodes.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"process") && kinds.contains(&"file") && kinds.contains(&"socket"));
    let file = nodes.iter().find(|n| n["kind"] == "file").unwrap();
    assert_eq!(file["inode"], 42);
    assert_eq!(file["start"], true);
    let peer = nodes.iter().find(|n| n["entry"] == true).unwrap();
    assert_eq!(
        (peer["addr"].as_str(), peer["local"].as_bool()),
        (Some("203.0.113.7:51000"), Some(false))
    );
    let e = &v["edges"][0];
    for key in [
        "src", "dst", "op", "count", "first", "last", "on_chain", "label",
    ] {
        assert!(!e[key].is_null(), "edge field {key}");
    }
    for key in [
        "events",
        "used_events",
        "graph_nodes",
        "graph_edges",
        "trace_nodes",
        "trace_edges",
        "trace_edge_groups",
        "pruned_edges",
        "examined_edges",
    ] {
        assert!(v["counts"][key].is_u64(), "counts.{key}");
    }
    assert!(v["timings"]["build_ms"].is_f64() && v["timings"]["track_ms"].is_f64());
    assert_eq!(v["counts"]["events"], 5);
}

#[test]
fn forward_report_has_no_chain() {
    let (g, t) = scenario();
    let entry = t.entry.clone().unwrap();
    let f = forward(&g, entry.anchor(), &PruneRules::default());
    let r = Report::new(&g, &f, "forward from the entry");
    assert!(r.entry.is_none() && r.chain.is_empty());
    assert_eq!(r.modified_files.len(), 1);
    let v: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["direction"], "forward");
    assert!(dot(&g, &f).contains("START"));
}
