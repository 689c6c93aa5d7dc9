//! Turns the probe's raw entry/exit records into mamori's [`SyscallEvent`]s: names calls, pairs an
//! entry with its exit where the result matters, renders arguments as text, and keeps a
//! per-process descriptor table so `fd_path` names the file or socket a call works on, as
//! strace's `-yy` does.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use mamori_detect::event::SyscallEvent;
use mamori_ingest::Record;

use crate::raw::{Kind, RawEvent};
use crate::sockets::{accepted_name, socket_inode, SocketNamer};
use crate::syscalls_table::{table, CallInfo, Payload};

/// One assembled record and the cgroup it came from (the caller names the container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The task's cgroup id as the probe saw it.
    pub cgroup: u64,
    /// A system call, or a thread/process ending.
    pub record: Record,
}

/// Most descriptors remembered per process; a table that grows past this is dropped and
/// re-learned from /proc, so a process opening descriptors in a loop cannot grow memory.
const FDS_PER_PROCESS: usize = 16_384;
/// Most processes with a descriptor table.
const PROCESSES: usize = 8_192;
/// Most calls waiting for their exit; past this the oldest are emitted without a result.
const PENDING_MAX: usize = 65_536;
const F_DUPFD: u64 = 0;
const F_DUPFD_CLOEXEC: u64 = 1030;
const CLONE_THREAD: u64 = 0x10000;

/// Descriptor tables read from /proc when a container starts being watched, before its events
/// flow. The assembler takes a process's table from here the first time it sees the process.
///
/// Why: reading a descriptor's link only when a call first uses it races with the program. A
/// shell that points fd 1 at a log file for one `echo` is, at the moment its calls wake the
/// reader, usually inside that redirection, so the saved copy of fd 1 would be named after the
/// log, and the mistake would repeat at every later save and restore. A snapshot taken when
/// watching starts is taken at a moment unrelated to the program's activity.
#[derive(Debug, Clone, Default)]
pub struct FdSnapshots(Arc<Mutex<HashMap<u32, FdTable>>>);

type FdTable = HashMap<i64, Option<Arc<str>>>;

impl FdSnapshots {
    /// Reads the open descriptors of each process in `pids` (from `/proc`).
    pub fn take(&self, pids: &[u32]) {
        self.take_under("/proc", pids);
    }

    fn take_under(&self, proc_root: &str, pids: &[u32]) {
        let mut tables = Vec::new();
        let mut sockets = SocketNamer::default();
        for &pid in pids {
            let Ok(entries) = std::fs::read_dir(format!("{proc_root}/{pid}/fd")) else {
                continue;
            };
            let mut table = FdTable::new();
            for entry in entries.flatten().take(FDS_PER_PROCESS) {
                let Some(fd) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<i64>().ok())
                else {
                    continue;
                };
                if let Ok(link) = std::fs::read_link(entry.path()) {
                    let link = link.to_string_lossy();
                    let name = socket_inode(&link)
                        .and_then(|inode| sockets.name(proc_root, pid, inode))
                        .unwrap_or_else(|| link.to_string());
                    table.insert(fd, Some(Arc::from(name)));
                }
            }
            tables.push((pid, table));
        }
        if let Ok(mut held) = self.0.lock() {
            if held.len() + tables.len() > PROCESSES {
                held.clear();
            }
            held.extend(tables);
        }
    }

    fn claim(&self, tgid: u32) -> Option<FdTable> {
        self.0.lock().ok()?.remove(&tgid)
    }
}

/// The parent process id of `tgid`, from /proc/<tgid>/stat.
fn parent_of(proc_root: &str, tgid: u32) -> Option<u32> {
    mamori_core::procfs::read_stat(proc_root, tgid).map(|s| s.ppid)
}

struct Pending {
    cgroup: u64,
    nr: i32,
    args: [u64; 6],
    event: SyscallEvent,
}

/// Stateful converter from raw records to events.
pub struct Assembler {
    calls: Vec<CallInfo>,
    pending: HashMap<u32, Pending>,
    fds: HashMap<u32, FdTable>,
    /// Tables read when watching began, claimed per process on first sight.
    snapshots: FdSnapshots,
    /// The parent's table at each fork, by parent and the child's id as the fork returned it,
    /// until the child's own first record claims it.
    forks: HashMap<(u32, u32), FdTable>,
    /// Children whose own first record came before their parent's return (same key): the
    /// parent's return then has no table to keep for them.
    started_first: HashSet<(u32, u32)>,
    /// Added to CLOCK_MONOTONIC to get nanoseconds since the epoch.
    epoch_offset_ns: i64,
    /// Where /proc is (tests point it elsewhere).
    proc_root: String,
    /// Names of sockets first met by their /proc link.
    sockets: SocketNamer,
    /// Names for unknown syscall numbers, made once.
    unknown_names: HashMap<i32, String>,
}

impl Default for Assembler {
    fn default() -> Self {
        Self::new()
    }
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// What is kept of received data: its first line, the request line the request signal reads,
/// without the headers (cookies, credentials) that follow it. On standard input, where a remote
/// shell's commands arrive a byte or a line at a time, every line is kept up to a protocol's
/// `\r\n` (a forking server reads its client's request on descriptor 0 too).
fn kept_data(payload: &[u8], standard_input: bool) -> &[u8] {
    let end = if standard_input {
        payload.windows(2).position(|w| w == b"\r\n")
    } else {
        payload.iter().position(|&b| b == b'\r' || b == b'\n')
    };
    &payload[..end.unwrap_or(payload.len())]
}

fn nul_terminated(b: &[u8]) -> (&[u8], &[u8]) {
    match b.iter().position(|&c| c == 0) {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &[]),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Renders a socket address as strace does inside `-yy` annotations.
pub fn sockaddr_text(b: &[u8]) -> Option<String> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    match i32::from(family) {
        libc::AF_INET if b.len() >= 8 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            Some(format!("{}.{}.{}.{}:{port}", b[4], b[5], b[6], b[7]))
        }
        libc::AF_INET6 if b.len() >= 24 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[8..24]);
            Some(format!("[{}]:{port}", std::net::Ipv6Addr::from(octets)))
        }
        libc::AF_UNIX => {
            let path = &b[2..];
            // abstract sockets start with a NUL
            if path.first() == Some(&0) {
                Some(format!("@{}", text(nul_terminated(&path[1..]).0)))
            } else {
                Some(text(nul_terminated(path).0))
            }
        }
        _ => None,
    }
}

/// The descriptor a call works on, from its argument words.
fn fd_arg(raw: &RawEvent<'_>, info: &CallInfo) -> Option<i64> {
    info.fd_arg.map(|i| raw.args[usize::from(i)] as i32 as i64)
}

fn socket_kind(domain: u64, ty: u64) -> &'static str {
    match (domain as i32, (ty & 0xf) as i32) {
        (libc::AF_INET, libc::SOCK_STREAM) => "TCP",
        (libc::AF_INET, libc::SOCK_DGRAM) => "UDP",
        (libc::AF_INET6, libc::SOCK_STREAM) => "TCPv6",
        (libc::AF_INET6, libc::SOCK_DGRAM) => "UDPv6",
        (libc::AF_UNIX, _) => "UNIX",
        (libc::AF_NETLINK, _) => "NETLINK",
        _ => "socket",
    }
}

impl Assembler {
    /// An assembler for this architecture's system calls, reading /proc for descriptors opened
    /// before capture started.
    pub fn new() -> Self {
        Assembler {
            calls: table(),
            pending: HashMap::new(),
            fds: HashMap::new(),
            epoch_offset_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC),
            proc_root: "/proc".into(),
            unknown_names: HashMap::new(),
            snapshots: FdSnapshots::default(),
            forks: HashMap::new(),
            started_first: HashSet::new(),
            sockets: SocketNamer::default(),
        }
    }

    /// Takes descriptor tables from `snapshots` (filled when containers start being watched).
    pub fn with_snapshots(mut self, snapshots: FdSnapshots) -> Self {
        self.snapshots = snapshots;
        self
    }

    /// Reads descriptors from another /proc tree (tests).
    pub fn with_proc_root(mut self, root: impl Into<String>) -> Self {
        self.proc_root = root.into();
        self
    }

    /// Calls still waiting for their exit.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn info(&self, nr: i32) -> Option<&CallInfo> {
        usize::try_from(nr).ok().and_then(|i| self.calls.get(i))
    }

    fn name(&mut self, nr: i32) -> String {
        if let Some(name) = self.info(nr).and_then(|c| c.name) {
            return name.to_string();
        }
        self.unknown_names
            .entry(nr)
            .or_insert_with(|| format!("syscall_{nr}"))
            .clone()
    }

    /// The path behind a process's descriptor: the table, else /proc (remembered either way).
    fn fd_path(&mut self, tgid: u32, fd: i64) -> Option<String> {
        if fd < 0 {
            return None;
        }
        if let Some(known) = self.table(tgid).get(&fd) {
            return known.as_deref().map(str::to_string);
        }
        let link = format!("{}/{tgid}/fd/{fd}", self.proc_root);
        let path: Option<Arc<str>> = std::fs::read_link(link).ok().map(|p| {
            let link = p.to_string_lossy();
            let named = socket_inode(&link)
                .and_then(|inode| self.sockets.name(&self.proc_root, tgid, inode));
            Arc::from(named.as_deref().unwrap_or(&link))
        });
        let table = self.table(tgid);
        if table.len() >= FDS_PER_PROCESS {
            table.clear();
        }
        table.insert(fd, path.clone());
        path.as_deref().map(str::to_string)
    }

    /// A process first seen: start from its parent's table, as fork does. Reading the child's
    /// descriptors from /proc instead races with the child (a short `cat` is often gone before
    /// its calls are assembled), so the same program would get different classes from run to
    /// run. The child can be seen before the parent's fork returns, hence /proc for the parent.
    fn inherit_from_parent(&mut self, tgid: u32) {
        if let Some(table) = self.snapshots.claim(tgid) {
            self.fds.insert(tgid, table);
            return;
        }
        let Some(ppid) = parent_of(&self.proc_root, tgid) else {
            return;
        };
        if let Some(parent) = self.fds.get(&ppid) {
            let table = parent.clone();
            self.fds.insert(tgid, table);
        }
    }

    /// The descriptor table of `tgid`; a process seen for the first time starts from its
    /// snapshot or its parent's table.
    fn table(&mut self, tgid: u32) -> &mut FdTable {
        if !self.fds.contains_key(&tgid) {
            if self.fds.len() >= PROCESSES {
                self.fds.clear();
            }
            self.inherit_from_parent(tgid);
        }
        self.fds.entry(tgid).or_default()
    }

    fn set_fd(&mut self, tgid: u32, fd: i64, path: Option<String>) {
        let table = self.table(tgid);
        match path {
            Some(p) => {
                table.insert(fd, Some(Arc::from(p)));
            }
            // unknown: look it up in /proc next time
            None => {
                table.remove(&fd);
            }
        }
    }

    /// Feeds one raw record; completed records go to `out`.
    pub fn push(&mut self, raw: &RawEvent<'_>, out: &mut impl FnMut(Captured)) {
        match raw.kind {
            Kind::Enter | Kind::EnterExitFollows => self.enter(raw, out),
            Kind::Exit => self.exit(raw, out),
        }
    }

    /// A call's event from its record's header: name, process, and the descriptor it works on.
    fn base_event(&mut self, raw: &RawEvent<'_>, info: &CallInfo) -> SyscallEvent {
        let mut event = SyscallEvent {
            time_ns: Some(raw.mono_ns as i64 + self.epoch_offset_ns),
            pid: Some(raw.tgid),
            tid: Some(raw.tid),
            process: Some(raw.comm()),
            container: None,
            syscall: self.name(raw.nr),
            args: Vec::new(),
            fd_path: None,
            ret: None,
        };
        if let Some(fd) = fd_arg(raw, info) {
            event.args.push(fd.to_string());
            event.fd_path = self.fd_path(raw.tgid, fd);
        }
        event
    }

    fn enter(&mut self, raw: &RawEvent<'_>, out: &mut impl FnMut(Captured)) {
        let info = self.info(raw.nr).cloned().unwrap_or_default();
        let mut event = self.base_event(raw, &info);
        let fd_arg = fd_arg(raw, &info);
        match info.payload {
            Some(Payload::Str { .. }) => event.args.push(text(nul_terminated(raw.payload).0)),
            Some(Payload::Str2 { .. }) => {
                let (first, rest) = nul_terminated(raw.payload);
                event.args.push(text(first));
                event.args.push(text(nul_terminated(rest).0));
            }
            Some(Payload::Buf { b, .. }) => {
                event.args.push(text(raw.payload));
                event.args.push(raw.args[usize::from(b)].to_string());
            }
            Some(Payload::Sockaddr { .. }) => {
                if let Some(addr) = sockaddr_text(raw.payload) {
                    if let Some(fd) = fd_arg {
                        let kind = self
                            .fd_path(raw.tgid, fd)
                            .and_then(|p| p.split(':').next().map(str::to_string))
                            .unwrap_or_else(|| "socket".into());
                        let arrow = if event.syscall == "connect" { "->" } else { "" };
                        let annotated = format!("{kind}:[{arrow}{addr}]");
                        self.set_fd(raw.tgid, fd, Some(annotated.clone()));
                        event.fd_path = Some(annotated);
                    }
                    event.args.push(addr);
                }
            }
            Some(Payload::Exec { .. }) => {
                let (file, mut rest) = nul_terminated(raw.payload);
                event.args.push(text(file));
                let mut argv = Vec::new();
                while !rest.is_empty() {
                    let (arg, next) = nul_terminated(rest);
                    argv.push(format!("{:?}", text(arg)));
                    rest = next;
                }
                event.args.push(format!("[{}]", argv.join(", ")));
            }
            Some(Payload::None) | None => {}
        }
        match event.syscall.as_str() {
            "close" => {
                if let Some(fd) = fd_arg {
                    self.set_fd(raw.tgid, fd, None);
                }
            }
            "exit" => {
                out(Captured {
                    cgroup: raw.cgroup,
                    record: Record::Call(event),
                });
                out(Captured {
                    cgroup: raw.cgroup,
                    record: Record::Exit {
                        pid: Some(raw.tid),
                        time_ns: Some(raw.mono_ns as i64 + self.epoch_offset_ns),
                    },
                });
                return;
            }
            "exit_group" => {
                self.fds.remove(&raw.tgid);
                out(Captured {
                    cgroup: raw.cgroup,
                    record: Record::Call(event),
                });
                out(Captured {
                    cgroup: raw.cgroup,
                    record: Record::Exit {
                        pid: Some(raw.tid),
                        time_ns: Some(raw.mono_ns as i64 + self.epoch_offset_ns),
                    },
                });
                return;
            }
            _ => {}
        }
        if info.want_exit || raw.kind == Kind::EnterExitFollows {
            if self.pending.len() >= PENDING_MAX {
                self.flush(out);
            }
            let previous = self.pending.insert(
                raw.tid,
                Pending {
                    cgroup: raw.cgroup,
                    nr: raw.nr,
                    args: raw.args,
                    event,
                },
            );
            // the thread's earlier call never reported an exit (capture started mid-call)
            if let Some(p) = previous {
                out(Captured {
                    cgroup: p.cgroup,
                    record: Record::Call(p.event),
                });
            }
        } else {
            out(Captured {
                cgroup: raw.cgroup,
                record: Record::Call(event),
            });
        }
    }

    fn exit(&mut self, raw: &RawEvent<'_>, out: &mut impl FnMut(Captured)) {
        let info = self.info(raw.nr).cloned().unwrap_or_default();
        let mut p = match self.pending.remove(&raw.tid) {
            Some(p) => p,
            // capture began while the call was blocked (a server waiting in accept); the exit
            // carries the arguments again, and the connection must be named
            None if info.accepts => Pending {
                cgroup: raw.cgroup,
                nr: raw.nr,
                args: raw.args,
                event: self.base_event(raw, &info),
            },
            // a child's first return (from clone or fork in the child) has no entry here
            None => {
                if info.new_task && raw.ret == 0 {
                    self.child_started(raw);
                }
                return;
            }
        };
        if p.nr != raw.nr {
            out(Captured {
                cgroup: p.cgroup,
                record: Record::Call(p.event),
            });
            return;
        }
        p.event.ret = Some(raw.ret);
        let name = p.event.syscall.as_str();
        if info.opens_fd && raw.ret >= 0 {
            let fd = raw.ret;
            let path = match info.payload {
                Some(Payload::Str { .. }) => p.event.args.last().cloned(),
                _ if name == "socket" => Some(format!("{}:[]", socket_kind(p.args[0], p.args[1]))),
                // the listening socket's name and the peer's address, as strace -yy shows it
                _ if info.accepts => sockaddr_text(raw.payload)
                    .and_then(|peer| accepted_name(p.event.fd_path.as_deref()?, &peer)),
                _ if name.starts_with("dup") => p.event.fd_path.clone(),
                _ => None,
            };
            p.event.fd_path = path.clone();
            self.set_fd(raw.tgid, fd, path);
        } else if info.opens_fd && info.payload.is_some() {
            // a failed open names no descriptor, as strace's parser does
            p.event.fd_path = None;
        }
        if info.first_data && !raw.payload.is_empty() {
            // A new connection's first data, or what a remote shell reads from the socket on
            // its standard input, as strace shows a read: descriptor, data, size.
            p.event
                .args
                .push(text(kept_data(raw.payload, p.args[0] == 0)));
            p.event.args.push(p.args[2].to_string());
        }
        if name == "fcntl" && matches!(p.args[1], F_DUPFD | F_DUPFD_CLOEXEC) && raw.ret >= 0 {
            // the shell saves a descriptor this way before a redirection and restores it after
            self.set_fd(raw.tgid, raw.ret, p.event.fd_path.clone());
        }
        let new_process = match name {
            "fork" | "vfork" | "clone3" => true,
            "clone" => p.args[0] & CLONE_THREAD == 0,
            _ => false,
        };
        // the child's id as the parent's pid namespace numbers it: right on the host, and
        // overwritten by the child's own first record (`child_started`) inside a container
        if new_process && raw.ret > 0 {
            if let Ok(child) = u32::try_from(raw.ret) {
                if !self.started_first.remove(&(raw.tgid, child)) {
                    let table = self.table(raw.tgid).clone();
                    if self.forks.len() >= PROCESSES {
                        self.forks.clear();
                    }
                    self.forks.insert((raw.tgid, child), table.clone());
                    self.fds.entry(child).or_insert(table);
                }
            }
        }
        if name.starts_with("execve") && raw.ret == 0 {
            // The table is kept: close-on-exec descriptors linger in it until their numbers are
            // reused, which is better than re-reading /proc while the new program may be exiting.
            p.event.process = Some(raw.comm());
        }
        out(Captured {
            cgroup: p.cgroup,
            record: Record::Call(p.event),
        });
    }

    /// A child's first record: it starts from its parent's descriptor table (the probe names
    /// the parent; the parent's own return value is the child's id in the parent's pid
    /// namespace, not the id records carry, when the parent runs in a container).
    fn child_started(&mut self, raw: &RawEvent<'_>) {
        let word = |i: usize| {
            let b = raw.payload.get(4 * i..4 * i + 4)?;
            Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        let (Some(parent), Some(own_id)) = (word(0), word(1)) else {
            return;
        };
        if raw.tid != raw.tgid {
            return; // a thread shares its process's table
        }
        // the table as it was at the fork, if the parent's return came first; otherwise the
        // parent has done nothing since the fork that was assembled, so its table is that one
        let table = match self.forks.remove(&(parent, own_id)) {
            Some(t) => t,
            None => {
                if self.started_first.len() >= PROCESSES {
                    self.started_first.clear();
                }
                self.started_first.insert((parent, own_id));
                if self.fds.contains_key(&raw.tgid) {
                    return;
                }
                match self.fds.get(&parent) {
                    Some(t) => t.clone(),
                    None => return,
                }
            }
        };
        if self.fds.len() >= PROCESSES {
            self.fds.clear();
        }
        self.fds.insert(raw.tgid, table);
    }

    /// Emits every call still waiting for its exit, without a result.
    pub fn flush(&mut self, out: &mut impl FnMut(Captured)) {
        let mut waiting: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        waiting.sort_by_key(|p| p.event.time_ns);
        for p in waiting {
            out(Captured {
                cgroup: p.cgroup,
                record: Record::Call(p.event),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::encode;
    use std::str::FromStr;
    use syscalls::Sysno;

    fn nr(name: &str) -> i32 {
        Sysno::from_str(name).expect(name).id()
    }

    fn run(records: &[Vec<u8>]) -> Vec<Captured> {
        run_on(
            &mut Assembler::new().with_proc_root("/nonexistent"),
            records,
        )
    }

    fn run_on(a: &mut Assembler, records: &[Vec<u8>]) -> Vec<Captured> {
        let mut out = Vec::new();
        for r in records {
            a.push(&RawEvent::decode(r).expect("decodes"), &mut |c| out.push(c));
        }
        a.flush(&mut |c| out.push(c));
        out
    }

    fn call(c: &Captured) -> &SyscallEvent {
        match &c.record {
            Record::Call(e) => e,
            Record::Exit { .. } => panic!("expected a call"),
        }
    }

    #[test]
    fn an_opened_file_names_later_writes() {
        let got = run(&[
            encode(
                1,
                9,
                100,
                101,
                nr("openat"),
                Kind::Enter,
                0,
                [(-100i64) as u64, 0, 0, 0, 0, 0],
                "motion",
                b"/var/log/motion.log\0",
            ),
            encode(
                2,
                9,
                100,
                101,
                nr("openat"),
                Kind::Exit,
                5,
                [0; 6],
                "motion",
                b"",
            ),
            encode(
                3,
                9,
                100,
                101,
                nr("write"),
                Kind::Enter,
                0,
                [5, 0, 11, 0, 0, 0],
                "motion",
                b"hello world",
            ),
            encode(
                4,
                9,
                100,
                101,
                nr("close"),
                Kind::Enter,
                0,
                [5, 0, 0, 0, 0, 0],
                "motion",
                b"",
            ),
            encode(
                5,
                9,
                100,
                101,
                nr("write"),
                Kind::Enter,
                0,
                [5, 0, 2, 0, 0, 0],
                "motion",
                b"hi",
            ),
        ]);
        assert_eq!(got.len(), 4);
        let open = call(&got[0]);
        assert_eq!(open.syscall, "openat");
        assert_eq!(open.ret, Some(5));
        assert_eq!(open.fd_path.as_deref(), Some("/var/log/motion.log"));
        assert_eq!(open.args, vec!["-100", "/var/log/motion.log"]);
        let write = call(&got[1]);
        assert_eq!(write.fd_path.as_deref(), Some("/var/log/motion.log"));
        assert_eq!(write.args, vec!["5", "hello world", "11"]);
        assert_eq!(write.process.as_deref(), Some("motion"));
        assert_eq!(got[1].cgroup, 9);
        // after close the descriptor is unknown (and /proc has nothing here)
        assert_eq!(call(&got[3]).fd_path, None);
    }

    #[test]
    fn a_failed_open_has_no_descriptor_path() {
        let got = run(&[
            encode(
                1,
                1,
                7,
                7,
                nr("openat"),
                Kind::Enter,
                0,
                [0; 6],
                "cat",
                b"/etc/shadow\0",
            ),
            encode(
                2,
                1,
                7,
                7,
                nr("openat"),
                Kind::Exit,
                -13,
                [0; 6],
                "cat",
                b"",
            ),
        ]);
        assert_eq!(call(&got[0]).ret, Some(-13));
        assert_eq!(call(&got[0]).fd_path, None);
        assert_eq!(call(&got[0]).args[1], "/etc/shadow");
    }

    #[test]
    fn execve_shows_program_and_argv() {
        let got = run(&[
            encode(
                1,
                1,
                7,
                7,
                nr("execve"),
                Kind::Enter,
                0,
                [0; 6],
                "sh",
                b"/bin/cat\0cat\0/etc/shadow\0",
            ),
            encode(2, 1, 7, 7, nr("execve"), Kind::Exit, 0, [0; 6], "cat", b""),
        ]);
        let e = call(&got[0]);
        assert_eq!(e.args, vec!["/bin/cat", "[\"cat\", \"/etc/shadow\"]"]);
        assert_eq!(e.process.as_deref(), Some("cat"), "comm after exec");
    }

    #[test]
    fn connect_annotates_the_socket() {
        let mut addr = vec![libc::AF_INET as u8, 0, 0x1f, 0x90, 10, 0, 0, 2];
        addr.extend_from_slice(&[0; 8]);
        let got = run(&[
            encode(
                1,
                1,
                7,
                7,
                nr("socket"),
                Kind::Enter,
                0,
                [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
                "wget",
                b"",
            ),
            encode(2, 1, 7, 7, nr("socket"), Kind::Exit, 3, [0; 6], "wget", b""),
            encode(
                3,
                1,
                7,
                7,
                nr("connect"),
                Kind::Enter,
                0,
                [3, 0, 16, 0, 0, 0],
                "wget",
                &addr,
            ),
            encode(
                4,
                1,
                7,
                7,
                nr("connect"),
                Kind::Exit,
                0,
                [0; 6],
                "wget",
                b"",
            ),
            encode(
                5,
                1,
                7,
                7,
                nr("write"),
                Kind::Enter,
                0,
                [3, 0, 3, 0, 0, 0],
                "wget",
                b"GET",
            ),
        ]);
        assert_eq!(call(&got[0]).fd_path.as_deref(), Some("TCP:[]"));
        assert_eq!(
            call(&got[1]).fd_path.as_deref(),
            Some("TCP:[->10.0.0.2:8080]")
        );
        assert_eq!(
            call(&got[2]).fd_path.as_deref(),
            Some("TCP:[->10.0.0.2:8080]")
        );
    }

    #[test]
    fn exits_end_the_thread_stream() {
        let got = run(&[encode(
            1,
            1,
            7,
            8,
            nr("exit"),
            Kind::Enter,
            0,
            [0; 6],
            "x",
            b"",
        )]);
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1].record, Record::Exit { pid: Some(8), .. }));
    }

    #[test]
    fn unmatched_exits_are_ignored_and_lost_exits_do_not_lose_the_call() {
        let got = run(&[
            encode(1, 1, 7, 7, nr("clone"), Kind::Exit, 0, [0; 6], "child", b""),
            encode(
                2,
                1,
                7,
                7,
                nr("openat"),
                Kind::Enter,
                0,
                [0; 6],
                "a",
                b"/x\0",
            ),
            encode(
                3,
                1,
                7,
                7,
                nr("openat"),
                Kind::Enter,
                0,
                [0; 6],
                "a",
                b"/y\0",
            ),
        ]);
        let names: Vec<_> = got.iter().map(|c| call(c).args[1].clone()).collect();
        assert_eq!(names, vec!["/x", "/y"]);
    }

    /// One record for the descriptor tests: pid == tid, cgroup 9, comm "sh".
    fn ev(t: u64, pid: u32, name: &str, kind: Kind, ret: i64, args: [u64; 6], p: &[u8]) -> Vec<u8> {
        encode(t, 9, pid, pid, nr(name), kind, ret, args, "sh", p)
    }

    #[test]
    fn saved_and_inherited_descriptors_keep_their_paths() {
        let proc_root =
            std::env::temp_dir().join(format!("mamori-assemble-{}", std::process::id()));
        std::fs::create_dir_all(proc_root.join("300")).expect("temp dir");
        // a child whose fork return is not seen yet: its parent comes from /proc/300/stat
        std::fs::write(proc_root.join("300/stat"), "300 (a (b) c) S 100 300 1 0").expect("stat");
        let records = [
            ev(1, 100, "openat", Kind::Enter, 0, [0; 6], b"/dev/null\0"),
            ev(2, 100, "openat", Kind::Exit, 4, [0; 6], b""),
            ev(
                3,
                100,
                "fcntl",
                Kind::Enter,
                0,
                [4, F_DUPFD_CLOEXEC, 10, 0, 0, 0],
                b"",
            ),
            ev(4, 100, "fcntl", Kind::Exit, 10, [0; 6], b""),
            ev(5, 100, "close", Kind::Enter, 0, [4, 0, 0, 0, 0, 0], b""),
            ev(6, 300, "write", Kind::Enter, 0, [10, 0, 1, 0, 0, 0], b"x"),
            ev(7, 100, "clone", Kind::Enter, 0, [0x11, 0, 0, 0, 0, 0], b""),
            ev(8, 100, "clone", Kind::Exit, 200, [0; 6], b""),
            ev(9, 200, "write", Kind::Enter, 0, [10, 0, 1, 0, 0, 0], b"x"),
            ev(10, 100, "write", Kind::Enter, 0, [4, 0, 1, 0, 0, 0], b"x"),
        ];
        let mut a = Assembler::new().with_proc_root(proc_root.display().to_string());
        let mut got = Vec::new();
        for r in &records {
            a.push(&RawEvent::decode(r).expect("decodes"), &mut |c| got.push(c));
        }
        std::fs::remove_dir_all(&proc_root).ok();
        let writes: Vec<(u32, Option<&str>)> = got
            .iter()
            .map(call)
            .filter(|e| e.syscall == "write")
            .map(|e| (e.pid.unwrap_or(0), e.fd_path.as_deref()))
            .collect();
        assert_eq!(
            writes,
            vec![
                (300, Some("/dev/null")),
                (200, Some("/dev/null")),
                (100, None),
            ],
            "the saved copy names /dev/null in the parent and both children; the closed one nothing"
        );
    }

    #[test]
    fn a_snapshot_taken_when_watching_began_names_old_descriptors() {
        let root = std::env::temp_dir().join(format!("mamori-snap-{}", std::process::id()));
        std::fs::create_dir_all(root.join("400/fd")).expect("temp dir");
        let link = root.join("400/fd/1");
        std::fs::remove_file(&link).ok();
        std::os::unix::fs::symlink("pipe:[77]", &link).expect("symlink");
        let snapshots = FdSnapshots::default();
        snapshots.take_under(&root.display().to_string(), &[400, 401]);
        // the process has since redirected fd 1: /proc would now say otherwise
        std::fs::remove_dir_all(&root).ok();
        let mut a = Assembler::new()
            .with_proc_root("/nonexistent")
            .with_snapshots(snapshots.clone());
        let mut got = Vec::new();
        let r = ev(1, 400, "write", Kind::Enter, 0, [1, 0, 1, 0, 0, 0], b"x");
        a.push(&RawEvent::decode(&r).expect("decodes"), &mut |c| {
            got.push(c)
        });
        assert_eq!(call(&got[0]).fd_path.as_deref(), Some("pipe:[77]"));
        assert!(snapshots.claim(400).is_none(), "a snapshot is used once");
    }

    #[allow(clippy::too_many_arguments)]
    fn rec(
        t: u64,
        tgid: u32,
        tid: u32,
        name: &str,
        kind: Kind,
        ret: i64,
        args: [u64; 6],
        payload: &[u8],
    ) -> Vec<u8> {
        encode(t, 1, tgid, tid, nr(name), kind, ret, args, "httpd", payload)
    }

    fn sockaddr_in(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&ip);
        b.extend_from_slice(&[0; 8]);
        b
    }

    /// busybox httpd: accept in the server, fork, dup2 the connection to 0 in the child, read the
    /// request there. The probe reports that first read's exit with the data.
    #[test]
    fn a_forked_servers_first_read_carries_the_request_on_the_accepted_connection() {
        let request = b"GET /cgi-bin/admin HTTP/1.1\r\nHost: x\r\n\r\n";
        let got = run(&[
            rec(1, 10, 10, "socket", Kind::Enter, 0, [2, 1, 0, 0, 0, 0], b""),
            rec(2, 10, 10, "socket", Kind::Exit, 3, [0; 6], b""),
            rec(
                3,
                10,
                10,
                "bind",
                Kind::Enter,
                0,
                [3, 0, 16, 0, 0, 0],
                &sockaddr_in([127, 0, 0, 1], 8080),
            ),
            rec(4, 10, 10, "accept", Kind::Enter, 0, [3, 0, 0, 0, 0, 0], b""),
            rec(
                5,
                10,
                10,
                "accept",
                Kind::Exit,
                4,
                [0; 6],
                &sockaddr_in([127, 0, 0, 1], 41674),
            ),
            rec(6, 10, 10, "fork", Kind::Enter, 0, [0; 6], b""),
            rec(7, 10, 10, "fork", Kind::Exit, 11, [0; 6], b""),
            rec(8, 11, 11, "dup2", Kind::Enter, 0, [4, 0, 0, 0, 0, 0], b""),
            rec(9, 11, 11, "dup2", Kind::Exit, 0, [0; 6], b""),
            rec(
                10,
                11,
                11,
                "read",
                Kind::EnterExitFollows,
                0,
                [0, 0, 1024, 0, 0, 0],
                b"",
            ),
            rec(11, 11, 11, "read", Kind::Exit, 40, [0; 6], request),
            // a later read of the same connection: no exit, no data
            rec(
                12,
                11,
                11,
                "read",
                Kind::Enter,
                0,
                [0, 0, 1024, 0, 0, 0],
                b"",
            ),
        ]);
        let calls: Vec<&SyscallEvent> = got.iter().map(call).collect();
        let names: Vec<&str> = calls.iter().map(|e| e.syscall.as_str()).collect();
        assert_eq!(
            names,
            ["socket", "bind", "accept", "fork", "dup2", "read", "read"]
        );
        let connection = "TCP:[127.0.0.1:8080->127.0.0.1:41674]";
        assert_eq!(calls[1].fd_path.as_deref(), Some("TCP:[127.0.0.1:8080]"));
        assert_eq!(calls[2].fd_path.as_deref(), Some(connection));
        assert_eq!(calls[2].ret, Some(4));
        assert_eq!(calls[5].fd_path.as_deref(), Some(connection));
        assert_eq!(calls[5].ret, Some(40));
        assert_eq!(
            calls[5].args,
            vec!["0", "GET /cgi-bin/admin HTTP/1.1", "1024"],
            "the request line, not the headers"
        );
        assert_eq!(calls[6].args, vec!["0"]);
        assert_eq!(calls[6].ret, None);
    }

    /// A remote shell (`bash 0</dev/tcp/…`) reads its commands from the socket on descriptor 0:
    /// every read's data is kept, line ends included, so the commands can be put together.
    #[test]
    fn a_remote_shells_reads_of_standard_input_keep_every_line() {
        let read = |seq, kind, ret, data: &'static [u8]| {
            rec(seq, 20, 20, "read", kind, ret, [0, 0, 1, 0, 0, 0], data)
        };
        let got = run(&[
            read(1, Kind::EnterExitFollows, 0, b""),
            read(2, Kind::Exit, 1, b"\n"),
            read(3, Kind::EnterExitFollows, 0, b""),
            read(4, Kind::Exit, 6, b"id\nls\n"),
            read(5, Kind::EnterExitFollows, 0, b""),
            read(6, Kind::Exit, 9, b"GET /\r\nA: b"),
        ]);
        let data: Vec<&str> = got.iter().map(|r| call(r).args[1].as_str()).collect();
        assert_eq!(data, ["\n", "id\nls\n", "GET /"]);
    }

    /// A first read that finds no data yet (EAGAIN on a non-blocking socket) is reported with
    /// its result and no data.
    #[test]
    fn a_first_read_without_data_has_only_its_result() {
        let got = run(&[
            rec(
                1,
                10,
                12,
                "recvfrom",
                Kind::EnterExitFollows,
                0,
                [7, 0, 16384, 0, 0, 0],
                b"",
            ),
            rec(2, 10, 12, "recvfrom", Kind::Exit, -11, [0; 6], b""),
        ]);
        assert_eq!(got.len(), 1);
        assert_eq!(call(&got[0]).args, vec!["7"]);
        assert_eq!(call(&got[0]).ret, Some(-11));
    }

    /// In a container the parent's fork returns the child's namespace id (15), not the id the
    /// probe reports (11013); the child's own return names the parent, so the accepted
    /// connection it reads is still named.
    #[test]
    fn a_child_in_a_pid_namespace_inherits_from_the_parent_its_own_return_names() {
        let mut assembler = Assembler::new().with_proc_root("/nonexistent");
        let got = run_on(
            &mut assembler,
            &[
                rec(
                    1,
                    10,
                    10,
                    "openat",
                    Kind::Enter,
                    0,
                    [0; 6],
                    b"/www/index.html\0",
                ),
                rec(2, 10, 10, "openat", Kind::Exit, 4, [0; 6], b""),
                rec(3, 10, 10, "fork", Kind::Enter, 0, [0; 6], b""),
                // the child runs first; its return carries the parent's id and its own (15)
                rec(4, 11013, 11013, "fork", Kind::Exit, 0, [0; 6], &ids(10, 15)),
                rec(
                    5,
                    11013,
                    11013,
                    "read",
                    Kind::Enter,
                    0,
                    [4, 0, 9, 0, 0, 0],
                    b"",
                ),
                rec(6, 10, 10, "fork", Kind::Exit, 15, [0; 6], b""),
                // second child: the parent returns and closes its copy before the child's return
                rec(7, 10, 10, "fork", Kind::Enter, 0, [0; 6], b""),
                rec(8, 10, 10, "fork", Kind::Exit, 16, [0; 6], b""),
                rec(9, 10, 10, "close", Kind::Enter, 0, [4, 0, 0, 0, 0, 0], b""),
                rec(
                    10,
                    11014,
                    11014,
                    "fork",
                    Kind::Exit,
                    0,
                    [0; 6],
                    &ids(10, 16),
                ),
                rec(
                    11,
                    11014,
                    11014,
                    "read",
                    Kind::Enter,
                    0,
                    [4, 0, 9, 0, 0, 0],
                    b"",
                ),
            ],
        );
        let reads: Vec<&SyscallEvent> = got
            .iter()
            .map(call)
            .filter(|e| e.syscall == "read")
            .collect();
        assert_eq!(reads.len(), 2);
        assert_eq!(reads[0].pid, Some(11013));
        assert_eq!(reads[1].pid, Some(11014));
        for read in reads {
            assert_eq!(read.fd_path.as_deref(), Some("/www/index.html"));
        }
        // every fork's kept table was claimed: nothing is left waiting
        assert!(assembler.forks.is_empty() && assembler.started_first.is_empty());
    }

    fn ids(parent: u32, own: u32) -> Vec<u8> {
        [parent.to_ne_bytes(), own.to_ne_bytes()].concat()
    }
}
