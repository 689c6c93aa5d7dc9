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

/// A forking web server started before capture (busybox httpd, as in the lab image): the accepted
/// connection is named with its listening port (read from /proc for a socket opened before
/// capture) and the client's address, and the child's first read carries the request line, which
/// is what the request signal reads. Later reads carry no data.
#[test]
fn a_servers_first_read_of_a_new_connection_carries_the_request() {
    if !can_run() {
        return;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("busybox is installed (the live lab installs busybox-static)");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let root = std::env::temp_dir().join(format!("mamori-httpd-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("web root");
    struct Server(std::process::Child, std::path::PathBuf);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let server = Server(
        Command::new(busybox)
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(&root)
            .spawn()
            .expect("busybox httpd starts"),
        root.clone(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "httpd listens");
        std::thread::sleep(Duration::from_millis(20));
    }

    let (probe, sink) = start(ProbeConfig {
        only_watched: false,
        ..ProbeConfig::default()
    });
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let client_port = client.local_addr().expect("client address").port();
    client
        .write_all(b"GET /mamori-probe-check?x=1 HTTP/1.0\r\nHost: test\r\n\r\n")
        .expect("send the request");
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut client, &mut reply).expect("httpd answers");
    assert!(reply.contains(" 404 "), "{reply}");

    let connection = format!("TCP:[127.0.0.1:{port}->127.0.0.1:{client_port}]");
    let reads = |sink: &Sink| -> Vec<mamori_detect::event::SyscallEvent> {
        sink.lock()
            .expect("sink lock")
            .iter()
            .filter_map(|c| match &c.record {
                Record::Call(e) if e.fd_path.as_deref() == Some(connection.as_str()) => {
                    Some(e.clone())
                }
                _ => None,
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !reads(&sink).iter().any(|e| e.syscall == "read") {
        std::thread::sleep(Duration::from_millis(50));
    }
    let on_connection = reads(&sink);
    let pid = server.0.id();
    assert!(
        on_connection
            .iter()
            .any(|e| e.syscall == "accept" && e.pid == Some(pid) && e.ret.is_some()),
        "the server's accept names the connection: {on_connection:#?}"
    );
    let first = on_connection
        .iter()
        .find(|e| e.syscall == "read")
        .expect("the child reads the connection");
    assert_ne!(
        first.pid,
        Some(pid),
        "busybox httpd reads in a forked child"
    );
    assert!(
        first
            .args
            .get(1)
            .is_some_and(|d| d == "GET /mamori-probe-check?x=1 HTTP/1.0"),
        "{first:?}"
    );
    assert!(first.ret.is_some_and(|n| n > 0), "{first:?}");
    assert!(
        on_connection
            .iter()
            .filter(|e| e.syscall == "read")
            .skip(1)
            .all(|e| e.args.len() == 1),
        "only the first read carries data: {on_connection:#?}"
    );
    probe.stop().expect("probe stops");
}
