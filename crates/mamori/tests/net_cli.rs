//! `mamori net` on real traffic: the consumer IoT captures in ../shared/data/iot-benign-pcap and
//! the lab captures in data/net (real mosquitto, ffmpeg, busybox and real hping3 / nmap / telnet
//! dictionary attacks in network namespaces, made by scripts/lab/net-lab.sh).
//!
//! Detectors are trained on one lab run plus three device captures and judged on another lab run
//! (other seed, other times) plus the two held-out device captures. The tests that need the device
//! captures are `#[ignore]`d (run them with `--include-ignored`) and fail when
//! ../shared/data/iot-benign-pcap is missing.

use std::path::{Path, PathBuf};
mod common;

use common::{mamori, repo, run, shared_data, TempDir};

/// The benign device captures (../shared/data/iot-benign-pcap); panics when they are missing.
fn benign() -> PathBuf {
    shared_data("iot-benign-pcap")
}

fn lab(run: &str) -> (PathBuf, PathBuf) {
    let d = repo().join("data/net").join(run);
    (d.join("capture.pcap.gz"), d.join("labels.tsv"))
}

#[test]
#[ignore = "needs ../shared/data (iot-benign-pcap); run with --include-ignored"]
fn device_features_of_real_consumer_devices() {
    let data = benign();
    let out = run(mamori()
        .args(["net", "features", "--kind", "device"])
        .arg(data.join("schlage-lock-01.pcap")));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(
        &header[..8],
        [
            "source",
            "device",
            "start",
            "end",
            "packets",
            "attack_packets",
            "label",
            "attack"
        ]
    );
    for name in [
        "pps_out",
        "max_pps_out",
        "iat_out_mean",
        "size_out_p90",
        "dst_ports",
        "syn_ratio_out",
        "dns_pkts",
        "telnet_pkts",
        "ssdp_pkts",
    ] {
        assert!(header.contains(&name), "{name} missing from {header:?}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.len() > 100, "only {} rows", rows.len());
    for r in &rows {
        assert_eq!(r.len(), header.len());
        assert_eq!(r[6], "0", "no labels given, so no attack rows");
        let start: f64 = r[2].parse().expect("start");
        let end: f64 = r[3].parse().expect("end");
        assert!((end - start - 10.0).abs() < 1e-6);
    }
    // Flow rows as JSON lines carry every named feature.
    let out = run(mamori()
        .args(["net", "features", "--kind", "flow", "--format", "jsonl"])
        .arg(data.join("schlage-lock-01.pcap")));
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .expect("a flow"),
    )
    .expect("json");
    assert!(first["flow"].as_str().is_some_and(|f| f.contains(" > ")));
    assert!(first["features"]["duration"].is_number());
}

#[test]
#[ignore = "needs ../shared/data (iot-benign-pcap); run with --include-ignored"]
fn corrupt_captures_name_the_packet_and_lenient_reading_keeps_the_rest() {
    let data = benign();
    let tmp = TempDir::new("corrupt");
    let bytes = std::fs::read(data.join("schlage-lock-01.pcap")).expect("read");
    let cut = tmp.0.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let out = mamori()
        .args(["net", "features"])
        .arg(&cut)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.pcap") && err.contains("packet "), "{err}");
    let out = run(mamori().args(["net", "features", "--lenient"]).arg(&cut));
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() > 10);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("skipped 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let junk = tmp.0.join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture at all").expect("write");
    let out = mamori()
        .args(["net", "features"])
        .arg(&junk)
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap or pcapng file"));
}

struct Split {
    train: Vec<PathBuf>,
    train_labels: PathBuf,
    test: Vec<PathBuf>,
    test_labels: PathBuf,
}

fn split(data: &Path) -> Split {
    let (a, a_labels) = lab("lab-a");
    let (b, b_labels) = lab("lab-b");
    Split {
        train: vec![
            a,
            data.join("blink-cam-01.pcap"),
            data.join("lockly-hub-01.pcap"),
            data.join("schlage-lock-01.pcap"),
        ],
        train_labels: a_labels,
        test: vec![
            b,
            data.join("blink-cam-02.pcap"),
            data.join("sifely-hub-01.pcap"),
        ],
        test_labels: b_labels,
    }
}

fn eval(model: &Path, s: &Split, dir: &Path, name: &str) -> serde_json::Value {
    eval_on(model, &s.test, &s.test_labels, dir, name)
}

/// `mamori net eval` of `model` on `test`: its JSON report, after checking the heatmap.
fn eval_on(
    model: &Path,
    test: &[PathBuf],
    labels: &Path,
    dir: &Path,
    name: &str,
) -> serde_json::Value {
    let json = dir.join(format!("{name}.json"));
    let heatmap = dir.join(format!("{name}.svg"));
    let out = run(mamori()
        .args(["net", "eval", "-m"])
        .arg(model)
        .args(test)
        .arg("--labels")
        .arg(labels)
        .arg("--json")
        .arg(&json)
        .arg("--heatmap")
        .arg(&heatmap));
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    let svg = std::fs::read_to_string(&heatmap).expect("heatmap written");
    assert!(svg.starts_with("<svg") && svg.contains(">TP<") && svg.contains("predicted"));
    serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses")
}

#[test]
#[ignore = "needs ../shared/data (iot-benign-pcap); run with --include-ignored"]
fn svm_trained_on_one_lab_run_detects_attacks_in_another() {
    let data = benign();
    let s = split(&data);
    let tmp = TempDir::new("svm");
    let model = tmp.0.join("svm.json");
    run(mamori()
        .args(["net", "train", "--model", "svm", "--kind", "device", "-o"])
        .arg(&model)
        .args(&s.train)
        .arg("--labels")
        .arg(&s.train_labels));
    let r = eval(&model, &s, &tmp.0, "svm");
    let (recall, fpr, auc) = (
        r["recall"].as_f64().unwrap(),
        r["false_positive_rate"].as_f64().unwrap(),
        r["roc_auc"].as_f64().unwrap(),
    );
    assert!(
        r["tp"].as_u64().unwrap() > 0 && r["tn"].as_u64().unwrap() > 100,
        "{r}"
    );
    assert!(recall >= 0.9, "recall {recall}");
    assert!(fpr <= 0.01, "false-positive rate {fpr}");
    assert!(auc >= 0.99, "ROC AUC {auc}");
    // Every attack kind is caught at least once.
    for a in r["per_attack"].as_array().unwrap() {
        assert!(a["detected"].as_u64().unwrap() > 0, "{a}");
    }
}

#[test]
#[ignore = "needs ../shared/data (iot-benign-pcap); run with --include-ignored"]
fn isolation_forest_learns_from_normal_traffic_only() {
    let data = benign();
    let s = split(&data);
    let tmp = TempDir::new("iforest");
    let model = tmp.0.join("iforest.json");
    // Labels only to leave the attack rows out of training; nothing is learnt from them.
    run(mamori()
        .args([
            "net", "train", "--model", "iforest", "--kind", "device", "-o",
        ])
        .arg(&model)
        .args(&s.train)
        .arg("--labels")
        .arg(&s.train_labels));
    let r = eval(&model, &s, &tmp.0, "iforest");
    let (recall, fpr, auc) = (
        r["recall"].as_f64().unwrap(),
        r["false_positive_rate"].as_f64().unwrap(),
        r["roc_auc"].as_f64().unwrap(),
    );
    // Measured: ROC AUC 0.988; at the default 1 % calibration target it flags a third of the
    // attack windows (every flood and scan kind among them) at 0.1 % false positives.
    assert!(auc >= 0.95, "ROC AUC {auc}");
    assert!(recall >= 0.2, "recall {recall}");
    assert!(fpr <= 0.01, "false-positive rate {fpr}");
}

/// The operator's case: learn this network's normal traffic (one lab run, attack rows left
/// out), then watch it later (the other run, with its attacks). The isolation forest catches
/// none of the attack windows here (features that never varied in training are never cut); the
/// autoencoder reconstructs such a feature as its constant and sees every deviation.
#[test]
fn autoencoder_learns_its_own_network_and_catches_the_attacks_in_a_later_run() {
    let (a, a_labels) = lab("lab-a");
    let (b, b_labels) = lab("lab-b");
    let tmp = TempDir::new("ae-own");
    let model = tmp.0.join("ae.json");
    run(mamori()
        .args([
            "net",
            "train",
            "--model",
            "autoencoder",
            "--kind",
            "device",
            "-o",
        ])
        .arg(&model)
        .arg(&a)
        .arg("--labels")
        .arg(&a_labels));
    let r = eval_on(&model, &[b], &b_labels, &tmp.0, "ae-own");
    let (recall, fpr) = (
        r["recall"].as_f64().unwrap(),
        r["false_positive_rate"].as_f64().unwrap(),
    );
    // The default (five-seed ensemble, per-device baselines), measured over seeds 1-5: 38 of 39
    // attack windows (one udp-scan window missed), 0-1 false alarms in 154 windows. Every lab
    // device was seen in training, so nothing warms up. (The single autoencoder it replaced:
    // recall 0.87-0.97, 0-2 false alarms.)
    assert!(recall >= 0.95, "recall {recall}: {r}");
    assert!(fpr <= 0.01, "false-positive rate {fpr}: {r}");
    assert_eq!(r["warmup_rows"].as_u64(), Some(0), "{r}");
    for a in r["per_attack"].as_array().unwrap() {
        assert!(a["detected"].as_u64().unwrap() > 0, "{a}");
    }
}

/// Across networks (five captures of different devices, judged on two unseen ones) the
/// autoencoder still catches the attacks. Its false alarms fall on the kind of device it never
/// saw; the per-device baselines (an unseen device's first hour is its warm-up) remove most.
#[test]
#[ignore = "needs ../shared/data (iot-benign-pcap); run with --include-ignored"]
fn autoencoder_across_networks_catches_every_attack_kind() {
    let data = benign();
    let s = split(&data);
    let tmp = TempDir::new("ae");
    // not ae.json: eval writes its report there
    let model = tmp.0.join("ae-model.json");
    run(mamori()
        .args(["net", "train", "--model", "ae", "--kind", "device", "-o"])
        .arg(&model)
        .args(&s.train)
        .arg("--labels")
        .arg(&s.train_labels));
    let r = eval(&model, &s, &tmp.0, "ae");
    let (recall, fpr, auc) = (
        r["recall"].as_f64().unwrap(),
        r["false_positive_rate"].as_f64().unwrap(),
        r["roc_auc"].as_f64().unwrap(),
    );
    // The default (five-seed ensemble, per-device baselines), measured over seeds 1-5: recall
    // 0.974-1.0, false-positive rate 0.0005-0.0016 (6-18 false alarms in 11,377 windows), ROC
    // AUC 0.989-0.994, 75 warm-up rows (none an attack row). The single autoencoder it replaced:
    // recall 1.0 at 0.026 on seed 1.
    assert!(auc >= 0.97, "ROC AUC {auc}");
    assert!(recall >= 0.95, "recall {recall}");
    assert!(fpr <= 0.003, "false-positive rate {fpr}");
    assert_eq!(r["warmup_rows"].as_u64(), Some(75), "{r}");
    assert_eq!(r["warmup_attack_rows"].as_u64(), Some(0), "{r}");
    for a in r["per_attack"].as_array().unwrap() {
        assert!(a["detected"].as_u64().unwrap() > 0, "{a}");
    }
    // Without the baselines the same ensemble has one threshold: the unseen hub's windows come
    // back as false alarms.
    let json = tmp.0.join("no-baselines.json");
    run(mamori()
        .args(["net", "eval", "--no-baselines", "-m"])
        .arg(&model)
        .args(&s.test)
        .arg("--labels")
        .arg(&s.test_labels)
        .arg("--json")
        .arg(&json));
    let one: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    assert_eq!(one["warmup_rows"].as_u64(), Some(0), "{one}");
    assert!(
        one["false_positive_rate"].as_f64().unwrap() > 5.0 * fpr,
        "{one}"
    );
}

#[test]
#[ignore = "needs ../shared/data (iot-benign-pcap); run with --include-ignored"]
fn score_reports_rows_and_exit_status() {
    let data = benign();
    let s = split(&data);
    let tmp = TempDir::new("score");
    let model = tmp.0.join("svm.json");
    run(mamori()
        .args(["net", "train", "--model", "svm", "--kind", "interval", "-o"])
        .arg(&model)
        .args(&s.train)
        .arg("--labels")
        .arg(&s.train_labels));
    let out = mamori()
        .args(["net", "score", "--alerts-only", "-m"])
        .arg(&model)
        .arg(&s.test[0])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the lab run holds attacks: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(!alerts.is_empty());
    // The compromised sensor (10.77.0.23) starts the attack flows.
    assert!(
        alerts
            .iter()
            .any(|a| a["subject"]["address"] == "10.77.0.23"
                && a["evidence"]["entity_kind"] == "host"),
        "{alerts:?}"
    );
    // the agent's alert records, fired by rows over the SVM's decision boundary
    assert!(alerts.iter().all(|a| a["record"] == "alert"
        && a["source"] == "network"
        && a["score"].as_f64().unwrap() > a["threshold"].as_f64().unwrap()));
}

/// An isolation forest trained on the lab run in the repository (its attack rows left out).
fn lab_forest(dir: &Path) -> PathBuf {
    let (a, a_labels) = lab("lab-a");
    let model = dir.join("iforest.model");
    run(mamori()
        .args([
            "net", "train", "--model", "iforest", "--kind", "device", "-o",
        ])
        .arg(&model)
        .arg(&a)
        .arg("--labels")
        .arg(&a_labels));
    model
}

/// Detector files carry a checksum: one changed digit of the threshold once turned 114 flagged
/// rows into none with exit status 0; now scoring refuses the file.
#[test]
fn a_detector_with_one_changed_digit_is_refused() {
    let tmp = TempDir::new("net-tamper");
    let model = lab_forest(&tmp.0);
    let text = std::fs::read_to_string(&model).expect("model");
    assert!(
        text.starts_with(
            r#"{"format":"mamori-model","kind":"net","version":1,"checksum":"sha256:"#
        ),
        "{}",
        &text[..text.len().min(120)]
    );
    let key = r#""threshold":{"value":"#;
    let at = text.find(key).expect("threshold in the file") + key.len();
    let digit = at
        + text[at..]
            .find(|c: char| c.is_ascii_digit())
            .expect("a digit");
    let mut bytes = text.into_bytes();
    bytes[digit] = if bytes[digit] == b'9' {
        b'8'
    } else {
        bytes[digit] + 1
    };
    let tampered = tmp.0.join("tampered.model");
    std::fs::write(&tampered, &bytes).expect("write");

    let (b, _) = lab("lab-b");
    let intact = mamori()
        .args(["net", "score", "--alerts-only", "-m"])
        .arg(&model)
        .arg(&b)
        .output()
        .expect("runs");
    assert!(
        matches!(intact.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    let out = mamori()
        .args(["net", "score", "-m"])
        .arg(&tampered)
        .arg(&b)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("checksum"), "{stderr}");
    assert!(out.stdout.is_empty(), "no row may be scored");
}

/// Each command takes only its own kind of model file, and says what it was given.
#[test]
fn model_kinds_are_not_mixed_up() {
    let tmp = TempDir::new("net-kinds");
    let model = lab_forest(&tmp.0);
    let (b, _) = lab("lab-b");
    let out = mamori()
        .args(["score", "-m"])
        .arg(&model)
        .arg(&b)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("network detector"), "{stderr}");

    let syscall = tmp.0.join("syscall.model");
    std::fs::write(
        &syscall,
        r#"{"format":"mamori-model","kind":"syscall","version":1,"checksum":"sha256:0","body":{}}"#,
    )
    .expect("write");
    let out = mamori()
        .args(["net", "score", "-m"])
        .arg(&syscall)
        .arg(&b)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("system-call model"), "{stderr}");

    // A detector from before the envelope (bare JSON) is named as such.
    let bare = tmp.0.join("bare.json");
    std::fs::write(
        &bare,
        r#"{"format":"mamori-net-detector/1","threshold":{"value":0.5}}"#,
    )
    .expect("write");
    let out = mamori()
        .args(["net", "score", "-m"])
        .arg(&bare)
        .arg(&b)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("retrain it with `mamori net train`"),
        "{stderr}"
    );
}
