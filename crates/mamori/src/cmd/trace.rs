//! `mamori trace`: root cause from Linux audit logs. `back` runs BackTracker from a detection
//! point to the intrusion's entry point; `forward` tracks from a point to everything it affected
//! after; `incident` does both (back to the entry, forward from it) and prints one incident
//! record.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use mamori_audit::{AuditEvent, ParseStats, ReaderOptions};
use mamori_core::alert::Severity;
use mamori_core::incident::{Action, Outcome};
use mamori_core::subject::Subject;
use mamori_core::Incident;
use mamori_prov::{
    backtrack, forward, BuildOptions, Direction, DotOptions, GraphBuilder, ProvGraph, PruneRules,
    Report, StartSpec, Trace,
};
use serde_json::json;

/// Trace an intrusion through audit logs.
#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// BackTracker: from a detection point back to what caused it and the entry point.
    Back(TraceArgs),
    /// From a point forward to every process, file and socket it affected afterwards.
    Forward(TraceArgs),
    /// Back from the detection point, then forward from the entry point found: one incident
    /// record (JSON) with both, the process chain and every object the intruder modified.
    Incident(TraceArgs),
}

/// What to trace and how to show it.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Audit logs (raw or ENRICHED auditd format, gzip allowed, `-` for stdin, or a collector's
    /// stream `http://HOST:PORT/api/devices/NAME/records`), read in order.
    #[arg(long = "log", required = true, value_name = "FILE")]
    pub logs: Vec<PathBuf>,
    /// The detection point: `file:/path[@TIME|@serial:N]`, `inode:N`, `pid:N[@TIME]`,
    /// `socket:IP:PORT` or `socket:unix:PATH`. TIME is Unix seconds or RFC 3339; without it, the
    /// end of the log.
    #[arg(long, value_name = "POINT")]
    pub from: String,
    /// Print the report as JSON.
    #[arg(long, conflicts_with_all = ["dot", "svg"])]
    pub json: bool,
    /// Print the traced graph in Graphviz DOT.
    #[arg(long, conflicts_with = "svg")]
    pub dot: bool,
    /// Print the traced graph as SVG (runs Graphviz `dot`).
    #[arg(long)]
    pub svg: bool,
    /// Also write report.json, trace.dot and (when Graphviz is installed) trace.svg here.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Pruning rules (TOML with `noise`, `keep`, `system`, `sockets`, `cross_network_peers`);
    /// default: mamori's (pseudo-files, caches, unmodified system files and libraries, logging
    /// sockets).
    #[arg(long, value_name = "FILE", conflicts_with = "no_prune")]
    pub prune: Option<PathBuf>,
    /// Follow every edge, noise included.
    #[arg(long)]
    pub no_prune: bool,
    /// At most this many nodes are drawn (DOT/SVG); the chain is always drawn.
    #[arg(long, default_value_t = 300, value_name = "N")]
    pub max_nodes: usize,
    /// Stop at the first malformed line (default: skip it, count it, report it).
    #[arg(long)]
    pub strict: bool,
}

/// Runs `mamori trace`.
pub fn run(command: TraceCommand) -> Result<i32> {
    match command {
        TraceCommand::Back(a) => trace_one(&a, Direction::Backward),
        TraceCommand::Forward(a) => trace_one(&a, Direction::Forward),
        TraceCommand::Incident(a) => incident(&a),
    }
}

/// The logs read and the graph built from them.
struct Loaded {
    graph: ProvGraph,
    stats: Vec<(PathBuf, ParseStats)>,
    read_ms: f64,
    build_ms: f64,
}

/// Events in serial order, from events that complete slightly out of order: each is held until
/// no open event has a smaller serial (the assembler's low watermark), then fed to the graph.
/// Memory stays that of the graph, not of the log.
struct SerialOrder {
    held: BinaryHeap<Reverse<Held>>,
}

struct Held(AuditEvent);

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.0.serial == other.0.serial
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.serial, self.0.time_ns).cmp(&(other.0.serial, other.0.time_ns))
    }
}

impl SerialOrder {
    fn push(&mut self, event: AuditEvent) {
        self.held.push(Reverse(Held(event)));
    }

    /// Feeds every held event below `watermark` (all of them when `None`).
    fn release(&mut self, watermark: Option<u64>, builder: &mut GraphBuilder) {
        while let Some(Reverse(Held(e))) = self.held.peek() {
            if watermark.is_some_and(|w| e.serial >= w) {
                break;
            }
            if let Some(Reverse(Held(e))) = self.held.pop() {
                builder.push(&e);
            }
        }
    }
}

fn load(args: &TraceArgs) -> Result<Loaded> {
    let started = Instant::now();
    let mut builder = GraphBuilder::new(BuildOptions::default());
    let mut stats = Vec::new();
    let mut build_ms = 0.0;
    for path in &args.logs {
        let opts = ReaderOptions {
            strict: args.strict,
            ..ReaderOptions::default()
        };
        let mut reader = mamori_audit::open_path_with(path, opts)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut order = SerialOrder {
            held: BinaryHeap::new(),
        };
        while let Some(event) = reader.next() {
            order.push(event.with_context(|| format!("reading {}", path.display()))?);
            let t = Instant::now();
            order.release(reader.assembler().low_watermark(), &mut builder);
            build_ms += t.elapsed().as_secs_f64() * 1e3;
        }
        order.release(None, &mut builder);
        stats.push((path.clone(), reader.stats().clone()));
    }
    let t = Instant::now();
    let graph = builder.finish();
    build_ms += t.elapsed().as_secs_f64() * 1e3;
    Ok(Loaded {
        graph,
        stats,
        read_ms: started.elapsed().as_secs_f64() * 1e3 - build_ms,
        build_ms,
    })
}

fn rules(args: &TraceArgs) -> Result<PruneRules> {
    if args.no_prune {
        return Ok(PruneRules::none());
    }
    let Some(path) = &args.prune else {
        return Ok(PruneRules::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: not valid pruning rules", path.display()))
}

fn start(args: &TraceArgs) -> Result<StartSpec> {
    args.from
        .parse()
        .with_context(|| format!("--from {:?}", args.from))
}

fn track(
    loaded: &Loaded,
    spec: &StartSpec,
    direction: Direction,
    rules: &PruneRules,
) -> Result<Trace> {
    let anchor = spec.resolve(&loaded.graph, direction).with_context(|| {
        format!(
            "finding the detection point in {} events",
            loaded.graph.stats().events
        )
    })?;
    Ok(match direction {
        Direction::Backward => backtrack(&loaded.graph, anchor, rules),
        Direction::Forward => forward(&loaded.graph, anchor, rules),
    })
}

fn report(loaded: &Loaded, trace: &Trace, spec: &str) -> Report {
    let mut report = Report::new(&loaded.graph, trace, spec);
    report.timings.build_ms = loaded.build_ms;
    report
}

fn parse_json(loaded: &Loaded) -> serde_json::Value {
    let logs: Vec<_> = loaded
        .stats
        .iter()
        .map(|(path, s)| {
            json!({
                "path": path.display().to_string(),
                "lines": s.lines, "records": s.records, "events": s.events,
                "malformed": s.malformed, "long_lines": s.long_lines,
                "lost": s.lost, "serial_gaps": s.serial_gaps,
                "malformed_examples": s.malformed_examples.iter().map(|m| json!({
                    "line": m.line, "offset": m.offset, "expected": m.expected,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "logs": logs, "read_ms": loaded.read_ms })
}

fn trace_one(args: &TraceArgs, direction: Direction) -> Result<i32> {
    let spec = start(args)?;
    let rules = rules(args)?;
    let loaded = load(args)?;
    let trace = track(&loaded, &spec, direction, &rules)?;
    let report = report(&loaded, &trace, &args.from);
    let dot = mamori_prov::dot_with(
        &loaded.graph,
        &trace,
        &DotOptions {
            max_nodes: Some(args.max_nodes),
        },
    );
    if let Some(dir) = &args.out_dir {
        write_outputs(dir, &report_json(&report, &loaded)?, &dot)?;
    }
    if args.json {
        println!("{}", report_json(&report, &loaded)?);
    } else if args.dot {
        print!("{dot}");
    } else if args.svg {
        print!("{}", mamori_prov::svg(&dot).context("rendering SVG")?);
    } else {
        print!("{}", summary(&report, &loaded));
    }
    Ok(0)
}

fn report_json(report: &Report, loaded: &Loaded) -> Result<String> {
    let mut value = serde_json::to_value(report)?;
    value["input"] = parse_json(loaded);
    Ok(serde_json::to_string_pretty(&value)?)
}

fn write_outputs(dir: &Path, json: &str, dot: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("report.json", json)?;
    write("trace.dot", dot)?;
    match mamori_prov::svg(dot) {
        Ok(svg) => write("trace.svg", &svg)?,
        Err(e) => eprintln!("mamori: trace.svg not written: {e}"),
    }
    Ok(())
}

/// The report for a person: where it started, the entry point, the chain, what was modified.
fn summary(report: &Report, loaded: &Loaded) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let c = &report.counts;
    for (path, s) in &loaded.stats {
        let _ = writeln!(
            out,
            "{}: {} records, {} events{}{}",
            path.display(),
            s.records,
            s.events,
            if s.malformed > 0 {
                format!(", {} malformed lines skipped", s.malformed)
            } else {
                String::new()
            },
            if s.lost > 0 {
                format!(", {} events lost by the kernel", s.lost)
            } else {
                String::new()
            },
        );
    }
    let _ = writeln!(
        out,
        "graph: {} nodes, {} edges (built in {:.0} ms); traced {:?}: {} nodes, {} edges in {:.1} ms",
        c.graph_nodes, c.graph_edges, report.timings.build_ms, report.direction, c.trace_nodes,
        c.trace_edges, report.timings.track_ms
    );
    let _ = writeln!(
        out,
        "start: {} at {}",
        report.start.label, report.start.at.utc
    );
    match &report.entry {
        Some(e) => {
            let _ = writeln!(
                out,
                "entry point: {} ({:?}) at {} — {}",
                e.label, e.kind, e.at.utc, e.why
            );
        }
        None => {
            let _ = writeln!(out, "entry point: none found");
        }
    }
    if !report.chain.is_empty() {
        let _ = writeln!(out, "chain:");
        for step in &report.chain {
            match &step.by {
                Some(by) => {
                    let _ = writeln!(
                        out,
                        "  --{} {}--> {} {}",
                        by.op, by.at.utc, step.kind, step.label
                    );
                }
                None => {
                    let _ = writeln!(out, "  {} {}", step.kind, step.label);
                }
            }
        }
    }
    if !report.modified_files.is_empty() {
        let _ = writeln!(out, "files modified:");
        for f in &report.modified_files {
            let ops: Vec<String> = f.ops.iter().map(|o| o.to_string()).collect();
            let _ = writeln!(out, "  {} ({})", f.paths.join(" → "), ops.join(", "));
        }
    }
    out
}

fn incident(args: &TraceArgs) -> Result<i32> {
    if args.dot || args.svg {
        bail!(
            "`trace incident` prints JSON; use `trace back --dot|--svg` or --out-dir for drawings"
        );
    }
    let spec = start(args)?;
    let rules = rules(args)?;
    let opened = mamori_core::time::now_ns();
    let loaded = load(args)?;
    let t0 = mamori_core::time::now_ns();
    let back = track(&loaded, &spec, Direction::Backward, &rules)?;
    let back_report = report(&loaded, &back, &args.from);
    let t1 = mamori_core::time::now_ns();
    let mut incident = Incident::open(
        Subject::Recording {
            path: args
                .logs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        },
        "root-cause",
        Severity::Critical,
        match &back_report.entry {
            Some(e) => format!(
                "{} traced back to {} ({:?})",
                back_report.start.label, e.label, e.kind
            ),
            None => format!(
                "{} traced back; no entry point found",
                back_report.start.label
            ),
        },
        opened,
    );
    incident.act(Action {
        action: "trace-back".into(),
        started_ns: t0,
        finished_ns: t1,
        outcome: Outcome::Succeeded,
        detail: format!(
            "{} nodes, {} edges",
            back_report.counts.trace_nodes, back_report.counts.trace_edges
        ),
    });
    let forward_report = match &back.entry {
        Some(entry) => {
            let fwd = forward(&loaded.graph, entry.anchor(), &rules);
            let r = report(
                &loaded,
                &fwd,
                &format!("entry:{}", loaded.graph.label(entry.node)),
            );
            incident.act(Action {
                action: "trace-forward".into(),
                started_ns: t1,
                finished_ns: mamori_core::time::now_ns(),
                outcome: Outcome::Succeeded,
                detail: format!("{} files modified", r.modified_files.len()),
            });
            Some(r)
        }
        None => {
            incident.act(Action {
                action: "trace-forward".into(),
                started_ns: t1,
                finished_ns: t1,
                outcome: Outcome::Skipped,
                detail: "no entry point to track forward from".into(),
            });
            None
        }
    };
    let dot = mamori_prov::dot_with(
        &loaded.graph,
        &back,
        &DotOptions {
            max_nodes: Some(args.max_nodes),
        },
    );
    incident
        .evidence
        .insert("input".into(), parse_json(&loaded));
    incident
        .evidence
        .insert("backtrack".into(), serde_json::to_value(&back_report)?);
    if let Some(r) = &forward_report {
        incident.evidence.insert(
            "forward".into(),
            json!({
                "from": r.start,
                "processes": r.processes,
                "modified_files": r.modified_files,
                "counts": r.counts,
                "timings": r.timings,
            }),
        );
    }
    incident.evidence.insert("dot".into(), json!(dot));
    incident.closed_ns = Some(mamori_core::time::now_ns());
    let text = serde_json::to_string_pretty(&incident)?;
    if let Some(dir) = &args.out_dir {
        write_outputs(dir, &text, &dot)?;
    }
    println!("{text}");
    Ok(0)
}
