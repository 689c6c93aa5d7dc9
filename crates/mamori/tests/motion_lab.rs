//! End to end on real `motion`: record a short run of normal operation and one with the paper's
//! suspicious commands under strace (scripts/record-motion.sh), train on the normal recording,
//! and check that every attack step raises an alert quickly and normal time raises few.
//!
//! It needs Debian's motion, ffmpeg and strace (`scripts/record-motion.sh --install-only`) and
//! takes about three minutes, so it runs when MAMORI_MOTION_LAB=1 (.ci/run sets it).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn record(out: &Path, args: &[&str]) {
    let status = Command::new(repo().join("scripts/record-motion.sh"))
        .arg("--out")
        .arg(out)
        .args(args)
        .status()
        .expect("scripts/record-motion.sh runs");
    assert!(
        status.success(),
        "recording {} failed: {status}",
        out.display()
    );
}

#[test]
fn a_short_motion_recording_catches_the_papers_suspicious_commands() {
    if std::env::var_os("MAMORI_MOTION_LAB").is_none() {
        eprintln!(
            "skipping: set MAMORI_MOTION_LAB=1 to record real motion \
             (scripts/record-motion.sh --install-only installs it)"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("mamori-motion-lab-{}", std::process::id()));
    let (normal, attack) = (dir.join("normal"), dir.join("paper"));
    // Different seeds and ports from the committed recordings; the attack comes after 40 s of
    // normal operation and normal operation goes on for a while after motion is back.
    record(
        &normal,
        &["--duration", "90", "--seed", "101", "--port", "19180"],
    );
    record(
        &attack,
        &[
            "--scenario",
            "paper",
            "--duration",
            "100",
            "--attack-at",
            "40",
            "--seed",
            "102",
            "--port",
            "19190",
        ],
    );
    // Per step: with no cooldown every step's own windows raise their own alert, so this
    // measures whether each step is caught. False alarms: the agent's default rule (10 s
    // cooldown), counted strictly.
    let per_step = eval(&normal, &attack, "0");
    let default_rule = eval(&normal, &attack, "10");
    let mut summary = String::new();
    let (mut every_step_in_2s, mut few_false_alarms, mut best_false_alarms) = (0, 0, u64::MAX);
    let models = per_step["models"].as_array().expect("models");
    for (m, d) in models
        .iter()
        .zip(default_rule["models"].as_array().expect("models"))
    {
        let name = m["model"].as_str().unwrap_or("?");
        let run = &m["runs"][0];
        let steps = run["operator"]["steps"].as_array().expect("operator steps");
        assert_eq!(
            steps.len(),
            4,
            "edit-config, ps, kill and restart are labelled"
        );
        let latencies: Vec<Option<f64>> = steps.iter().map(|s| s["latency_s"].as_f64()).collect();
        let false_alarms = d["runs"][0]["operator"]["false_alarms"]
            .as_u64()
            .unwrap_or(u64::MAX);
        summary += &format!(
            "{name}: AUC {:.3}, latencies {latencies:?}, {false_alarms} false alarms\n",
            run["auc"].as_f64().unwrap_or(f64::NAN)
        );
        every_step_in_2s += usize::from(latencies.iter().all(|l| l.is_some_and(|s| s <= 2.0)));
        best_false_alarms = best_false_alarms.min(false_alarms);
        few_false_alarms += usize::from(false_alarms <= 10);
        assert!(
            run["auc"].as_f64().is_some_and(|a| a > 0.9),
            "{name}: window AUC not above 0.9\n{summary}"
        );
    }
    eprintln!("{summary}");
    // A short training run (80 s) on a machine whose timing we do not know: most models, not all,
    // must meet the bar; the full 15-minute evaluation is in EVALUATION.md.
    assert!(
        every_step_in_2s >= 4,
        "fewer than 4 of 5 models alerted on every attack step within 2 s:\n{summary}"
    );
    // False alarms in about 90 s of normal time. Most of them come from the restarted motion:
    // its start-up was never seen in training (the warm-up drops the trained daemon's start-up),
    // so two fresh recordings give 6-7 for STIDE and the HMM and 11-19 for the one-hot
    // autoencoder, while the BoSC autoencoder gives 0-1. Bringing every model to an operator's
    // bar (a daemon's start-up and shutdown included) is issue #17; here the best model must be
    // quiet (at most 3) and most models must raise at most 10.
    assert!(
        best_false_alarms <= 3,
        "no model had at most 3 false alarms in the normal part:\n{summary}"
    );
    assert!(
        few_false_alarms >= 3,
        "fewer than 3 of 5 models had at most 10 false alarms in the normal part:\n{summary}"
    );
    // The context signals (programs never run in training) catch the three steps that run one,
    // at once, whatever the window models do.
    let context = &default_rule["context"]["operator"]["steps"];
    for i in 0..3 {
        let step = &context[i];
        assert!(
            step["latency_s"].as_f64().is_some_and(|l| l <= 2.0),
            "context signals missed {step}\n{summary}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `mamori eval --json` of the recordings with the given alert cooldown (seconds).
fn eval(normal: &Path, attack: &Path, cooldown: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args([
            "eval",
            "--json",
            "-q",
            "--warmup",
            "10",
            "--stream",
            "per-thread",
            "--alert-cooldown",
            cooldown,
            // the window models' own view: every flagged window may page
            "--alert-min-windows",
            "1",
        ])
        .arg("--profile")
        .arg(repo().join("profiles/motion.toml"))
        .arg("--train")
        .arg(normal.join("trace.strace.gz"))
        .arg("--test")
        .arg(attack.join("trace.strace.gz"))
        .arg("--labels")
        .arg(attack.join("labels.txt"))
        .args(["--models", "hmm,ae,ae-bosc,stide,kmeans"])
        .output()
        .expect("mamori eval runs");
    assert!(
        out.status.success(),
        "mamori eval failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("eval --json prints JSON")
}
