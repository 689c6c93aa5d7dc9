//! Following live input with real files and sockets in a temp dir: rotation as auditd does it
//! (rename, create anew), truncation, stopping, and the audisp socket with a reconnect.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mamori_audit::{connect_audisp, follow_path, AuditEvent, FollowOptions, Start, StopHandle};

fn event(serial: u64) -> String {
    format!(
        "type=SYSCALL msg=audit(1700000000.{ms:03}:{serial}): arch=c000003e syscall=257 success=yes exit=3 pid={serial} comm=\"cat\" exe=\"/usr/bin/cat\" key=(null)\n\
type=PATH msg=audit(1700000000.{ms:03}:{serial}): item=0 name=\"/etc/f{serial}\" nametype=NORMAL\n\
type=PROCTITLE msg=audit(1700000000.{ms:03}:{serial}): proctitle=636174\n",
        ms = serial % 1000
    )
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn opts(stop: &StopHandle, start: Start) -> FollowOptions {
    FollowOptions {
        poll: Duration::from_millis(10),
        quiet_after: Duration::from_millis(50),
        start,
        stop: stop.clone(),
        ..FollowOptions::default()
    }
}

/// Waits until `n` events arrived (or 10 s passed) and returns their serials.
fn take(rx: &mpsc::Receiver<AuditEvent>, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ev) => got.push(ev.serial),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn rotation_finishes_the_old_file_then_reads_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    append(&log, &event(1));
    let stop = StopHandle::new();
    let mut reader = follow_path(&log, opts(&stop, Start::Beginning)).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        for ev in reader.by_ref() {
            tx.send(ev.unwrap()).unwrap();
        }
        let f = reader.get_ref().get_ref();
        (f.rotations(), f.truncations(), reader.stats().clone())
    });
    assert_eq!(take(&rx, 1), vec![1]);
    append(&log, &event(2));
    // auditd's rotation: rename, then a new file. A last write reaches the old one in between.
    fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
    append(&dir.path().join("audit.log.1"), &event(3));
    thread::sleep(Duration::from_millis(40));
    append(&log, &event(4));
    append(&log, &event(5));
    assert_eq!(take(&rx, 4), vec![2, 3, 4, 5]);
    stop.stop();
    let (rotations, truncations, stats) = t.join().unwrap();
    assert_eq!((rotations, truncations), (1, 0));
    assert_eq!((stats.events, stats.records, stats.malformed), (5, 15, 0));
}

#[test]
fn truncation_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    append(&log, &(event(10) + &event(11)));
    let stop = StopHandle::new();
    let mut reader = follow_path(&log, opts(&stop, Start::Beginning)).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        for ev in reader.by_ref() {
            tx.send(ev.unwrap()).unwrap();
        }
        reader.get_ref().get_ref().truncations()
    });
    assert_eq!(take(&rx, 2), vec![10, 11]);
    // copytruncate-style: same file, emptied, then shorter content than was read.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    thread::sleep(Duration::from_millis(40));
    append(&log, &event(12));
    assert_eq!(take(&rx, 1), vec![12]);
    stop.stop();
    assert_eq!(t.join().unwrap(), 1);
}

#[test]
fn start_at_end_skips_history_and_stop_flushes_open_events() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    append(&log, &event(1));
    let stop = StopHandle::new();
    let mut o = opts(&stop, Start::End);
    // No quiet flush: the open event must come out because of the stop.
    o.quiet_after = Duration::from_secs(3600);
    let mut reader = follow_path(&log, o).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let mut how = Vec::new();
        while let Some(ev) = reader.next_event() {
            let (ev, c) = ev.unwrap();
            how.push(c);
            tx.send(ev).unwrap();
        }
        how
    });
    thread::sleep(Duration::from_millis(30));
    // The SYSCALL alone: open until the stop ends the input.
    append(&log, event(2).lines().next().unwrap());
    append(&log, "\n");
    thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    stop.stop();
    let how = t.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        started.elapsed()
    );
    assert_eq!(take(&rx, 2), vec![2], "history skipped");
    assert_eq!(how, vec![mamori_audit::Completion::End]);
}

#[test]
fn starting_at_the_end_mid_line_drops_the_partial_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let e1 = event(1);
    // auditd is halfway through a line when the follower starts.
    append(&log, &e1[..e1.len() - 10]);
    let stop = StopHandle::new();
    let mut reader = follow_path(&log, opts(&stop, Start::End)).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        for ev in reader.by_ref() {
            tx.send(ev.unwrap()).unwrap();
        }
        reader.stats().clone()
    });
    thread::sleep(Duration::from_millis(30));
    append(&log, &(e1[e1.len() - 10..].to_owned() + &event(2)));
    assert_eq!(take(&rx, 1), vec![2]);
    stop.stop();
    let stats = t.join().unwrap();
    assert_eq!((stats.malformed, stats.records), (0, 3), "{stats}");
}

#[test]
fn a_file_that_appears_later_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let stop = StopHandle::new();
    let mut reader = follow_path(&log, opts(&stop, Start::End)).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        for ev in reader.by_ref() {
            tx.send(ev.unwrap()).unwrap();
        }
    });
    thread::sleep(Duration::from_millis(30));
    append(&log, &(event(7) + &event(8)));
    assert_eq!(take(&rx, 2), vec![7, 8]);
    stop.stop();
    t.join().unwrap();
}

#[test]
fn quiet_input_flushes_the_last_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    // A kernel record with no PROCTITLE or EOE: only quiet input completes it.
    append(
        &log,
        "type=AVC msg=audit(1700000000.000:40): avc:  denied  { read } for pid=1\n",
    );
    let stop = StopHandle::new();
    let mut reader = follow_path(&log, opts(&stop, Start::Beginning)).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        while let Some(ev) = reader.next_event() {
            tx.send(ev.unwrap()).unwrap();
        }
    });
    let (ev, how) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((ev.serial, how), (40, mamori_audit::Completion::Idle));
    stop.stop();
    t.join().unwrap();
}

#[test]
fn audisp_socket_with_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("audispd_events");
    let listener = UnixListener::bind(&sock).unwrap();
    let server = thread::spawn(move || {
        // auditd's af_unix plugin: one line per record; then auditd restarts (the connection
        // closes) and the client comes back.
        let (mut c, _) = listener.accept().unwrap();
        c.write_all((event(100) + &event(101)).as_bytes()).unwrap();
        drop(c);
        let (mut c, _) = listener.accept().unwrap();
        c.write_all(event(102).as_bytes()).unwrap();
        // Keep the connection open until the client stops.
        thread::sleep(Duration::from_millis(300));
    });
    let stop = StopHandle::new();
    let mut reader = connect_audisp(&sock, opts(&stop, Start::End)).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        for ev in reader.by_ref() {
            tx.send(ev.unwrap()).unwrap();
        }
        reader.get_ref().get_ref().reconnects()
    });
    assert_eq!(take(&rx, 3), vec![100, 101, 102]);
    stop.stop();
    assert_eq!(t.join().unwrap(), 1);
    server.join().unwrap();
    assert!(connect_audisp(dir.path().join("none"), FollowOptions::default()).is_err());
}

/// Reads everything a follower has now, then stops it: the bytes and the follower.
fn read_now(mut f: mamori_audit::Follow) -> (String, mamori_audit::Follow) {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..1000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => f.stop_handle().stop(),
            Err(e) => panic!("{e}"),
        }
    }
    (String::from_utf8(out).unwrap(), f)
}

#[test]
fn resume_continues_where_a_run_stopped_in_the_same_or_the_rotated_file() {
    use mamori_audit::{Follow, Resumed};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    append(&log, "one\ntwo\n");
    let stop = StopHandle::new();
    let (got, f) = read_now(Follow::open(&log, &opts(&stop, Start::Beginning)).unwrap());
    assert_eq!(got, "one\ntwo\n");
    let at = f.position().unwrap();
    assert_eq!(at.offset, 8);

    // same file, more written while we were away
    append(&log, "three\n");
    let stop = StopHandle::new();
    let (got, f) = read_now(Follow::open(&log, &opts(&stop, Start::At(at))).unwrap());
    assert_eq!((got.as_str(), f.resumed()), ("three\n", Resumed::SameFile));
    let at = f.position().unwrap();

    // rotated while we were away: the old file's rest, then the new file
    append(&log, "four\n");
    fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
    append(&log, "five\n");
    let stop = StopHandle::new();
    let (got, f) = read_now(Follow::open(&log, &opts(&stop, Start::At(at))).unwrap());
    assert_eq!(
        (got.as_str(), f.resumed()),
        ("four\nfive\n", Resumed::RotatedFile)
    );
    let at = f.position().unwrap();

    // rotated twice: the saved file is gone; start over in the current one and say so
    fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
    append(&log, "six\n");
    fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
    append(&log, "seven\n");
    let stop = StopHandle::new();
    let (got, f) = read_now(Follow::open(&log, &opts(&stop, Start::At(at))).unwrap());
    assert_eq!((got.as_str(), f.resumed()), ("seven\n", Resumed::Lost));
}
