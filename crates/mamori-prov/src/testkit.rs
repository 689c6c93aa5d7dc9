//! Hand-made audit events shaped the way auditd logs them, for tests and benchmarks (this
//! crate's, and integration tests on top of it).
//!
//! [`Ev`] builds one event field by field; [`Sim`] numbers events (serial and time) and writes
//! whole system calls as auditd would: an `execve` with its EXECVE argv and PATH items for the
//! program and `ld.so`, a `clone` whose exit is the child pid, an `openat` with PARENT and
//! NORMAL/CREATE items, a `rename` with PARENT, PARENT, DELETE(, DELETE), CREATE, a `kill` with
//! an OBJ_PID record, and so on.
//!
//! [`record`] is the one place that builds a [`Record`]'s fields, so a change of the parser's
//! record representation is fixed here once.

use mamori_audit::{AuditEvent, Execve, PathItem, Record, SockAddr, Syscall};

use crate::syscalls::{Call, ARCH_X86_64};

/// A record of `kind` with raw `key=value` fields.
pub fn record(kind: &str, fields: &[(&str, &str)]) -> Record {
    Record::new(
        kind,
        fields.iter().copied(),
        std::iter::empty::<(&str, &str)>(),
    )
}

/// An IPv4 socket address.
pub fn inet(addr: &str, port: u16) -> SockAddr {
    SockAddr::Inet {
        addr: addr.to_string(),
        port,
    }
}

/// A unix socket address.
pub fn unix(path: &str) -> SockAddr {
    SockAddr::Unix {
        path: path.to_string(),
    }
}

/// A simulated process: what its SYSCALL records say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    /// Pid.
    pub pid: u32,
    /// Parent pid.
    pub ppid: u32,
    /// `exe=`.
    pub exe: String,
    /// `comm=` (at most 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// uid (and euid).
    pub uid: u32,
    /// auid.
    pub auid: u32,
    /// Current directory (the CWD record).
    pub cwd: String,
    next_fd: i64,
    /// Descriptors given back, reused lowest first as the kernel does.
    free_fds: Vec<i64>,
}

fn comm_of(exe: &str) -> String {
    exe.rsplit('/')
        .next()
        .unwrap_or(exe)
        .chars()
        .take(15)
        .collect()
}

impl Proc {
    /// A process running `exe`, uid 0, in `/`.
    pub fn new(pid: u32, ppid: u32, exe: &str) -> Proc {
        Proc {
            pid,
            ppid,
            exe: exe.to_string(),
            comm: comm_of(exe),
            uid: 0,
            auid: u32::MAX,
            cwd: "/".to_string(),
            next_fd: 3,
            free_fds: Vec::new(),
        }
    }

    /// With this uid (and euid, auid).
    pub fn uid(mut self, uid: u32) -> Proc {
        self.uid = uid;
        self.auid = uid;
        self
    }

    /// With this current directory.
    pub fn cwd(mut self, dir: &str) -> Proc {
        self.cwd = dir.to_string();
        self
    }

    /// The process `fork` would make with pid `pid` (nothing is logged: see [`Sim::fork`]).
    pub fn child(&self, pid: u32) -> Proc {
        Proc {
            pid,
            ppid: self.pid,
            ..self.clone()
        }
    }

    /// The lowest free descriptor (what the kernel would hand out).
    pub fn alloc_fd(&mut self) -> i64 {
        if let Some(i) = (0..self.free_fds.len()).min_by_key(|&i| self.free_fds[i]) {
            return self.free_fds.swap_remove(i);
        }
        let fd = self.next_fd;
        self.next_fd += 1;
        fd
    }

    /// Gives a descriptor back without logging anything (audit rules rarely log `close`); the
    /// next [`alloc_fd`](Self::alloc_fd) may reuse it, as the kernel would.
    pub fn release_fd(&mut self, fd: i64) {
        if fd >= 0 && fd < self.next_fd && !self.free_fds.contains(&fd) {
            self.free_fds.push(fd);
        }
    }
}

/// One event under construction.
#[derive(Debug, Clone)]
pub struct Ev {
    ev: AuditEvent,
}

impl Ev {
    /// A successful x86_64 system call by `p` (`name` as the kernel spells it; its number from
    /// the builder's table, 0 when unknown). Exit 0, arguments 0, the process's CWD record.
    pub fn new(name: &str, p: &Proc) -> Ev {
        let number = Call::from_name(name).map_or(0, Call::x86_64);
        Ev {
            ev: AuditEvent {
                syscall: Some(Syscall {
                    arch: ARCH_X86_64.to_string(),
                    number,
                    name: Some(name.to_string()),
                    success: true,
                    exit: 0,
                    args: [0; 4],
                    pid: p.pid,
                    ppid: p.ppid,
                    uid: p.uid,
                    euid: p.uid,
                    auid: p.auid,
                    ses: u32::MAX,
                    comm: p.comm.clone(),
                    exe: p.exe.clone(),
                    key: None,
                }),
                cwd: Some(p.cwd.clone()),
                ..AuditEvent::default()
            },
        }
    }

    fn sc(&mut self) -> &mut Syscall {
        self.ev.syscall.get_or_insert_with(Syscall::default)
    }

    /// Without the syscall name, as a raw log without ENRICHED fields has it (number only).
    pub fn number_only(mut self) -> Ev {
        self.sc().name = None;
        self
    }

    /// `exit=`.
    pub fn exit(mut self, v: i64) -> Ev {
        self.sc().exit = v;
        self
    }

    /// `success=no exit=-errno`.
    pub fn failed(mut self, errno: i64) -> Ev {
        let sc = self.sc();
        sc.success = false;
        sc.exit = -errno;
        self
    }

    /// Argument `aI`.
    pub fn arg(mut self, i: usize, v: u64) -> Ev {
        if let Some(a) = self.sc().args.get_mut(i) {
            *a = v;
        }
        self
    }

    /// `exe=` and `comm=` (an execve's records name the new image).
    pub fn image(mut self, exe: &str) -> Ev {
        let sc = self.sc();
        sc.exe = exe.to_string();
        sc.comm = comm_of(exe);
        self
    }

    /// The CWD record (`None`: none).
    pub fn cwd(mut self, dir: Option<&str>) -> Ev {
        self.ev.cwd = dir.map(str::to_string);
        self
    }

    /// A PATH item on device `fd:01`, regular file mode.
    pub fn path(self, name: &str, inode: u64, nametype: &str) -> Ev {
        self.path_item(PathItem {
            item: 0,
            name: Some(name.to_string()),
            inode: Some(inode),
            dev: Some("fd:01".to_string()),
            mode: Some(0o100644),
            nametype: nametype.to_string(),
        })
    }

    /// A PATH item as given (its `item` number is set to its position).
    pub fn path_item(mut self, mut item: PathItem) -> Ev {
        item.item = self.ev.paths.len() as u32;
        self.ev.paths.push(item);
        self
    }

    /// The EXECVE record.
    pub fn argv(mut self, argv: &[&str]) -> Ev {
        self.ev.execve = Some(Execve {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            argc: argv.len(),
        });
        self.ev.proctitle = Some(argv.join(" "));
        self
    }

    /// The SOCKADDR record.
    pub fn sockaddr(mut self, sa: SockAddr) -> Ev {
        self.ev.sockaddr = Some(sa);
        self
    }

    /// Another record (OBJ_PID, MMAP, FD_PAIR, OPENAT2, …).
    pub fn record(mut self, kind: &str, fields: &[(&str, &str)]) -> Ev {
        self.ev.records.push(record(kind, fields));
        self
    }

    /// The event with this serial and time.
    pub fn build(mut self, serial: u64, time_ns: i64) -> AuditEvent {
        self.ev.serial = serial;
        self.ev.time_ns = time_ns;
        self.ev.records.push(record("EOE", &[]));
        self.ev
    }
}

const AT_FDCWD: u64 = 0xffff_ff9c;

/// A simulated audit log: numbers events and writes system calls as auditd logs them.
#[derive(Debug, Clone)]
pub struct Sim {
    serial: u64,
    time_ns: i64,
    /// Time between consecutive events (default 1 ms).
    pub step_ns: i64,
    /// The events so far.
    pub events: Vec<AuditEvent>,
    /// Give SYSCALL records their names (default); off: numbers only.
    pub names: bool,
}

impl Sim {
    /// A log starting at `start_ns` with serial 1000.
    pub fn new(start_ns: i64) -> Sim {
        Sim {
            serial: 1000,
            time_ns: start_ns,
            step_ns: 1_000_000,
            events: Vec::new(),
            names: true,
        }
    }

    /// Moves the clock to `time_ns` (the next event's time).
    pub fn at(&mut self, time_ns: i64) {
        self.time_ns = time_ns;
    }

    /// Moves the clock forward.
    pub fn advance_ms(&mut self, ms: i64) {
        self.time_ns += ms * 1_000_000;
    }

    /// The next event's time.
    pub fn now(&self) -> i64 {
        self.time_ns
    }

    /// The serial of the last event pushed.
    pub fn last_serial(&self) -> u64 {
        self.serial
    }

    /// The time of the last event pushed.
    pub fn last_time(&self) -> i64 {
        self.events.last().map_or(self.time_ns, |e| e.time_ns)
    }

    /// Appends an event (next serial, current time; the clock then steps). Returns its serial.
    pub fn push(&mut self, ev: Ev) -> u64 {
        let ev = if self.names { ev } else { ev.number_only() };
        self.serial += 1;
        self.events.push(ev.build(self.serial, self.time_ns));
        self.time_ns += self.step_ns;
        self.serial
    }

    /// `clone` in `parent` returning `child` (a process, not a thread); the child as a process.
    pub fn fork(&mut self, parent: &Proc, child: u32) -> Proc {
        // SIGCHLD | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID: what fork() passes.
        self.push(
            Ev::new("clone", parent)
                .arg(0, 0x0120_0011)
                .exit(i64::from(child)),
        );
        Proc {
            pid: child,
            ppid: parent.pid,
            ..parent.clone()
        }
    }

    /// `execve` of `path` (inode `inode`): SYSCALL with the new `exe`, EXECVE argv, PATH item 0
    /// the program, item 1 the dynamic loader. Updates `p`.
    pub fn exec(&mut self, p: &mut Proc, path: &str, inode: u64, argv: &[&str]) {
        let ev = Ev::new("execve", p)
            .image(path)
            .argv(argv)
            .path(path, inode, "NORMAL")
            .path("/lib64/ld-linux-x86-64.so.2", 9_000_001, "NORMAL");
        self.push(ev);
        p.exe = path.to_string();
        p.comm = comm_of(path);
    }

    fn parent_dir(path: &str) -> String {
        match path.rsplit_once('/') {
            Some(("", _)) => "/".to_string(),
            Some((d, _)) => format!("{d}/"),
            None => "./".to_string(),
        }
    }

    /// `openat(AT_FDCWD, path, O_RDONLY)`: one NORMAL item. Returns the descriptor.
    pub fn open_read(&mut self, p: &mut Proc, path: &str, inode: u64) -> i64 {
        let fd = p.alloc_fd();
        self.push(
            Ev::new("openat", p)
                .arg(0, AT_FDCWD)
                .arg(2, 0)
                .exit(fd)
                .path(path, inode, "NORMAL"),
        );
        fd
    }

    /// `openat(AT_FDCWD, path, O_WRONLY|O_CREAT|O_TRUNC)` of an existing file: PARENT + NORMAL.
    pub fn open_write(&mut self, p: &mut Proc, path: &str, inode: u64) -> i64 {
        let fd = p.alloc_fd();
        self.push(
            Ev::new("openat", p)
                .arg(0, AT_FDCWD)
                .arg(2, 0o1101)
                .exit(fd)
                .path(&Self::parent_dir(path), 2, "PARENT")
                .path(path, inode, "NORMAL"),
        );
        fd
    }

    /// `openat(AT_FDCWD, path, O_WRONLY|O_CREAT|O_TRUNC)` making a new file: PARENT + CREATE.
    pub fn create(&mut self, p: &mut Proc, path: &str, inode: u64) -> i64 {
        let fd = p.alloc_fd();
        self.push(
            Ev::new("openat", p)
                .arg(0, AT_FDCWD)
                .arg(2, 0o1101)
                .exit(fd)
                .path(&Self::parent_dir(path), 2, "PARENT")
                .path(path, inode, "CREATE"),
        );
        fd
    }

    /// `rename(old, new)`: PARENT, PARENT, DELETE old, DELETE replaced (if any), CREATE new.
    pub fn rename(&mut self, p: &Proc, old: &str, new: &str, inode: u64, replaced: Option<u64>) {
        let mut ev = Ev::new("rename", p)
            .path(&Self::parent_dir(old), 2, "PARENT")
            .path(&Self::parent_dir(new), 2, "PARENT")
            .path(old, inode, "DELETE");
        if let Some(r) = replaced {
            ev = ev.path(new, r, "DELETE");
        }
        self.push(ev.path(new, inode, "CREATE"));
    }

    /// `unlinkat(AT_FDCWD, path, 0)`: PARENT + DELETE.
    pub fn unlink(&mut self, p: &Proc, path: &str, inode: u64) {
        self.push(
            Ev::new("unlinkat", p)
                .arg(0, AT_FDCWD)
                .path(&Self::parent_dir(path), 2, "PARENT")
                .path(path, inode, "DELETE"),
        );
    }

    /// `fchmodat(AT_FDCWD, path, mode)`: one NORMAL item.
    pub fn chmod(&mut self, p: &Proc, path: &str, inode: u64, mode: u64) {
        self.push(
            Ev::new("fchmodat", p)
                .arg(0, AT_FDCWD)
                .arg(2, mode)
                .path(path, inode, "NORMAL"),
        );
    }

    /// `connect(fd, addr)` on a fresh socket (its `socket()` is not logged). Returns the fd.
    pub fn connect(&mut self, p: &mut Proc, addr: SockAddr) -> i64 {
        let fd = p.alloc_fd();
        self.push(Ev::new("connect", p).arg(0, fd as u64).sockaddr(addr));
        fd
    }

    /// `bind(fd, addr)` on a fresh socket. Returns the fd.
    pub fn bind(&mut self, p: &mut Proc, addr: SockAddr) -> i64 {
        let fd = p.alloc_fd();
        self.push(Ev::new("bind", p).arg(0, fd as u64).sockaddr(addr));
        fd
    }

    /// `accept4(listen_fd, …)` from `peer`. Returns the new fd.
    pub fn accept(&mut self, p: &mut Proc, listen_fd: i64, peer: SockAddr) -> i64 {
        let fd = p.alloc_fd();
        self.push(
            Ev::new("accept4", p)
                .arg(0, listen_fd as u64)
                .exit(fd)
                .sockaddr(peer),
        );
        fd
    }

    /// `write(fd, …)`.
    pub fn write_fd(&mut self, p: &Proc, fd: i64) {
        self.push(Ev::new("write", p).arg(0, fd as u64).exit(1));
    }

    /// `read(fd, …)`.
    pub fn read_fd(&mut self, p: &Proc, fd: i64) {
        self.push(Ev::new("read", p).arg(0, fd as u64).exit(1));
    }

    /// `pipe2`: FD_PAIR record. Returns (read end, write end).
    pub fn pipe(&mut self, p: &mut Proc) -> (i64, i64) {
        let (r, w) = (p.alloc_fd(), p.alloc_fd());
        let (rs, ws) = (r.to_string(), w.to_string());
        self.push(Ev::new("pipe2", p).record("FD_PAIR", &[("fd0", &rs), ("fd1", &ws)]));
        (r, w)
    }

    /// `mmap(…, PROT_READ|PROT_EXEC, …, fd)` of a library opened on `fd`: the MMAP record and
    /// the file's PATH item.
    pub fn mmap_exec(&mut self, p: &Proc, fd: i64, path: &str, inode: u64) {
        let fds = fd.to_string();
        self.push(
            Ev::new("mmap", p)
                .arg(2, 5)
                .arg(3, 0x802)
                .exit(0x7f00_0000_0000)
                .record("MMAP", &[("fd", &fds), ("flags", "0x802")])
                .path(path, inode, "NORMAL"),
        );
    }

    /// `kill(target, sig)` with its OBJ_PID record.
    pub fn kill(&mut self, p: &Proc, target: &Proc, sig: u64) {
        let opid = target.pid.to_string();
        self.push(
            Ev::new("kill", p)
                .arg(0, u64::from(target.pid))
                .arg(1, sig)
                .record(
                    "OBJ_PID",
                    &[
                        ("opid", &opid),
                        ("oauid", "4294967295"),
                        ("ouid", "0"),
                        ("oses", "4294967295"),
                        ("ocomm", &target.comm),
                    ],
                ),
        );
    }

    /// `exit_group`.
    pub fn exit(&mut self, p: &Proc) {
        self.push(Ev::new("exit_group", p));
    }
}
