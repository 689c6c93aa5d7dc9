//! What the `mamori` binary does with input and output a user gets wrong: output paths that are
//! links, FIFOs or devices; numbers that parse but mean nothing; input unlike the model's
//! training input; hostile traces that would grow memory without bound. The data is the bundled
//! real motion recording (data/motion), through `mamori convert`.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use common::{mamori, repo, run, TempDir};

/// The first `n` events of the bundled normal motion recording as JSON lines (`strace -f -tt
/// -yy`: every call timed, descriptors annotated with their paths).
fn motion_events(dir: &Path, n: usize) -> Vec<serde_json::Value> {
    let out = run(mamori()
        .arg("convert")
        .arg(repo().join("data/motion/normal-a.strace.gz"))
        .arg("-o")
        .arg(dir.join("all.jsonl")));
    drop(out);
    let text = std::fs::read_to_string(dir.join("all.jsonl")).expect("converted");
    text.lines()
        .take(n)
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn write_jsonl(path: &Path, events: &[serde_json::Value]) {
    let mut text = String::new();
    for e in events {
        text.push_str(&e.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).expect("write events");
}

/// Trains a small STIDE model on `input`, to `output`, returning the command's output.
fn train(input: &Path, output: &Path, extra: &[&str]) -> std::process::Output {
    mamori()
        .args(["train", "--quiet", "--model", "stide"])
        .args(["--profile"])
        .arg(repo().join("profiles/motion.toml"))
        .args(extra)
        .arg("-o")
        .arg(output)
        .arg(input)
        .output()
        .expect("mamori runs")
}

/// `mamori score EXTRA -m MODEL INPUT`.
fn score(model: &Path, input: &Path, extra: &[&str]) -> std::process::Output {
    mamori()
        .arg("score")
        .args(extra)
        .arg("-m")
        .arg(model)
        .arg(input)
        .output()
        .expect("mamori runs")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

struct Fixture {
    tmp: TempDir,
    train: PathBuf,
    events: Vec<serde_json::Value>,
}

fn fixture(name: &str) -> Fixture {
    let tmp = TempDir::new(name);
    let events = motion_events(&tmp.0, 12_000);
    let train = tmp.0.join("train.jsonl");
    write_jsonl(&train, &events[..8_000]);
    Fixture { tmp, train, events }
}

#[test]
fn train_output_never_replaces_links_fifos_or_devices() {
    let f = fixture("output");
    let dir = &f.tmp.0;

    // a link to a regular file: refused, link and target untouched
    let target = dir.join("target.json");
    std::fs::write(&target, "keep").expect("target");
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let out = train(&f.train, &link, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&target).expect("target"), "keep");

    // asked for: the link itself becomes the model, the old target stays
    let out = train(&f.train, &link, &["--replace-symlink"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&link).expect("model").is_file());
    assert_eq!(std::fs::read_to_string(&target).expect("target"), "keep");
    run(mamori().args(["model", "show"]).arg(&link));

    // a FIFO: written through to its reader, still a FIFO afterwards
    let fifo = dir.join("model.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).expect("read the fifo"))
    };
    let out = train(&f.train, &fifo, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let through = reader.join().expect("reader");
    let copy = dir.join("through-fifo.json");
    std::fs::write(&copy, &through).expect("copy");
    run(mamori().args(["model", "show"]).arg(&copy));
    assert!(std::fs::symlink_metadata(&fifo)
        .expect("fifo")
        .file_type()
        .is_fifo());

    // a device: written through, still the device (as root a rename would replace it)
    let out = train(&f.train, Path::new("/dev/null"), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata("/dev/null")
        .expect("/dev/null")
        .file_type()
        .is_char_device());
}

#[test]
fn numbers_that_mean_nothing_are_refused_where_typed() {
    let f = fixture("numbers");
    let model = f.tmp.0.join("m.json");
    let out = train(&f.train, &model, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cases: &[(&[&str], &str)] = &[
        (&["score", "--threshold", "nan"], "--threshold"),
        (&["score", "--threshold", "inf"], "--threshold"),
        (&["score", "--alert-cooldown=-1"], "--alert-cooldown"),
        (&["score", "--alert-gap", "NaN"], "--alert-gap"),
        (&["score", "--warmup", "nan"], "--warmup"),
        (&["score", "--window", "0"], "--window"),
        (&["score", "--stride", "0"], "--stride"),
    ];
    for (args, flag) in cases {
        let out = mamori()
            .args(*args)
            .arg("-m")
            .arg(&model)
            .arg(&f.train)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(flag), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?} scored something");
    }
    for extra in [
        &["--window", "0"][..],
        &["--min-syscall-share", "nan"],
        &["--target-fpr", "2"],
        &["--holdout=-0.5"],
        &["--threshold=-inf"],
    ] {
        let out = train(&f.train, &f.tmp.0.join("bad.json"), extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let flag = extra[0].split('=').next().unwrap_or_default();
        assert!(stderr(&out).contains(flag), "{extra:?}: {}", stderr(&out));
    }
}

#[test]
fn input_unlike_the_training_input_is_refused_or_warned_about() {
    let f = fixture("mismatch");
    let model = f.tmp.0.join("m.json");
    let out = train(&f.train, &model, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let held_out = &f.events[8_000..];

    // like the training input: scored, no complaint
    let same = f.tmp.0.join("same.jsonl");
    write_jsonl(&same, held_out);
    let out = score(&model, &same, &[]);
    assert!(!stderr(&out).contains("unlike"), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());

    // recorded without -yy: no descriptor paths
    let no_paths: Vec<serde_json::Value> = held_out
        .iter()
        .cloned()
        .map(|mut e| {
            e["fd_path"] = serde_json::Value::Null;
            e
        })
        .collect();
    let file = f.tmp.0.join("no-paths.jsonl");
    write_jsonl(&file, &no_paths);
    let out = score(&model, &file, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no-paths.jsonl") && err.contains("strace -yy"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "refused input printed windows");
    let out = score(&model, &file, &["--ignore-input-mismatch"]);
    assert!(stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());

    // recorded without timestamps
    let untimed: Vec<serde_json::Value> = held_out
        .iter()
        .cloned()
        .map(|mut e| {
            e["time_ns"] = serde_json::Value::Null;
            e
        })
        .collect();
    let file = f.tmp.0.join("untimed.jsonl");
    write_jsonl(&file, &untimed);
    let out = score(&model, &file, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("timestamp"), "{}", stderr(&out));
}

#[test]
fn empty_input_says_no_windows() {
    let f = fixture("empty");
    let model = f.tmp.0.join("m.json");
    assert!(train(&f.train, &model, &[]).status.success());
    let empty = f.tmp.0.join("empty.jsonl");
    std::fs::write(&empty, "").expect("empty");
    let out = score(&model, &empty, &[]);
    let err = stderr(&out);
    assert!(err.contains("no windows"), "{err}");
    assert!(!err.contains("NaN"), "{err}");
}

/// Two hundred thousand threads that each make a call and never exit: the per-thread streams
/// stay bounded and the closed ones are reported.
#[test]
fn a_flood_of_threads_is_bounded_and_reported() {
    let f = fixture("threads");
    let model = f.tmp.0.join("m.json");
    let out = train(&f.train, &model, &["--stream", "per-thread"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let template = f.events[100].clone();
    let mut text = String::new();
    for tid in 0..200_000u32 {
        let mut e = template.clone();
        e["pid"] = tid.into();
        e["tid"] = tid.into();
        e["time_ns"] = (template["time_ns"].as_i64().unwrap_or(0) + i64::from(tid) * 1000).into();
        text.push_str(&e.to_string());
        text.push('\n');
    }
    let flood = f.tmp.0.join("flood.jsonl");
    std::fs::write(&flood, text).expect("flood");
    let out = score(&model, &flood, &["--ignore-input-mismatch"]);
    let err = stderr(&out);
    assert!(err.contains("idle streams closed"), "{err}");
}

/// Scores `input` with the model, feeding `stdin_bytes` to its standard input.
fn score_piped(model: &Path, input: &str, stdin_bytes: Vec<u8>) -> std::process::Output {
    use std::io::Write;
    let mut child = mamori()
        .args(["score", "-m"])
        .arg(model)
        .arg(input)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mamori runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        // the other end may stop reading early on an error; that is what the test checks
        let _ = stdin.write_all(&stdin_bytes);
    });
    let out = child.wait_with_output().expect("mamori ends");
    feeder.join().expect("feeder");
    out
}

/// A recording through a pipe (`-`, `/dev/stdin`, gzip-compressed or not) scores exactly as
/// the file does: format detection reads a prefix and hands it on instead of losing it.
#[test]
fn a_recording_through_a_pipe_scores_like_the_file() {
    let tmp = TempDir::new("pipe");
    let trace = repo().join("data/motion/normal-b.strace.gz");
    let model = tmp.0.join("m.json");
    let out = mamori()
        .args(["train", "--quiet", "--model", "stide", "--profile"])
        .arg(repo().join("profiles/motion.toml"))
        .arg("-o")
        .arg(&model)
        .arg(repo().join("data/motion/normal-a.strace.gz"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    // exit 1: the daemon's shutdown at the end of the recording alerts
    let from_file = score(&model, &trace, &[]);
    assert!(!from_file.stdout.is_empty(), "{}", stderr(&from_file));
    let gz = std::fs::read(&trace).expect("trace");
    let plain = std::process::Command::new("gzip")
        .args(["-dc"])
        .arg(&trace)
        .output()
        .expect("gzip")
        .stdout;
    for (name, input, bytes) in [
        ("- (gzip)", "-", gz.clone()),
        ("/dev/stdin (gzip)", "/dev/stdin", gz),
        ("- (text)", "-", plain.clone()),
        ("/dev/stdin (text)", "/dev/stdin", plain),
    ] {
        let out = score_piped(&model, input, bytes);
        assert_eq!(
            out.status.code(),
            from_file.status.code(),
            "{name}: {}",
            stderr(&out)
        );
        assert!(
            out.stdout == from_file.stdout,
            "{name}: scores differ from the file's ({} vs {} bytes): {}",
            out.stdout.len(),
            from_file.stdout.len(),
            stderr(&out)
        );
    }

    // learning a class table needs two passes: a pipe is refused, not read as empty
    let out = mamori()
        .args(["train", "--quiet", "--model", "stide", "-o"])
        .arg(tmp.0.join("x.json"))
        .arg("-")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--profile"), "{}", stderr(&out));
}
