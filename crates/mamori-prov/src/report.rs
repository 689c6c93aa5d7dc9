//! The result for a person and for programs: start, entry point and why, the chain from the
//! entry to the detection point, what was modified, the traced nodes and (merged) edges,
//! counts and timings — serialised as JSON.

use serde::Serialize;

use crate::graph::{Node, NodeId, Op, Origin, ProvGraph, Stamp};
use crate::start::Direction;
use crate::track::{group_edges, EntryKind, Trace};

/// A moment, three ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct When {
    /// `2026-12-06T12:00:01.234Z`.
    pub utc: String,
    /// Nanoseconds since the Unix epoch.
    pub ns: i64,
    /// Audit serial (`u64::MAX` for "any event of that millisecond").
    pub serial: u64,
}

impl From<Stamp> for When {
    fn from(s: Stamp) -> Self {
        When {
            utc: s.utc(),
            ns: s.time_ns,
            serial: s.serial,
        }
    }
}

/// The detection point.
#[derive(Debug, Clone, Serialize)]
pub struct ReportStart {
    /// As given (`file:/tmp/x@…`).
    pub spec: String,
    /// Resolved node.
    pub node: NodeId,
    /// Its kind.
    pub kind: &'static str,
    /// Its label.
    pub label: String,
    /// Its threshold.
    pub at: When,
}

/// An entry point (or candidate).
#[derive(Debug, Clone, Serialize)]
pub struct ReportEntry {
    /// Node.
    pub node: NodeId,
    /// Kind of entry.
    pub kind: EntryKind,
    /// Label.
    pub label: String,
    /// When its input reached the traced processes.
    pub at: When,
    /// Why.
    pub why: String,
}

/// One step of the chain from the entry point to the detection point.
#[derive(Debug, Clone, Serialize)]
pub struct ChainStep {
    /// Node.
    pub node: NodeId,
    /// `process`, `file`, `socket`, `pipe`.
    pub kind: &'static str,
    /// Label.
    pub label: String,
    /// The edge from the previous step into this one (`None` for the entry).
    pub by: Option<ChainLink>,
}

/// The edge between two chain steps.
#[derive(Debug, Clone, Serialize)]
pub struct ChainLink {
    /// Operation.
    pub op: Op,
    /// When.
    pub at: When,
    /// Detail (`old → new` for a rename, the signal, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A process of the chain or the trace, for a person.
#[derive(Debug, Clone, Serialize)]
pub struct ReportProcess {
    /// Node.
    pub node: NodeId,
    /// Pid.
    pub pid: u32,
    /// Parent pid (0: unknown).
    pub ppid: u32,
    /// Executable (empty: never seen).
    pub exe: String,
    /// Arguments.
    pub argv: Vec<String>,
    /// uid (`u32::MAX`: unknown).
    pub uid: u32,
    /// Effective uid.
    pub euid: u32,
    /// How the node was made.
    pub origin: Origin,
    /// When the image started (exec, fork or first sighting).
    pub started: When,
}

/// A file modified by a traced process.
#[derive(Debug, Clone, Serialize)]
pub struct ModifiedFile {
    /// Node.
    pub node: NodeId,
    /// All names seen.
    pub paths: Vec<String>,
    /// What was done to it, in order of first occurrence.
    pub ops: Vec<Op>,
    /// The first modification in the trace.
    pub first: When,
}

/// A traced node.
#[derive(Debug, Clone, Serialize)]
pub struct ReportNode {
    /// Id.
    pub id: NodeId,
    /// Label.
    pub label: String,
    /// Threshold.
    pub threshold: When,
    /// The start node.
    pub start: bool,
    /// The entry point.
    pub entry: bool,
    /// The node's own data (`kind` and its fields).
    #[serde(flatten)]
    pub node: Node,
}

/// A merged trace edge.
#[derive(Debug, Clone, Serialize)]
pub struct ReportEdge {
    /// Source.
    pub src: NodeId,
    /// Sink.
    pub dst: NodeId,
    /// Operation.
    pub op: Op,
    /// Events merged.
    pub count: u32,
    /// First event.
    pub first: When,
    /// Last event.
    pub last: When,
    /// The first event's detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// On the chain from the entry point to the detection point.
    pub on_chain: bool,
    /// `op 12:00:01.234` or `op ×3 12:00:01.234–12:00:02.000`.
    pub label: String,
}

/// Sizes.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// Events pushed to the graph builder.
    pub events: u64,
    /// Events the builder used.
    pub used_events: u64,
    /// Graph nodes.
    pub graph_nodes: usize,
    /// Graph edges.
    pub graph_edges: usize,
    /// Trace nodes.
    pub trace_nodes: usize,
    /// Trace edges (events).
    pub trace_edges: usize,
    /// Trace edges after merging.
    pub trace_edge_groups: usize,
    /// Edges left out by pruning.
    pub pruned_edges: u64,
    /// Edges examined by the tracker.
    pub examined_edges: u64,
}

/// Times.
#[derive(Debug, Clone, Serialize)]
pub struct Timings {
    /// Graph build (see [`crate::GraphStats::build`]).
    pub build_ms: f64,
    /// Tracking, entry detection included.
    pub track_ms: f64,
}

/// Entry candidates listed in a report; a big trace can have thousands of root processes.
pub const MAX_CANDIDATES: usize = 20;

/// The report. See the module documentation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Backward or forward.
    pub direction: Direction,
    /// The detection point.
    pub start: ReportStart,
    /// Backward: the entry point.
    pub entry: Option<ReportEntry>,
    /// Backward: the candidates, most likely first (at most [`MAX_CANDIDATES`]).
    pub entry_candidates: Vec<ReportEntry>,
    /// How many candidates there were in all.
    pub entry_candidates_total: usize,
    /// Backward: the steps from the entry point to the detection point.
    pub chain: Vec<ChainStep>,
    /// The processes of the chain, in order.
    pub process_chain: Vec<ReportProcess>,
    /// Every traced process, by start.
    pub processes: Vec<ReportProcess>,
    /// Files that traced processes modified in the trace.
    pub modified_files: Vec<ModifiedFile>,
    /// Traced nodes in the order reached.
    pub nodes: Vec<ReportNode>,
    /// Traced edges, merged, by first time.
    pub edges: Vec<ReportEdge>,
    /// Sizes.
    pub counts: Counts,
    /// Times.
    pub timings: Timings,
}

fn process_of(g: &ProvGraph, id: NodeId) -> Option<ReportProcess> {
    let p = g.node(id).as_process()?;
    Some(ReportProcess {
        node: id,
        pid: p.pid,
        ppid: p.ppid,
        exe: p.exe.clone(),
        argv: p.argv.clone(),
        uid: p.uid,
        euid: p.euid,
        origin: p.origin,
        started: Stamp {
            time_ns: p.start_ns,
            serial: p.start_serial,
        }
        .into(),
    })
}

/// `op 12:00:01.234`, or with a count and a span.
pub(crate) fn edge_label(op: Op, count: u32, first: Stamp, last: Stamp) -> String {
    use crate::timefmt::format_clock;
    if count == 1 {
        format!("{op} {}", format_clock(first.time_ns))
    } else {
        format!(
            "{op} ×{count} {}–{}",
            format_clock(first.time_ns),
            format_clock(last.time_ns)
        )
    }
}

/// The chain of edges from the entry point to the detection point (backward traces).
pub(crate) fn chain_edges(g: &ProvGraph, t: &Trace) -> Vec<crate::EdgeId> {
    let Some(entry) = &t.entry else {
        return Vec::new();
    };
    if t.direction != Direction::Backward {
        return Vec::new();
    }
    match (entry.kind, entry.edge) {
        // A socket's chosen input edge, then on from the process it reached.
        (EntryKind::NetworkPeer | EntryKind::LocalSocket, Some(eid)) => {
            let mut v = vec![eid];
            v.extend(t.path_to_start(g.edge(eid).dst, g));
            v
        }
        _ => t.path_to_start(entry.node, g),
    }
}

impl Report {
    /// The report of `trace` on `graph`; `spec` is the detection point as given.
    pub fn new(graph: &ProvGraph, trace: &Trace, spec: &str) -> Report {
        let g = graph;
        let entry_of = |e: &crate::Entry| ReportEntry {
            node: e.node,
            kind: e.kind,
            label: g.label(e.node),
            at: e.at.into(),
            why: e.why.clone(),
        };
        let chain_ids = chain_edges(g, trace);
        let mut chain = Vec::new();
        if let Some(first) = chain_ids.first() {
            let n = g.edge(*first).src;
            chain.push(ChainStep {
                node: n,
                kind: g.node(n).kind(),
                label: g.label(n),
                by: None,
            });
        }
        for &eid in &chain_ids {
            let e = g.edge(eid);
            chain.push(ChainStep {
                node: e.dst,
                kind: g.node(e.dst).kind(),
                label: g.label(e.dst),
                by: Some(ChainLink {
                    op: e.op,
                    at: e.stamp.into(),
                    detail: g.detail(e).map(str::to_string),
                }),
            });
        }
        let process_chain = chain.iter().filter_map(|s| process_of(g, s.node)).collect();
        let mut processes: Vec<ReportProcess> = trace
            .nodes
            .iter()
            .filter_map(|r| process_of(g, r.node))
            .collect();
        processes.sort_by_key(|p| (p.started.ns, p.started.serial));

        let groups = group_edges(g, trace);
        let on_chain: std::collections::HashSet<(NodeId, NodeId, Op)> = chain_ids
            .iter()
            .map(|&e| {
                let e = g.edge(e);
                (e.src, e.dst, e.op)
            })
            .collect();
        let mut modified: Vec<ModifiedFile> = Vec::new();
        let mut mod_index: std::collections::HashMap<NodeId, usize> = Default::default();
        for grp in &groups {
            if let (Node::Process(_), Node::File(f)) = (g.node(grp.src), g.node(grp.dst)) {
                let i = *mod_index.entry(grp.dst).or_insert_with(|| {
                    modified.push(ModifiedFile {
                        node: grp.dst,
                        paths: f.paths.clone(),
                        ops: Vec::new(),
                        first: grp.first.into(),
                    });
                    modified.len() - 1
                });
                if !modified[i].ops.contains(&grp.op) {
                    modified[i].ops.push(grp.op);
                }
            }
        }
        let edges = groups
            .iter()
            .map(|grp| ReportEdge {
                src: grp.src,
                dst: grp.dst,
                op: grp.op,
                count: grp.count,
                first: grp.first.into(),
                last: grp.last.into(),
                detail: g.detail(g.edge(grp.first_edge)).map(str::to_string),
                on_chain: on_chain.contains(&(grp.src, grp.dst, grp.op)),
                label: edge_label(grp.op, grp.count, grp.first, grp.last),
            })
            .collect();
        let entry_node = trace.entry.as_ref().map(|e| e.node);
        let nodes = trace
            .nodes
            .iter()
            .map(|r| ReportNode {
                id: r.node,
                label: g.label(r.node),
                threshold: r.threshold.into(),
                start: r.node == trace.start.node,
                entry: Some(r.node) == entry_node,
                node: g.node(r.node).clone(),
            })
            .collect();
        let st = g.stats();
        Report {
            direction: trace.direction,
            start: ReportStart {
                spec: spec.to_string(),
                node: trace.start.node,
                kind: g.node(trace.start.node).kind(),
                label: g.label(trace.start.node),
                at: trace.start.at.into(),
            },
            entry: trace.entry.as_ref().map(entry_of),
            entry_candidates: trace
                .entry_candidates
                .iter()
                .take(MAX_CANDIDATES)
                .map(entry_of)
                .collect(),
            entry_candidates_total: trace.entry_candidates.len(),
            chain,
            process_chain,
            processes,
            modified_files: modified,
            nodes,
            edges,
            counts: Counts {
                events: st.events,
                used_events: st.used_events,
                graph_nodes: g.nodes().len(),
                graph_edges: g.edges().len(),
                trace_nodes: trace.nodes.len(),
                trace_edges: trace.edges.len(),
                trace_edge_groups: groups.len(),
                pruned_edges: trace.pruned_edges,
                examined_edges: trace.examined_edges,
            },
            timings: Timings {
                build_ms: st.build.as_secs_f64() * 1e3,
                track_ms: trace.elapsed.as_secs_f64() * 1e3,
            },
        }
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data to a string cannot fail (no maps with non-string keys).
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
