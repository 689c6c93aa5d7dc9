//! Helpers for the WoT Thing monitor's tests: free ports, child processes killed on drop, the
//! device binary, and an agent whose JSON API and metrics are read over HTTP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{mamori, repo, TempDir};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed (and reaped) on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The static device simulator, built by scripts/lab/build-device-image.sh --binary-only.
pub fn device_binary() -> PathBuf {
    let out = Command::new(repo().join("scripts/lab/build-device-image.sh"))
        .arg("--binary-only")
        .output()
        .expect("build-device-image.sh runs");
    assert!(
        out.status.success(),
        "building the device failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Starts a device process on `port` with extra flags, and waits until it answers.
pub fn device(binary: &PathBuf, port: u16, flags: &[&str]) -> Process {
    let child = Command::new(binary)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the device starts");
    let p = Process(child);
    wait_for_port(port, Duration::from_secs(10));
    p
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP/1.1 GET on loopback: status and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(port, "GET", path, "")
}

/// A plain HTTP/1.1 request with a text body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// `mamori agent` with a config, its HTTP port, and where its alerts go.
pub struct Agent {
    pub process: Process,
    pub port: u16,
    pub dir: TempDir,
}

impl Agent {
    /// Writes `things` (the `[things]` part of the config, TOML) under a config that captures
    /// no system calls, writes alerts to a file and serves HTTP on a free port.
    pub fn start(name: &str, things: &str) -> Agent {
        let dir = TempDir::new(name);
        let port = free_port();
        let alerts = dir.0.join("alerts.jsonl");
        let config = format!(
            "[capture]\nenabled = false\n[alerts]\nfile = \"{}\"\nstdout = false\n[http]\nlisten = \"127.0.0.1:{port}\"\n{things}",
            alerts.display()
        );
        let path = dir.0.join("agent.toml");
        std::fs::write(&path, config).expect("config written");
        let child = mamori()
            .args(["agent", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.0.join("agent.log")).expect("log"))
            .spawn()
            .expect("the agent starts");
        let process = Process(child);
        wait_for_port(port, Duration::from_secs(20));
        Agent { process, port, dir }
    }

    /// The agent's Things (`/api/things`).
    pub fn things(&self) -> Vec<Value> {
        http_get(self.port, "/api/things")
            .and_then(|(_, body)| serde_json::from_str(&body).ok())
            .unwrap_or_default()
    }

    /// One Thing by name.
    pub fn thing(&self, name: &str) -> Option<Value> {
        self.things().into_iter().find(|t| t["name"] == name)
    }

    /// `/metrics`.
    pub fn metrics(&self) -> String {
        http_get(self.port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// `/metrics` once it shows `needle` (the agent refreshes its metrics once a second).
    pub fn metrics_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self.metrics();
            if m.contains(needle) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "/metrics never showed {needle}:\n{m}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `/api/incidents`.
    pub fn incidents(&self) -> Vec<Value> {
        http_get(self.port, "/api/incidents")
            .and_then(|(_, body)| serde_json::from_str(&body).ok())
            .unwrap_or_default()
    }

    /// The records in the alert file (alerts and incidents).
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.0.join("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// What the agent printed on stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("agent.log")).unwrap_or_default()
    }

    /// Waits until `done` holds for the Things, failing with the last status and log.
    pub fn wait_until(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let things = self.things();
            if done(&things) {
                return things;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}:\n{}\nagent log:\n{}",
                    serde_json::to_string_pretty(&things).unwrap_or_default(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A Thing's state in an `/api/things` entry.
pub fn state(thing: &Value) -> &str {
    thing["state"].as_str().unwrap_or("")
}

/// The Thing named `name` among `things`.
pub fn named<'a>(things: &'a [Value], name: &str) -> Option<&'a Value> {
    things.iter().find(|t| t["name"] == name)
}

/// An incident's actions as (action, outcome) pairs, in order.
pub fn actions(incident: &Value) -> Vec<(String, String)> {
    incident["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["action"].as_str().unwrap_or("").to_string(),
                a["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}
