//! Golden alerts: the real binary scores the bundled recordings of real `motion` (data/motion)
//! and the network lab (data/net) and must raise exactly the alerts committed in
//! `tests/golden/` — the records the agent would write, through the shared alert rule. No root,
//! no Docker. `MAMORI_BLESS=1 cargo test -p mamori --test golden_alerts` rewrites the files
//! after an intended change; review the diff.

mod common;

use std::path::Path;

use common::{mamori, repo, run, TempDir};
use serde_json::Value;

/// Alert lines without what depends on where the test runs (the model's temporary path).
fn normalised(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("an alert is a JSON line");
            v.as_object_mut().expect("object").remove("model_path");
            v
        })
        .collect()
}

/// Equal up to float rounding in the last digits (scores, shares).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn check_golden(name: &str, got: Vec<Value>) {
    let path = repo().join("crates/mamori/tests/golden").join(name);
    if std::env::var_os("MAMORI_BLESS").is_some() {
        let text: String = got.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(&path, text).expect("write golden file");
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (MAMORI_BLESS=1 writes it)", path.display()));
    let want: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("golden JSON line"))
        .collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            same(g, w),
            "{name}: alert {i} differs\n got: {g}\nwant: {w}"
        );
    }
    assert_eq!(got.len(), want.len(), "{name}: alert count");
}

fn rel(p: &str) -> &Path {
    Path::new(p)
}

#[test]
fn stide_on_the_motion_attacks_raises_the_committed_alerts() {
    let tmp = TempDir::new("golden-stide");
    let model = tmp.0.join("stide.model");
    run(mamori()
        .current_dir(repo())
        .args([
            "train",
            "-q",
            "--model",
            "stide",
            "--stream",
            "per-thread",
            "--warmup",
            "10",
        ])
        .args(["--profile", "profiles/motion.toml", "-o"])
        .arg(&model)
        .arg(rel("data/motion/normal-a.strace.gz")));
    for s in ["paper", "dropper", "exfil", "api-tamper", "normal-b"] {
        let out = mamori()
            .current_dir(repo())
            .args(["score", "-q", "--alerts-only", "--warmup", "10", "-m"])
            .arg(&model)
            .arg(format!("data/motion/{s}.strace.gz"))
            .output()
            .expect("mamori runs");
        let alerts = normalised(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(i32::from(!alerts.is_empty())),
            "{s}: exit 1 exactly when an alert fired: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for a in &alerts {
            assert_eq!(a["record"], "alert");
            assert!(a["source"] == "syscalls" || a["source"] == "context", "{a}");
            assert_eq!(a["subject"]["kind"], "recording");
            assert!(a["score"].as_f64() > a["threshold"].as_f64());
        }
        if s == "normal-b" {
            assert!(alerts.is_empty(), "normal-b: {alerts:?}");
        }
        check_golden(&format!("motion-{s}-stide.jsonl"), alerts);
    }
}

#[test]
fn the_network_svm_on_the_second_lab_run_raises_the_committed_alerts() {
    let tmp = TempDir::new("golden-net");
    let model = tmp.0.join("svm.model");
    run(mamori()
        .current_dir(repo())
        .args(["net", "train", "--model", "svm", "--kind", "interval"])
        .args(["--labels", "data/net/lab-a/labels.tsv", "-o"])
        .arg(&model)
        .arg("data/net/lab-a/capture.pcap.gz"));
    let out = mamori()
        .current_dir(repo())
        .args(["net", "score", "--alerts-only", "-m"])
        .arg(&model)
        .arg("data/net/lab-b/capture.pcap.gz")
        .output()
        .expect("mamori runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = normalised(&out.stdout);
    for a in &alerts {
        assert_eq!(a["source"], "network");
        assert_eq!(a["evidence"]["kind"], "traffic");
    }
    // the compromised sensor of the lab starts the attacks
    assert!(alerts
        .iter()
        .any(|a| a["subject"]["address"] == "10.77.0.23"));
    check_golden("net-lab-b-svm-interval.jsonl", alerts);
}
