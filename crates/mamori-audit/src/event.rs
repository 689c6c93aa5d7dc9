//! The event model: one [`AuditEvent`] per audit serial, holding its [`Record`]s and the decoded
//! views provenance analysis reads ([`Syscall`], [`Execve`], [`PathItem`]s, CWD, [`SockAddr`],
//! the process title).

use serde::Serialize;

/// One audit event: every record that shares a `msg=audit(SECONDS.MILLIS:SERIAL)` stamp.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditEvent {
    /// The event's serial number (unique per boot, increasing).
    pub serial: u64,
    /// The event's time, nanoseconds since the Unix epoch (audit stamps have millisecond resolution).
    pub time_ns: i64,
    /// The SYSCALL record, decoded, when the event has one.
    pub syscall: Option<Syscall>,
    /// The EXECVE record's arguments, decoded (hex and split arguments joined).
    pub execve: Option<Execve>,
    /// The PATH records in `item` order.
    pub paths: Vec<PathItem>,
    /// The CWD record's directory.
    pub cwd: Option<String>,
    /// The SOCKADDR record, decoded.
    pub sockaddr: Option<SockAddr>,
    /// The PROCTITLE record, decoded (NUL separators become spaces).
    pub proctitle: Option<String>,
    /// Every record of the event, including the decoded ones, in arrival order.
    pub records: Vec<Record>,
}

/// One audit record: its type and its `key=value` fields, as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Record {
    /// The record type (`SYSCALL`, `PATH`, `USER_LOGIN`, …; `UNKNOWN[1337]` kept as written).
    pub kind: String,
    /// Raw fields in order, values unquoted (`name="/etc/passwd"` → `/etc/passwd`).
    pub fields: Vec<(String, String)>,
    /// The ENRICHED interpretations after the 0x1d separator (`UID="root"` …), in order.
    pub interpreted: Vec<(String, String)>,
}

/// The SYSCALL record's fields provenance needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Syscall {
    /// Architecture (`c000003e` for x86_64).
    pub arch: String,
    /// System-call number.
    pub number: i64,
    /// Its name when known for the architecture (from ENRICHED `SYSCALL=` or the built-in table).
    pub name: Option<String>,
    /// Whether the call succeeded (`success=yes`).
    pub success: bool,
    /// The return value (`exit=`), negative errno on failure.
    pub exit: i64,
    /// Arguments a0..a3, as written in hex.
    pub args: [u64; 4],
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Audit (login) user id; `u32::MAX` when unset.
    pub auid: u32,
    /// Session id; `u32::MAX` when unset.
    pub ses: u32,
    /// The command name (`comm=`), at most 16 bytes.
    pub comm: String,
    /// The executable (`exe=`).
    pub exe: String,
    /// The rule key (`key=`), when the matching rule had one.
    pub key: Option<String>,
}

/// The EXECVE record: the program's arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Execve {
    /// The arguments, decoded (`a0`, `a1`, … with `aN[i]` pieces joined, hex decoded).
    pub argv: Vec<String>,
    /// `argc` as the kernel reported it (may exceed `argv.len()` when records were lost).
    pub argc: usize,
}

/// One PATH record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PathItem {
    /// The item number (`item=`).
    pub item: u32,
    /// The name as passed to the call, decoded (relative names are relative to the CWD).
    pub name: Option<String>,
    /// Inode number.
    pub inode: Option<u64>,
    /// Device, `MAJOR:MINOR` as written (hex).
    pub dev: Option<String>,
    /// File mode (octal, as a number).
    pub mode: Option<u32>,
    /// `NORMAL`, `PARENT`, `CREATE`, `DELETE`, `UNKNOWN`.
    pub nametype: String,
}

/// A decoded SOCKADDR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum SockAddr {
    /// IPv4 address and port.
    Inet {
        /// Dotted address.
        addr: String,
        /// Port.
        port: u16,
    },
    /// IPv6 address and port.
    Inet6 {
        /// Address, compressed form.
        addr: String,
        /// Port.
        port: u16,
    },
    /// Unix-domain socket path (abstract names start with `@`).
    Unix {
        /// The path.
        path: String,
    },
    /// Netlink socket.
    Netlink {
        /// Port id.
        pid: u32,
    },
    /// Any other family, with the raw hex kept.
    Other {
        /// Family number.
        number: u16,
        /// The record's `saddr=` hex.
        raw: String,
    },
}

impl std::fmt::Display for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SockAddr::Inet { addr, port } => write!(f, "{addr}:{port}"),
            SockAddr::Inet6 { addr, port } => write!(f, "[{addr}]:{port}"),
            SockAddr::Unix { path } => write!(f, "unix:{path}"),
            SockAddr::Netlink { pid } => write!(f, "netlink:{pid}"),
            SockAddr::Other { number, raw } => write!(f, "family{number}:{raw}"),
        }
    }
}

impl Record {
    /// The raw value of a field, first occurrence.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The ENRICHED interpretation of a field (`UID`, `SYSCALL`, …), first occurrence.
    pub fn interpreted_get(&self, key: &str) -> Option<&str> {
        self.interpreted
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl AuditEvent {
    /// The first record of a type.
    pub fn record(&self, kind: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.kind == kind)
    }

    /// Whether the event's end marker (`EOE`) was seen.
    pub fn has_eoe(&self) -> bool {
        self.records.iter().any(|r| r.kind == "EOE")
    }
}
