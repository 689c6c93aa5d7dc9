//! The eBPF probe on this machine's kernel: real processes, real system calls. Needs root and a
//! kernel with BTF; skipped (with a message) otherwise.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mamori_capture::raw::RawEvent;
use mamori_capture::{Assembler, Captured, Probe, ProbeConfig};
use mamori_ingest::Record;

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    if !(root && btf) {
        eprintln!("skipped: the eBPF probe needs root and /sys/kernel/btf/vmlinux");
    }
    root && btf
}

type Sink = Arc<Mutex<Vec<Captured>>>;

fn start(config: ProbeConfig) -> (Probe, Sink) {
    let sink: Sink = Arc::default();
    let out = Arc::clone(&sink);
    let mut asm = Assembler::new();
    let probe = Probe::start(config, move |raw: &RawEvent<'_>| {
        let mut v = out.lock().expect("sink lock");
        asm.push(raw, &mut |c| v.push(c));
    })
    .expect("probe loads and attaches");
    (probe, sink)
}

fn calls_of(sink: &Sink, pid: u32) -> Vec<mamori_detect::event::SyscallEvent> {
    sink.lock()
        .expect("sink lock")
        .iter()
        .filter_map(|c| match &c.record {
            Record::Call(e) if e.pid == Some(pid) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn wait_for(
    sink: &Sink,
    pid: u32,
    pred: impl Fn(&[mamori_detect::event::SyscallEvent]) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if pred(&calls_of(sink, pid)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn sees_a_child_open_read_and_exec_with_paths() {
    if !can_run() {
        return;
    }
    let (probe, sink) = start(ProbeConfig {
        only_watched: false,
        ..ProbeConfig::default()
    });
    let mut child = Command::new("/bin/sh")
        .args(["-c", "exec /bin/cat /etc/hostname"])
        .stdout(Stdio::null())
        .spawn()
        .expect("sh starts");
    let pid = child.id();
    child.wait().expect("child ends");
    let seen = wait_for(&sink, pid, |calls| {
        calls.iter().any(|e| e.syscall == "exit_group")
    });
    let calls = calls_of(&sink, pid);
    assert!(
        seen,
        "the child's exit_group was captured; got {} calls",
        calls.len()
    );
    let exec = calls
        .iter()
        .find(|e| e.syscall == "execve" && e.args.first().map(String::as_str) == Some("/bin/cat"))
        .expect("execve of /bin/cat");
    assert_eq!(exec.args[1], "[\"/bin/cat\", \"/etc/hostname\"]");
    assert_eq!(exec.ret, Some(0));
    let (at, open) = calls
        .iter()
        .enumerate()
        .find(|(_, e)| {
            e.syscall == "openat" && e.args.get(1).map(String::as_str) == Some("/etc/hostname")
        })
        .expect("openat of /etc/hostname");
    let fd = open.ret.expect("openat completed");
    assert!(fd >= 0);
    assert_eq!(open.fd_path.as_deref(), Some("/etc/hostname"));
    // the dynamic loader read other files on the same descriptor number before
    let read = calls[at..]
        .iter()
        .find(|e| e.syscall == "read" && e.args.first() == Some(&fd.to_string()))
        .expect("read of the opened descriptor");
    assert_eq!(read.fd_path.as_deref(), Some("/etc/hostname"));
    assert!(calls.iter().all(|e| e.time_ns.is_some() && e.tid.is_some()));
    let counters = probe.counters();
    assert!(counters.written > 0);
    assert_eq!(counters.dropped, 0, "{counters:?}");
    probe.stop().expect("probe stops");
}

/// Finds the cgroup-v2 mount (the unified hierarchy), if the host has one.
fn cgroup2_mount() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&"cgroup2"))
        .and_then(|f| f.get(1).map(|s| s.to_string()))
}

#[test]
fn records_only_watched_cgroups() {
    if !can_run() {
        return;
    }
    let Some(root) = cgroup2_mount() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let dir = format!("{root}/mamori-test-{}", std::process::id());
    std::fs::create_dir(&dir).expect("create a test cgroup");
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    use std::os::unix::fs::MetadataExt;
    let cgroup_id = std::fs::metadata(&dir).expect("stat cgroup").ino();

    let (probe, sink) = start(ProbeConfig::default());
    probe.watch(cgroup_id).expect("watch");
    let spawn_waiting = || {
        Command::new("/bin/sh")
            .args(["-c", "read x; cat /etc/hostname > /dev/null"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("sh starts")
    };
    let mut inside = spawn_waiting();
    let mut outside = spawn_waiting();
    std::fs::write(format!("{dir}/cgroup.procs"), inside.id().to_string())
        .expect("move into the test cgroup");
    for c in [&mut inside, &mut outside] {
        c.stdin
            .take()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("release the child");
    }
    let (ip, op) = (inside.id(), outside.id());
    inside.wait().expect("inside ends");
    outside.wait().expect("outside ends");
    assert!(
        wait_for(&sink, ip, |calls| calls
            .iter()
            .any(|e| e.syscall == "exit_group")),
        "the watched process was recorded"
    );
    assert!(
        calls_of(&sink, op).is_empty(),
        "the unwatched process was not recorded"
    );
    assert!(sink
        .lock()
        .expect("sink")
        .iter()
        .all(|c| c.cgroup == cgroup_id));
    // the cgroup must be empty before it can be removed
    std::thread::sleep(Duration::from_millis(100));
    probe.stop().expect("probe stops");
}
