//! What the probe reads for each system call on this architecture, and what user space needs to
//! know to turn a raw record into an event: the call's name, which argument is a descriptor, and
//! which calls return a new descriptor.

use std::str::FromStr;

use syscalls::Sysno;

/// Syscall numbers the probe's tables cover (must match `SYSCALL_MAX` in mamori.bpf.c).
pub const SYSCALL_MAX: usize = 512;

/// How the probe reads a call's arguments (mirrors `enum payload_kind` in mamori.bpf.c); `a` and
/// `b` are argument indexes.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Nothing beyond the raw argument words.
    None,
    /// A path at argument `a`.
    Str { a: u8 },
    /// The first bytes of a buffer at `a`, of length `b` (written data).
    Buf { a: u8, b: u8 },
    /// A socket address at `a` of length `b`.
    Sockaddr { a: u8, b: u8 },
    /// A filename at `a` and an argv array at `b`.
    Exec { a: u8, b: u8 },
    /// Two paths, at `a` and `b`.
    Str2 { a: u8, b: u8 },
}

impl Payload {
    fn encode(self) -> u32 {
        let (kind, a, b) = match self {
            Payload::None => (0, 0, 0),
            Payload::Str { a } => (1, a, 0),
            Payload::Buf { a, b } => (2, a, b),
            Payload::Sockaddr { a, b } => (3, a, b),
            Payload::Exec { a, b } => (4, a, b),
            Payload::Str2 { a, b } => (5, a, b),
        };
        kind | (u32::from(a) << 4) | (u32::from(b) << 8)
    }
}

/// Bit in a spec word asking the probe for the exit record too.
const WANT_EXIT: u32 = 1 << 16;
/// Bit for `accept`/`accept4`: the exit carries the peer's address, and the probe remembers the
/// new connection until its first data.
const ACCEPTS: u32 = 1 << 17;
/// Bit for `read`/`recvfrom`: on a remembered connection the exit carries the first bytes.
const FIRST_DATA: u32 = 1 << 18;
/// Bit for the calls that start a process or thread: the child's return carries its parent's id.
const NEW_TASK: u32 = 1 << 19;

/// Per-call facts, indexed by syscall number.
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    /// Kernel name (`openat`).
    pub name: Option<&'static str>,
    /// How the probe reads the arguments.
    pub payload: Option<Payload>,
    /// The argument that is a file descriptor, if any.
    pub fd_arg: Option<u8>,
    /// The call returns a new descriptor for the path or address it names.
    pub opens_fd: bool,
    /// The return value is wanted, so the probe also reports the exit.
    pub want_exit: bool,
    /// Accepts a connection: the exit's payload is the peer's socket address.
    pub accepts: bool,
    /// Receives data: on a newly accepted connection the probe reports the exit with the first
    /// bytes received (what the connection asks for), and otherwise no exit.
    pub first_data: bool,
    /// Starts a process or thread: the child's own return (result 0) carries, as four bytes,
    /// the process id of its parent, whose descriptors it inherits.
    pub new_task: bool,
}

/// Calls with a path argument, by index.
const PATH_CALLS: &[(&str, u8)] = &[
    ("open", 0),
    ("creat", 0),
    ("openat", 1),
    ("openat2", 1),
    ("unlink", 0),
    ("unlinkat", 1),
    ("rmdir", 0),
    ("mkdir", 0),
    ("mkdirat", 1),
    ("chdir", 0),
    ("chroot", 0),
    ("chmod", 0),
    ("fchmodat", 1),
    ("chown", 0),
    ("lchown", 0),
    ("fchownat", 1),
    ("truncate", 0),
    ("access", 0),
    ("faccessat", 1),
    ("faccessat2", 1),
    ("stat", 0),
    ("lstat", 0),
    ("newfstatat", 1),
    ("statx", 1),
    ("readlink", 0),
    ("readlinkat", 1),
    ("statfs", 0),
    ("mknod", 0),
    ("mknodat", 1),
    ("utimensat", 1),
    ("mount", 1),
    ("umount2", 0),
    ("swapon", 0),
    ("acct", 0),
    ("memfd_create", 0),
];

/// Calls with two paths.
const PATH2_CALLS: &[(&str, u8, u8)] = &[
    ("rename", 0, 1),
    ("link", 0, 1),
    ("symlink", 0, 1),
    ("renameat", 1, 3),
    ("renameat2", 1, 3),
    ("linkat", 1, 3),
    ("symlinkat", 0, 2),
];

/// Calls whose first argument is a descriptor.
const FD0_CALLS: &[&str] = &[
    "read",
    "write",
    "close",
    "fstat",
    "lseek",
    "ioctl",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "bind",
    "listen",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "ftruncate",
    "getdents64",
    "getdents",
    "fchdir",
    "fchmod",
    "fchown",
    "fstatfs",
    "accept",
    "accept4",
    "connect",
    "dup",
    "dup2",
    "dup3",
    "sendfile",
    "splice",
    "tee",
    "fallocate",
    "fadvise64",
    "readahead",
    "sync_file_range",
    "syncfs",
    "inotify_add_watch",
    "fgetxattr",
    "fsetxattr",
    "flistxattr",
    "fremovexattr",
    "copy_file_range",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "timerfd_settime",
    "timerfd_gettime",
];

/// Calls that return a new descriptor (their exit is reported so the fd table learns it).
const FD_RETURNING: &[&str] = &[
    "open",
    "creat",
    "openat",
    "openat2",
    "socket",
    "accept",
    "accept4",
    "dup",
    "dup2",
    "dup3",
    "memfd_create",
    "eventfd",
    "eventfd2",
    "epoll_create",
    "epoll_create1",
    "timerfd_create",
    "signalfd",
    "signalfd4",
    "inotify_init",
    "inotify_init1",
    "pidfd_open",
    "userfaultfd",
];

/// Calls that read a connection's request (what servers use; `readv`/`recvmsg` scatter into
/// several buffers and are not read).
const FIRST_DATA_CALLS: &[&str] = &["read", "recvfrom"];

/// Other calls whose result matters: new processes and threads, program changes, connections.
const RESULT_WANTED: &[&str] = &[
    "clone", "clone3", "fork", "vfork", "execve", "execveat", "connect", "fcntl",
];

fn at<'a>(t: &'a mut [CallInfo], name: &str) -> Option<&'a mut CallInfo> {
    let nr = usize::try_from(Sysno::from_str(name).ok()?.id()).ok()?;
    t.get_mut(nr)
}

/// The table for the architecture this binary was built for.
pub fn table() -> Vec<CallInfo> {
    let mut t: Vec<CallInfo> = (0..SYSCALL_MAX)
        .map(|nr| CallInfo {
            name: Sysno::new(nr).map(|s| s.name()),
            ..CallInfo::default()
        })
        .collect();

    for &(name, a) in PATH_CALLS {
        if let Some(c) = at(&mut t, name) {
            c.payload = Some(Payload::Str { a });
            // *at calls: argument 0 is the directory descriptor
            if a == 1 {
                c.fd_arg = Some(0);
            }
        }
    }
    for &(name, a, b) in PATH2_CALLS {
        if let Some(c) = at(&mut t, name) {
            c.payload = Some(Payload::Str2 { a, b });
        }
    }
    for name in FD0_CALLS {
        if let Some(c) = at(&mut t, name) {
            c.fd_arg = Some(0);
        }
    }
    for name in ["write", "pwrite64", "sendto"] {
        if let Some(c) = at(&mut t, name) {
            c.payload = Some(Payload::Buf { a: 1, b: 2 });
        }
    }
    for name in ["connect", "bind"] {
        if let Some(c) = at(&mut t, name) {
            c.payload = Some(Payload::Sockaddr { a: 1, b: 2 });
        }
    }
    if let Some(c) = at(&mut t, "execve") {
        c.payload = Some(Payload::Exec { a: 0, b: 1 });
    }
    if let Some(c) = at(&mut t, "execveat") {
        c.payload = Some(Payload::Exec { a: 1, b: 2 });
        c.fd_arg = Some(0);
    }
    if let Some(c) = at(&mut t, "mmap") {
        c.fd_arg = Some(4);
    }
    for name in FD_RETURNING {
        if let Some(c) = at(&mut t, name) {
            c.opens_fd = true;
            c.want_exit = true;
        }
    }
    for name in RESULT_WANTED {
        if let Some(c) = at(&mut t, name) {
            c.want_exit = true;
        }
    }
    for name in ["accept", "accept4"] {
        if let Some(c) = at(&mut t, name) {
            c.accepts = true;
        }
    }
    for name in FIRST_DATA_CALLS {
        if let Some(c) = at(&mut t, name) {
            c.first_data = true;
        }
    }
    for name in ["clone", "clone3", "fork", "vfork"] {
        if let Some(c) = at(&mut t, name) {
            c.new_task = true;
        }
    }
    t
}

/// The spec words the probe's `specs` map holds, indexed by syscall number.
pub fn spec_words(table: &[CallInfo]) -> Vec<u32> {
    table
        .iter()
        .map(|c| {
            let flag = |on: bool, bit: u32| if on { bit } else { 0 };
            c.payload.map_or(0, Payload::encode)
                | flag(c.want_exit, WANT_EXIT)
                | flag(c.accepts, ACCEPTS)
                | flag(c.first_data, FIRST_DATA)
                | flag(c.new_task, NEW_TASK)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(t: &'a [CallInfo], name: &str) -> &'a CallInfo {
        t.iter().find(|c| c.name == Some(name)).expect(name)
    }

    #[test]
    fn the_calls_class_tables_look_at_carry_their_arguments() {
        let t = table();
        assert_eq!(find(&t, "openat").payload, Some(Payload::Str { a: 1 }));
        assert!(find(&t, "openat").opens_fd && find(&t, "openat").want_exit);
        assert_eq!(find(&t, "write").payload, Some(Payload::Buf { a: 1, b: 2 }));
        assert_eq!(find(&t, "write").fd_arg, Some(0));
        assert_eq!(
            find(&t, "execve").payload,
            Some(Payload::Exec { a: 0, b: 1 })
        );
        assert_eq!(
            find(&t, "connect").payload,
            Some(Payload::Sockaddr { a: 1, b: 2 })
        );
        assert_eq!(find(&t, "mmap").fd_arg, Some(4));
        assert!(
            !find(&t, "read").want_exit,
            "read is frequent and its result is not needed"
        );
    }

    #[test]
    fn spec_words_match_the_probe_encoding() {
        let t = table();
        let words = spec_words(&t);
        let nr = t
            .iter()
            .position(|c| c.name == Some("openat"))
            .expect("openat");
        // kind 1 (string), argument 1, exit wanted
        assert_eq!(words[nr], 1 | (1 << 4) | WANT_EXIT);
        let nr = t.iter().position(|c| c.name == Some("read")).expect("read");
        assert_eq!(
            words[nr], FIRST_DATA,
            "read's exit only on a fresh connection"
        );
        let nr = t
            .iter()
            .position(|c| c.name == Some("accept4"))
            .expect("accept4");
        assert_eq!(words[nr], WANT_EXIT | ACCEPTS);
    }
}
