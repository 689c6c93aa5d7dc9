//! Helpers of the shipping labs (`ship_lab.rs`, `ship_nats.rs`): an audit-like source written
//! while the shipper runs, and the stored chain read back and compared with it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::mamori;
use super::things::http_get;

/// An audit record line as auditd writes it (the serial and time make each one unique).
pub fn audit_line(i: u64) -> String {
    format!(
        "type=SYSCALL msg=audit(1765000000.{:03}:{i}): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd{i:08x} a2=0 a3=0 items=1 ppid=1 pid={} auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"cat\" exe=\"/usr/bin/cat\" subj=unconfined key=(null)\n",
        i % 1000,
        1000 + i % 30000
    )
}

/// Appends `total` records to `log` in chunks over about `spread`, renaming the log to `.1`
/// (as auditd rotates) after `rotate_at` records. Returns what was written, in order.
pub fn writer(log: PathBuf, total: u64, rotate_at: u64, spread: Duration) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let chunk = 500;
        let pause = spread / (total / chunk).max(1) as u32;
        let mut all = Vec::new();
        let mut i = 0;
        while i < total {
            let mut text = String::new();
            for _ in 0..chunk.min(total - i) {
                i += 1;
                text.push_str(&audit_line(i));
            }
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
            all.extend_from_slice(text.as_bytes());
            if i == rotate_at {
                let mut rotated = log.clone().into_os_string();
                rotated.push(".1");
                fs::rename(&log, rotated).unwrap();
            }
            std::thread::sleep(pause);
        }
        all
    })
}

/// The payloads of a device's stored, authentic audit records, as `mamori verify --print`
/// gives them, verify's exit code and its report.
pub fn stored(device_dir: &Path) -> (Vec<u8>, i32, String) {
    let out = mamori()
        .args(["verify", "--print"])
        .arg(device_dir)
        .output()
        .unwrap();
    (
        out.stdout,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts the device's stored chain verifies and equals `want` exactly; `logs` (the
/// processes' output) goes into the failure message.
pub fn assert_same(device_dir: &Path, want: &[u8], logs: impl Fn() -> String) {
    let (got, code, report) = stored(device_dir);
    assert_eq!(code, 0, "verify failed:\n{report}\n{}", logs());
    if got != want {
        let g = String::from_utf8_lossy(&got);
        let w = String::from_utf8_lossy(want);
        let first = g.lines().zip(w.lines()).position(|(a, b)| a != b);
        panic!(
            "the stored log differs from the source: {} stored lines, {} written; first difference at line {first:?}\n{report}\n{}",
            g.lines().count(),
            w.lines().count(),
            logs()
        );
    }
}

/// The last `lines` lines of each named log file in a lab directory, for failure messages.
pub fn logs(dir: &Path, names: &[&str], lines: usize) -> String {
    let mut out = String::new();
    for name in names {
        let text = fs::read_to_string(dir.join(name)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        out.push_str(&format!(
            "{name}:\n{}\n",
            all[all.len().saturating_sub(lines)..].join("\n")
        ));
    }
    out
}

/// The findings the collector noted for a device.
pub fn findings(device_dir: &Path) -> Vec<Value> {
    fs::read_to_string(device_dir.join("findings.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The collector's /api/devices.
pub fn devices(http: u16) -> Vec<Value> {
    http_get(http, "/api/devices")
        .and_then(|(_, b)| serde_json::from_str(&b).ok())
        .unwrap_or_default()
}

/// Waits until the collector on `http` has handled everything of `device` through `seq`.
pub fn wait_stored(http: u16, device: &str, seq: u64, limit: Duration, logs: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    loop {
        let last = devices(http)
            .iter()
            .find(|d| d["device"] == device)
            .and_then(|d| d["last_seq"].as_u64())
            .unwrap_or(0);
        if last >= seq {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the collector handled only up to {last} of {seq}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
