//! BackTracker on a real audit log, timed: read (mamori-audit), build the graph, backtrack from
//! a detection point (default: the file modified last in the log), forward from the entry point.
//!
//!     cargo run --release -p mamori-prov --example trace_log -- LOG [POINT]

use std::time::Instant;

use mamori_prov::{
    backtrack, build, forward, BuildOptions, Direction, Node, PruneRules, StartSpec,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let log = args.next().ok_or("usage: trace_log LOG [POINT]")?;
    let point = args.next();

    let t = Instant::now();
    let (mut events, stats) = mamori_audit::read_all(&log)?;
    events.sort_by_key(|e| (e.time_ns, e.serial));
    let read = t.elapsed();
    let t = Instant::now();
    let graph = build(&events, &BuildOptions::default());
    let built = t.elapsed();

    let spec: StartSpec = match point {
        Some(p) => p.parse()?,
        None => {
            // The file written last: the latest write-like edge into a file.
            let edge = graph
                .edges()
                .iter()
                .rev()
                .find(|e| matches!(graph.node(e.dst), Node::File(_)) && graph.is_modified(e.dst))
                .ok_or("no file is modified in the log")?;
            let path = graph
                .node(edge.dst)
                .as_file()
                .and_then(|f| f.paths.last().cloned())
                .ok_or("the last modified file has no name")?;
            format!("file:{path}").parse()?
        }
    };
    let rules = PruneRules::default();
    let anchor = spec.resolve(&graph, Direction::Backward)?;
    let t = Instant::now();
    let back = backtrack(&graph, anchor, &rules);
    let tracked = t.elapsed();
    let t = Instant::now();
    let fwd = back
        .entry
        .as_ref()
        .map(|e| forward(&graph, e.anchor(), &rules));
    let forwarded = t.elapsed();

    println!(
        "| records | events | read ms | graph nodes | graph edges | build ms | backtrack ms | back nodes | back edges | forward ms | fwd nodes |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {:.0} | {} | {} | {:.0} | {:.1} | {} | {} | {:.1} | {} |",
        stats.records,
        events.len(),
        read.as_secs_f64() * 1e3,
        graph.nodes().len(),
        graph.edges().len(),
        built.as_secs_f64() * 1e3,
        tracked.as_secs_f64() * 1e3,
        back.nodes.len(),
        back.edges.len(),
        forwarded.as_secs_f64() * 1e3,
        fwd.as_ref().map_or(0, |f| f.nodes.len())
    );
    println!(
        "from {} ({}); entry {:?}",
        graph.label(back.start.node),
        spec,
        back.entry.as_ref().map(|e| graph.label(e.node))
    );
    Ok(())
}
