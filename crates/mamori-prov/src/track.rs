//! BackTracker (King & Chen, SOSP 2003) and its forward mirror.
//!
//! Backward: every object in the trace has a time threshold (the start's is the detection
//! time). Reading edges once from latest to earliest, an edge `src → dst` whose `dst` is in the
//! trace and whose time is at or before `dst`'s threshold adds `src` (threshold: the edge's
//! time, the latest moment `src` could have passed something on through it) and the edge.
//! So an event that affected an object *after* the object affected the detection point is left
//! out (a reader of the attacker's file, a later writer), while anything that affected it
//! *before* is in — including a process that wrote the file before the attacker did, which a
//! person then rules out.
//!
//! Forward: the mirror, earliest to latest, from `src` in the trace at or after its threshold
//! to `dst` (threshold: the first time it was reached).
//!
//! One pass over the edges, sorted by stamp at build time: linear in the edges before (or
//! after) the start.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::graph::{EdgeId, Node, NodeId, Op, ProvGraph, Stamp};
use crate::prune::{PruneRules, Pruner};
use crate::start::{Anchor, Direction};

/// A node reached by tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reached {
    /// The node.
    pub node: NodeId,
    /// Its threshold: backward, the latest time it could have affected the start; forward,
    /// the first time the start could have affected it.
    pub threshold: Stamp,
    /// The edge that reached it first (`None` for the start): following these from any node
    /// leads back to the start along edges in time order.
    pub via: Option<EdgeId>,
}

/// What kind of entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A network peer (a socket that is not loopback, unix or netlink): input from outside.
    NetworkPeer,
    /// A local socket (no network peer in the trace): input from another local party.
    LocalSocket,
    /// The root-most process (no network or socket input): the earliest ancestor the log shows.
    RootProcess,
}

/// An entry point candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The node.
    pub node: NodeId,
    /// Its kind.
    pub kind: EntryKind,
    /// When its input reached the traced processes (for a root process: its first traced
    /// effect).
    pub at: Stamp,
    /// The edge through which it did.
    pub edge: Option<EdgeId>,
    /// Why it was chosen, for a person.
    pub why: String,
}

impl Entry {
    /// Where forward tracking from this entry starts.
    pub fn anchor(&self) -> Anchor {
        Anchor {
            node: self.node,
            at: self.at,
        }
    }
}

/// The result of tracking.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// Backward or forward.
    pub direction: Direction,
    /// The start node and threshold.
    pub start: Anchor,
    /// Nodes in the order they were reached, the start first.
    pub nodes: Vec<Reached>,
    /// Edges that joined the trace, in the order found (backward: latest first).
    pub edges: Vec<EdgeId>,
    /// Backward: the entry point chosen (see [`entry_candidates`](Self::entry_candidates)).
    pub entry: Option<Entry>,
    /// Backward: every candidate, most likely first.
    pub entry_candidates: Vec<Entry>,
    /// Edges that met the time rule but were left out by the pruning rules.
    pub pruned_edges: u64,
    /// Edges examined.
    pub examined_edges: u64,
    /// Time spent tracking (entry detection included).
    #[serde(serialize_with = "ser_ms")]
    pub elapsed: Duration,
    /// Per graph node: its position in `nodes`, or `u32::MAX` (a vector, not a map: tracking
    /// a million nodes must stay well under a second).
    #[serde(skip)]
    index: Vec<u32>,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

impl Trace {
    /// Whether the node was reached.
    pub fn contains(&self, id: NodeId) -> bool {
        self.pos(id).is_some()
    }

    /// The node's entry in [`nodes`](Self::nodes).
    pub fn reached(&self, id: NodeId) -> Option<&Reached> {
        self.pos(id).map(|i| &self.nodes[i])
    }

    fn pos(&self, id: NodeId) -> Option<usize> {
        match self.index.get(id.index()) {
            Some(&i) if i != u32::MAX => Some(i as usize),
            _ => None,
        }
    }

    /// The path along `via` edges from `node` to the start, as edges (empty for the start or a
    /// node not reached). Backward these lead from cause to detection point in time order;
    /// forward, from the start to `node` reversed.
    pub fn path_to_start(&self, node: NodeId, g: &ProvGraph) -> Vec<EdgeId> {
        let mut out = Vec::new();
        let mut cur = node;
        while let Some(r) = self.reached(cur) {
            let Some(e) = r.via else {
                break;
            };
            out.push(e);
            let edge = g.edge(e);
            cur = match self.direction {
                Direction::Backward => edge.dst,
                Direction::Forward => edge.src,
            };
            if out.len() > self.nodes.len() {
                break; // cannot happen (via edges form a tree); guards a corrupt trace
            }
        }
        out
    }
}

/// Sentinel threshold for "not in the trace" backward: below every real stamp, so the one
/// comparison `edge.stamp <= threshold[dst]` also tests membership.
const OUT_BACK: Stamp = Stamp::MIN;
/// The same forward: above every real stamp.
const OUT_FWD: Stamp = Stamp::MAX;

/// BackTracker from `start`. See the module documentation for the rule.
pub fn backtrack(g: &ProvGraph, start: Anchor, rules: &PruneRules) -> Trace {
    let t0 = Instant::now();
    let edges = g.edges();
    let mut thr = vec![OUT_BACK; g.nodes().len()];
    thr[start.node.index()] = start.at;
    let mut nodes = vec![Reached {
        node: start.node,
        threshold: start.at,
        via: None,
    }];
    let mut found = Vec::new();
    let mut pruner = Pruner::new(rules, g, start.node);
    let mut pruned = 0u64;
    // Edges after the start's threshold cannot qualify: every threshold is at most the start's.
    let upto = edges.partition_point(|e| e.stamp <= start.at);
    for i in (0..upto).rev() {
        let e = &edges[i];
        let d = thr[e.dst.index()];
        if e.stamp > d {
            continue; // dst not in the trace (OUT_BACK), or the event came after its threshold
        }
        if d == OUT_BACK {
            continue; // only for a stamp equal to the sentinel, which no event has
        }
        // What a network peer received came from outside the host's view: stop there.
        if e.dst != start.node && !rules.cross_network_peers && g.node(e.dst).is_network_peer() {
            continue;
        }
        let s = e.src.index();
        if thr[s] == OUT_BACK {
            if pruner.source_pruned(e) {
                pruned += 1;
                continue;
            }
            thr[s] = e.stamp;
            nodes.push(Reached {
                node: e.src,
                threshold: e.stamp,
                via: Some(EdgeId(i as u32)),
            });
        } else if e.stamp > thr[s] {
            thr[s] = e.stamp;
        }
        found.push(EdgeId(i as u32));
    }
    let mut trace = Trace {
        direction: Direction::Backward,
        start,
        index: index_of(&nodes, g.nodes().len()),
        nodes,
        edges: found,
        entry: None,
        entry_candidates: Vec::new(),
        pruned_edges: pruned,
        examined_edges: upto as u64,
        elapsed: Duration::ZERO,
    };
    trace.entry_candidates = entry_candidates(g, &trace);
    trace.entry = trace.entry_candidates.first().cloned();
    trace.elapsed = t0.elapsed();
    trace
}

/// Forward tracking from `start`: everything it could have affected at or after its threshold.
pub fn forward(g: &ProvGraph, start: Anchor, rules: &PruneRules) -> Trace {
    let t0 = Instant::now();
    let edges = g.edges();
    let mut thr = vec![OUT_FWD; g.nodes().len()];
    thr[start.node.index()] = start.at;
    let mut nodes = vec![Reached {
        node: start.node,
        threshold: start.at,
        via: None,
    }];
    let mut found = Vec::new();
    let mut pruner = Pruner::new(rules, g, start.node);
    let mut pruned = 0u64;
    let from = edges.partition_point(|e| e.stamp < start.at);
    for (i, e) in edges.iter().enumerate().skip(from) {
        let s = thr[e.src.index()];
        if e.stamp < s || s == OUT_FWD {
            continue;
        }
        // A network peer passes nothing on to its other clients that we can see.
        if e.src != start.node && !rules.cross_network_peers && g.node(e.src).is_network_peer() {
            continue;
        }
        let d = e.dst.index();
        if thr[d] == OUT_FWD {
            if pruner.sink_pruned(e) {
                pruned += 1;
                continue;
            }
            thr[d] = e.stamp;
            nodes.push(Reached {
                node: e.dst,
                threshold: e.stamp,
                via: Some(EdgeId(i as u32)),
            });
        } else if e.stamp < thr[d] {
            thr[d] = e.stamp;
        }
        found.push(EdgeId(i as u32));
    }
    let examined = (edges.len() - from) as u64;
    let mut trace = Trace {
        direction: Direction::Forward,
        start,
        index: index_of(&nodes, g.nodes().len()),
        nodes,
        edges: found,
        entry: None,
        entry_candidates: Vec::new(),
        pruned_edges: pruned,
        examined_edges: examined,
        elapsed: Duration::ZERO,
    };
    trace.elapsed = t0.elapsed();
    trace
}

fn index_of(nodes: &[Reached], graph_nodes: usize) -> Vec<u32> {
    let mut v = vec![u32::MAX; graph_nodes];
    for (i, r) in nodes.iter().enumerate() {
        v[r.node.index()] = i as u32;
    }
    v
}

/// Entry point candidates of a backward trace, most likely first.
///
/// Sockets: for each traced process that received input from sockets, only its *latest* such
/// input counts — a long-lived server (sshd, a web server) received many connections before
/// the one that led on, and the one closest before is the one that did. Among those, the
/// earliest is the entry: an attacker's later inputs (a reverse shell's commands) come after
/// the way in. Network peers come before local sockets. Without socket input, the root-most
/// processes (no traced parent or other cause) are the candidates, earliest first.
fn entry_candidates(g: &ProvGraph, t: &Trace) -> Vec<Entry> {
    // Per receiving process: its latest socket input, network peers and local sockets apart.
    let mut latest: [BTreeMap<NodeId, (Stamp, EdgeId)>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut has_in = vec![false; t.nodes.len()];
    for &eid in &t.edges {
        let e = g.edge(eid);
        if let Some(di) = t.pos(e.dst) {
            has_in[di] = true;
        }
        if let (Node::Socket(s), Node::Process(_)) = (g.node(e.src), g.node(e.dst)) {
            let slot = &mut latest[usize::from(s.local)];
            let cur = slot.entry(e.dst).or_insert((e.stamp, eid));
            if e.stamp > cur.0 {
                *cur = (e.stamp, eid);
            }
        }
    }
    let mut out = Vec::new();
    for (local, kind) in [
        (0usize, EntryKind::NetworkPeer),
        (1, EntryKind::LocalSocket),
    ] {
        let mut c: Vec<Entry> = latest[local]
            .iter()
            .map(|(&proc_id, &(at, eid))| {
                let e = g.edge(eid);
                Entry {
                    node: e.src,
                    kind,
                    at,
                    edge: Some(eid),
                    why: format!(
                        "{} {}: the latest socket input of {} in the trace ({} at {})",
                        if local == 0 {
                            "network peer"
                        } else {
                            "local socket"
                        },
                        g.label(e.src),
                        g.label(proc_id),
                        e.op,
                        at.utc()
                    ),
                }
            })
            .collect();
        c.sort_by_key(|e| (e.at, e.node));
        // One candidate per socket (the earliest input it gave).
        let mut seen = std::collections::HashSet::new();
        c.retain(|e| seen.insert(e.node));
        out.extend(c);
    }
    // Each traced node's first effect (the earliest edge out of it), by trace position.
    let mut first_out: Vec<Option<EdgeId>> = vec![None; t.nodes.len()];
    for &eid in &t.edges {
        let e = g.edge(eid);
        if let Some(si) = t.pos(e.src) {
            match first_out[si] {
                Some(cur) if g.edge(cur).stamp <= e.stamp => {}
                _ => first_out[si] = Some(eid),
            }
        }
    }
    // Root-most processes: no edge into them in the trace.
    let mut roots: Vec<Entry> = t
        .nodes
        .iter()
        .enumerate()
        .filter(|&(i, r)| !has_in[i] && matches!(g.node(r.node), Node::Process(_)))
        .map(|(i, r)| {
            let first = first_out[i];
            let at = first.map_or(r.threshold, |eid| g.edge(eid).stamp);
            Entry {
                node: r.node,
                kind: EntryKind::RootProcess,
                at,
                edge: first,
                why: format!(
                    "root-most process {}: nothing in the trace caused it{}",
                    g.label(r.node),
                    first.map_or(String::new(), |eid| format!(
                        " (first traced effect: {} at {})",
                        g.edge(eid).op,
                        g.edge(eid).stamp.utc()
                    ))
                ),
            }
        })
        .collect();
    roots.sort_by_key(|e| (e.at, e.node));
    // A root process is the entry only when no socket gave input; listed either way.
    out.extend(roots);
    if let Some(first) = out.first_mut() {
        first.why.push_str(match first.kind {
            EntryKind::NetworkPeer => {
                "; of the traced processes' latest network inputs the earliest, so the way in \
                 (later ones, like a reverse shell's commands, came after it)"
            }
            EntryKind::LocalSocket => {
                "; no network peer in the trace, and of the traced processes' latest local \
                 socket inputs the earliest"
            }
            EntryKind::RootProcess => "; no socket input in the trace, and the earliest root",
        });
    }
    out
}

/// Trace edges merged by `(src, dst, op)`: how many, first and last stamp, in first-stamp
/// order. What a person reads (a process that read a file 200 times is one arrow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeGroup {
    /// Source node.
    pub src: NodeId,
    /// Sink node.
    pub dst: NodeId,
    /// Operation.
    pub op: Op,
    /// How many events.
    pub count: u32,
    /// The first event's stamp.
    pub first: Stamp,
    /// The last event's stamp.
    pub last: Stamp,
    /// The first event's edge (for its detail).
    pub first_edge: EdgeId,
}

/// Merges a trace's edges (see [`EdgeGroup`]).
pub fn group_edges(g: &ProvGraph, t: &Trace) -> Vec<EdgeGroup> {
    let mut map: HashMap<(NodeId, NodeId, Op), usize> = HashMap::new();
    let mut out: Vec<EdgeGroup> = Vec::new();
    let mut ids = t.edges.clone();
    ids.sort_unstable();
    for eid in ids {
        let e = g.edge(eid);
        match map.get(&(e.src, e.dst, e.op)) {
            Some(&i) => {
                let grp = &mut out[i];
                grp.count += 1;
                grp.last = grp.last.max(e.stamp);
            }
            None => {
                map.insert((e.src, e.dst, e.op), out.len());
                out.push(EdgeGroup {
                    src: e.src,
                    dst: e.dst,
                    op: e.op,
                    count: 1,
                    first: e.stamp,
                    last: e.stamp,
                    first_edge: eid,
                });
            }
        }
    }
    out
}
