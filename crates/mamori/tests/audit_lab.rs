//! Root cause from a real audit log: five scripted intrusions (scripts/lab/audit/*.sh) run real
//! programs (curl, busybox wget, Python, socat, nc, run-parts, mv, rm …) under the real auditd
//! with mamori's rules, among benign decoys that touch the same files and servers, with the
//! attacker's host in a network namespace the scenario creates. For each, `mamori trace
//! incident` on the recorded log must, from the damaged file at the detection time:
//!
//! - name the attacker's connection as the entry point;
//! - find exactly the attacker's processes (every process it started, and no other);
//! - leave out every decoy (readers of the damaged file, writers after the detection time,
//!   other downloads from the same server, sibling jobs and handlers);
//! - tracking forward from the entry, find every file the attacker modified (renamed and
//!   deleted ones included).
//!
//! Needs root and the audit lab (scripts/lab/setup-audit-lab.sh: auditd + rules + the
//! scenarios' programs); runs when MAMORI_AUDIT_LAB=1 (.ci/run sets it), reading the log at
//! MAMORI_AUDIT_LOG (default /var/lib/mamori-audit-lab/audit.log).

mod common;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{mamori, repo, run};
use serde_json::Value;

fn enabled() -> bool {
    if std::env::var("MAMORI_AUDIT_LAB").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: set MAMORI_AUDIT_LAB=1 after scripts/lab/setup-audit-lab.sh (as root)");
    false
}

fn audit_log() -> PathBuf {
    std::env::var_os("MAMORI_AUDIT_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/mamori-audit-lab/audit.log"))
}

/// The log's bytes from `offset` until `marker` has been written (auditd flushes
/// asynchronously), across one rotation (auditd renames the log to `.1`).
fn log_slice(log: &Path, offset: u64, marker: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut bytes = Vec::new();
        let size = fs::metadata(log).map(|m| m.len()).unwrap_or(0);
        if size < offset {
            // rotated: the rest of the old file, then the new one
            let mut old = fs::File::open(log.with_extension("log.1")).expect("rotated log");
            old.seek(SeekFrom::Start(offset)).expect("seek");
            old.read_to_end(&mut bytes).expect("read rotated log");
            bytes.extend(fs::read(log).expect("read log"));
        } else {
            let mut f = fs::File::open(log).expect("open the audit log");
            f.seek(SeekFrom::Start(offset)).expect("seek");
            f.read_to_end(&mut bytes).expect("read log");
        }
        if String::from_utf8_lossy(&bytes).contains(marker) {
            return bytes;
        }
        assert!(
            Instant::now() < deadline,
            "{marker} did not reach {} within 20 s",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs one scenario under the audit daemon; returns its facts and the incident record.
fn run_scenario(name: &str) -> (Value, Value, PathBuf) {
    let log = audit_log();
    let nonce = format!("{name}-{}", std::process::id());
    let work = std::env::temp_dir().join(format!("mamori-audit-lab-{nonce}"));
    let _ = fs::remove_dir_all(&work);
    let offset = fs::metadata(&log)
        .unwrap_or_else(|e| panic!("{}: {e} (is the audit lab running?)", log.display()))
        .len();
    let script = repo().join(format!("scripts/lab/audit/{name}.sh"));
    let out = Command::new(&script)
        .arg(&work)
        .arg(&nonce)
        .output()
        .expect("the scenario runs");
    assert!(
        out.status.success(),
        "{name}.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let facts: Value = serde_json::from_slice(&fs::read(work.join("facts.json")).expect("facts"))
        .expect("facts.json is JSON");
    let slice = log_slice(&log, offset, &format!("mamori-lab-end-{nonce}"));
    // Outside the scenario's directory, which the tracked damage lives in.
    let slice_path = std::env::temp_dir().join(format!("mamori-audit-lab-{nonce}.log"));
    fs::write(&slice_path, slice).expect("write the log slice");

    let from = format!("file:{}@{}", str_of(&facts["damaged"]), facts["detect_at"]);
    let out = run(mamori()
        .args(["trace", "incident", "--log"])
        .arg(&slice_path)
        .args(["--from", &from]));
    let incident: Value = serde_json::from_slice(&out.stdout).expect("the incident is JSON");
    (facts, incident, slice_path)
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| str_of(s).to_string()).collect())
        .unwrap_or_default()
}

/// A node's searchable text: a process's command line, a file's names, a socket's address.
fn node_text(n: &Value) -> String {
    match str_of(&n["kind"]) {
        "process" => strings(&n["argv"]).join(" "),
        "file" => strings(&n["paths"]).join(" "),
        _ => str_of(&n["label"]).to_string(),
    }
}

/// The processes the attacker started: images (exec'd processes) reachable from the entry point
/// along the trace's edges, in the order they started.
fn attack_processes(report: &Value) -> Vec<String> {
    let entry = report["entry"]["node"].as_u64().expect("an entry point");
    let nodes: HashMap<u64, &Value> = report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["id"].as_u64().unwrap_or(u64::MAX), n))
        .collect();
    let mut next: HashMap<u64, Vec<u64>> = HashMap::new();
    for e in report["edges"].as_array().expect("edges") {
        next.entry(e["src"].as_u64().unwrap_or(u64::MAX))
            .or_default()
            .push(e["dst"].as_u64().unwrap_or(u64::MAX));
    }
    let mut seen = HashSet::from([entry]);
    let mut queue = VecDeque::from([entry]);
    while let Some(n) = queue.pop_front() {
        for &m in next.get(&n).into_iter().flatten() {
            if seen.insert(m) {
                queue.push_back(m);
            }
        }
    }
    let mut procs: Vec<&Value> = seen
        .iter()
        .filter_map(|id| nodes.get(id).copied())
        .filter(|n| n["kind"] == "process" && n["origin"] == "exec")
        .collect();
    procs.sort_by_key(|n| (n["start_ns"].as_i64(), n["start_serial"].as_u64()));
    procs.iter().map(|n| node_text(n)).collect()
}

fn check(name: &str) {
    if !enabled() {
        return;
    }
    let (facts, incident, slice) = run_scenario(name);
    let back = &incident["evidence"]["backtrack"];
    let forward = &incident["evidence"]["forward"];
    let context = || {
        format!(
            "{name}: facts {}\nincident {}\n(log slice kept at {})",
            serde_json::to_string_pretty(&facts).unwrap_or_default(),
            serde_json::to_string_pretty(&incident).unwrap_or_default(),
            slice.display()
        )
    };

    // The entry point: the attacker's connection.
    let entry = str_of(&facts["entry"]).trim_start_matches("socket:");
    assert_eq!(
        str_of(&back["entry"]["label"]),
        entry,
        "wrong entry point; {}",
        context()
    );
    assert_eq!(back["entry"]["kind"], "network_peer", "{}", context());

    // Exactly the attacker's processes, in order.
    let procs = attack_processes(back);
    let chain = strings(&facts["chain"]);
    assert_eq!(
        procs.len(),
        chain.len(),
        "attack processes {procs:#?} vs expected {chain:#?}; {}",
        context()
    );
    for (p, want) in procs.iter().zip(&chain) {
        assert!(
            p.contains(want.as_str()),
            "process `{p}` is not `{want}` (all: {procs:#?}); {}",
            context()
        );
    }

    // No decoy anywhere in the backtracked graph.
    let texts: Vec<String> = back["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(node_text)
        .collect();
    for decoy in strings(&facts["decoys"]) {
        let hit: Vec<&String> = texts.iter().filter(|t| t.contains(&decoy)).collect();
        assert!(
            hit.is_empty(),
            "decoy `{decoy}` is in the backtrack: {hit:?}; {}",
            context()
        );
    }
    for unique in strings(&facts["unique"]) {
        let images = back["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["origin"] == "exec" && node_text(n).contains(&unique))
            .count();
        assert_eq!(
            images,
            1,
            "`{unique}` should run once in the backtrack; {}",
            context()
        );
    }

    // Forward from the entry: every file the attacker modified.
    let modified: Vec<Vec<String>> = forward["modified_files"]
        .as_array()
        .expect("forward modified_files")
        .iter()
        .map(|f| strings(&f["paths"]))
        .collect();
    for want in strings(&facts["modified"]) {
        assert!(
            modified.iter().any(|paths| paths.contains(&want)),
            "forward tracking missed {want}: {modified:?}; {}",
            context()
        );
    }
    eprintln!(
        "{name}: {} events → graph {} nodes / {} edges → backtrack {} nodes / {} edges ({:.2} ms), \
         forward {} nodes, {} files modified",
        back["counts"]["events"],
        back["counts"]["graph_nodes"],
        back["counts"]["graph_edges"],
        back["counts"]["trace_nodes"],
        back["counts"]["trace_edges"],
        back["timings"]["track_ms"].as_f64().unwrap_or(f64::NAN),
        forward["counts"]["trace_nodes"],
        modified.len()
    );
    let _ = fs::remove_file(&slice);
}

#[test]
fn two_stage_download_and_run() {
    check("dropper2");
}

#[test]
fn three_stage_download_and_run_with_three_downloaders() {
    check("dropper3");
}

#[test]
fn command_injection_through_a_network_service() {
    check("service");
}

#[test]
fn cron_like_persistence() {
    check("persistence");
}

#[test]
fn intruder_renames_and_deletes_their_tools() {
    check("cleanup");
}

/// The drawing: DOT from `trace back --dot`, SVG through Graphviz, files in --out-dir.
#[test]
fn the_trace_is_drawn_with_graphviz() {
    if !enabled() {
        return;
    }
    let (facts, _, slice) = run_scenario("cleanup");
    let from = format!("file:{}@{}", str_of(&facts["damaged"]), facts["detect_at"]);
    let out = run(mamori()
        .args(["trace", "back", "--dot", "--log"])
        .arg(&slice)
        .args(["--from", &from]));
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(dot.starts_with("digraph"), "{dot}");
    let dir = slice.with_extension("out");
    let out = run(mamori()
        .args(["trace", "back", "--svg", "--log"])
        .arg(&slice)
        .args(["--from", &from, "--out-dir"])
        .arg(&dir));
    let svg = String::from_utf8_lossy(&out.stdout);
    assert!(svg.contains("<svg"), "not SVG: {svg}");
    assert!(svg.contains(str_of(&facts["entry"]).trim_start_matches("socket:")));
    for f in ["report.json", "trace.dot", "trace.svg"] {
        assert!(dir.join(f).exists(), "{f} not written");
    }
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_file(&slice);
}
