//! `mamori net` and what it is given: captures on standard input, damaged captures (lenient
//! resynchronisation, cut gzip streams), numbers that make no sense, labels that match nothing,
//! a training set too small. Uses the lab run bundled in data/net (no ../shared/data needed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
mod common;

use common::{mamori, repo, run, TempDir};

fn lab_a() -> (PathBuf, PathBuf) {
    let d = repo().join("data/net/lab-a");
    (d.join("capture.pcap.gz"), d.join("labels.tsv"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The lab capture, decompressed (a little-endian classic pcap).
fn lab_pcap() -> Vec<u8> {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(lab_a().0)
        .output()
        .expect("gzip runs");
    assert!(out.status.success());
    assert_eq!(&out.stdout[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    out.stdout
}

/// Byte offsets of the records of a little-endian classic pcap.
fn records(pcap: &[u8]) -> Vec<usize> {
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= pcap.len() {
        out.push(at);
        let incl = u32::from_le_bytes([pcap[at + 8], pcap[at + 9], pcap[at + 10], pcap[at + 11]]);
        at += 16 + incl as usize;
    }
    out
}

/// `N` of the `mamori: N packets (…)` line.
fn packets(err: &str) -> u64 {
    err.lines()
        .find_map(|l| {
            l.strip_prefix("mamori: ")?
                .split_once(" packets (")?
                .0
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no packet count in {err}"))
}

/// Rows of `net features` without the source column.
fn rows_without_source(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .skip(1)
        .map(|l| l.split_once(',').map_or(l, |(_, rest)| rest).to_string())
        .collect()
}

fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mamori runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("mamori ends");
    writer.join().expect("writer");
    out
}

#[test]
fn a_gzip_capture_on_standard_input() {
    let (capture, _) = lab_a();
    let from_file = run(mamori()
        .args(["net", "features", "--kind", "flow"])
        .arg(&capture));
    let gz = std::fs::read(&capture).expect("capture");
    let from_pipe = with_stdin(
        mamori().args(["net", "features", "--kind", "flow", "-"]),
        &gz,
    );
    assert!(from_pipe.status.success(), "{}", stderr(&from_pipe));
    let text = String::from_utf8_lossy(&from_pipe.stdout);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("<stdin>,")),
        "{text}"
    );
    let want = rows_without_source(&from_file.stdout);
    assert!(want.len() > 100);
    assert_eq!(rows_without_source(&from_pipe.stdout), want);

    let twice = mamori()
        .args(["net", "features", "-", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        stderr(&twice).contains("read only once"),
        "{}",
        stderr(&twice)
    );
}

#[test]
fn lenient_reading_resynchronises_after_a_corrupt_record_length() {
    let tmp = TempDir::new("net-resync");
    let mut pcap = lab_pcap();
    let recs = records(&pcap);
    let total = recs.len() as u64;
    let bad = recs.len() / 2;
    let (from, to) = (recs[bad], recs[bad + 1]);
    pcap[from + 8..from + 12].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let path = tmp.0.join("corrupt.pcap");
    std::fs::write(&path, &pcap).expect("write");

    let strict = mamori()
        .args(["net", "features"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(strict.status.code(), Some(2));
    let err = stderr(&strict);
    assert!(
        err.contains(&format!(
            "corrupt.pcap: packet {} (byte offset {from})",
            bad + 1
        )),
        "{err}"
    );

    let lenient = run(mamori().args(["net", "features", "--lenient"]).arg(&path));
    let err = stderr(&lenient);
    assert_eq!(packets(&err), total - 1, "{err}");
    assert!(
        err.contains(&format!(
            "bytes {from}..{to} abandoned ({} bytes), reading resumed at byte offset {to}",
            to - from
        )),
        "{err}"
    );
}

#[test]
fn a_cut_gzip_capture_keeps_what_decompressed() {
    let tmp = TempDir::new("net-cut-gz");
    let gz = std::fs::read(lab_a().0).expect("capture");
    let path = tmp.0.join("cut.pcap.gz");
    std::fs::write(&path, &gz[..gz.len() * 6 / 10]).expect("write");

    let strict = mamori()
        .args(["net", "features"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(strict.status.code(), Some(2));
    let err = stderr(&strict);
    // Cut inside a record (or, rarely, between two: "before packet N").
    assert!(
        err.contains("cut.pcap.gz: ") && err.contains("packet "),
        "{err}"
    );
    assert!(err.contains("gzip stream ends early"), "{err}");

    let lenient = run(mamori().args(["net", "features", "--lenient"]).arg(&path));
    let err = stderr(&lenient);
    let total = records(&lab_pcap()).len() as u64;
    let kept = packets(&err);
    assert!(kept > total / 2 && kept < total, "{kept} of {total}: {err}");
    assert!(err.contains("truncated gzip"), "{err}");
}

#[test]
fn numbers_that_make_no_sense_are_refused() {
    let (capture, _) = lab_a();
    let cases: &[(&[&str], &str)] = &[
        (&["net", "features", "--slot", "0s"], "--slot"),
        (&["net", "features", "--interval", "0"], "--interval"),
        (&["net", "features", "--window", "0ms"], "--window"),
        (
            &["net", "features", "--idle-timeout", "0s"],
            "--idle-timeout",
        ),
        (
            &["net", "score", "-m", "x.model", "--threshold", "nan"],
            "--threshold",
        ),
        (
            &["net", "score", "-m", "x.model", "--threshold", "inf"],
            "--threshold",
        ),
        (&["net", "train", "-o", "x.model", "--c", "1,nan"], "--c"),
        (
            &["net", "train", "-o", "x.model", "--gamma", "0"],
            "--gamma",
        ),
        (
            &["net", "train", "-o", "x.model", "--target-fpr", "NaN"],
            "--target-fpr",
        ),
        (
            &["net", "train", "-o", "x.model", "--folds", "1"],
            "--folds",
        ),
        (
            &["net", "train", "-o", "x.model", "--trees", "0"],
            "--trees",
        ),
    ];
    for (args, flag) in cases {
        let out = mamori().args(*args).arg(&capture).output().expect("runs");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        // A list is checked element by element.
        let value = args[args.len() - 1].rsplit(',').next().unwrap_or_default();
        assert!(
            err.contains(flag) && err.contains(&format!("'{value}'")),
            "{args:?}: {err}"
        );
    }
}

fn forest(dir: &Path) -> PathBuf {
    let (a, a_labels) = lab_a();
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

#[test]
fn eval_with_labels_that_match_nothing_says_so() {
    let tmp = TempDir::new("net-eval-nomatch");
    let model = forest(&tmp.0);
    let labels = tmp.0.join("elsewhere.tsv");
    std::fs::write(&labels, "1 2 192.0.2.1 * from-another-run\n").expect("write");
    let out = mamori()
        .args(["net", "eval", "-m"])
        .arg(&model)
        .arg(lab_a().0)
        .arg("--labels")
        .arg(&labels)
        .output()
        .expect("runs");
    let (text, err) = (String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}\n{err}");
    assert!(err.contains("label 1 `from-another-run`") && err.contains("matched no packet"));
    assert!(err.contains("ROC AUC is undefined with one class"), "{err}");
    assert!(
        text.contains("ROC AUC n/a") && text.contains("recall n/a"),
        "{text}"
    );
    assert!(!text.contains("NaN"), "{text}");
}

#[test]
fn training_on_a_handful_of_rows_reports_the_real_rows() {
    let tmp = TempDir::new("net-tiny");
    let pcap = lab_pcap();
    let recs = records(&pcap);
    // The first 300 packets: a few seconds, a handful of device rows.
    let path = tmp.0.join("tiny.pcap");
    std::fs::write(&path, &pcap[..recs[300]]).expect("write");
    let out = run(mamori()
        .args([
            "net", "train", "--model", "iforest", "--kind", "device", "-o",
        ])
        .arg(tmp.0.join("tiny.model"))
        .arg(&path));
    let err = stderr(&out);
    assert!(err.contains("warning: only "), "{err}");
    assert!(err.contains("drawn with repeats"), "{err}");
    assert!(!err.contains("on 5000 normal"), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("normal Device rows (calibrated on "),
        "{last}"
    );
}
