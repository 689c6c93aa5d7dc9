//! The one system-call event every source is converted to.
//!
//! This is also mamori's normalised JSON-lines format (`mamori convert` writes one of these per
//! line), so field names are part of the file format: add fields, never rename them.

use serde::{Deserialize, Serialize};

/// One system call as seen by any capture source (strace, Falco, Tracee, LID-DS, ADFA-LD, eBPF).
///
/// Only `syscall` is required: ADFA-LD traces carry nothing else. Everything a class rule may look
/// at (`args`, `fd_path`) is kept as text, already unescaped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallEvent {
    /// Nanoseconds since the Unix epoch, or since the start of the recording when the source only
    /// gives relative or time-of-day stamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ns: Option<i64>,
    /// Process id (thread-group id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Thread id; equal to `pid` for single-threaded processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// Command name (`comm`), e.g. `motion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// Container id or name, when the source knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// System-call name as the kernel calls it (`openat`, `write`, `clone3`).
    pub syscall: String,
    /// Arguments as text, in call order; string arguments unescaped, possibly truncated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// What the call's file descriptor refers to (`/var/log/motion.log`, `TCP:[127.0.0.1:80->…]`):
    /// strace `-yy` annotations, Falco's `fd.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_path: Option<String>,
    /// Return value, when the call completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<i64>,
}

impl SyscallEvent {
    /// An event with only a system-call name, as ADFA-LD and unit tests produce.
    pub fn named(syscall: impl Into<String>) -> Self {
        SyscallEvent {
            syscall: syscall.into(),
            ..SyscallEvent::default()
        }
    }
}

/// What a system-call source yields: a call, or the end of a process or thread (which closes its
/// stream, so a short-lived process still gets its partial window scored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A system call.
    Call(SyscallEvent),
    /// A process or thread ended; no more calls for it follow.
    Exit {
        /// The pid/tid that ended, when the source prints it.
        pid: Option<u32>,
        /// When it ended (same clock as the events' `time_ns`).
        time_ns: Option<i64>,
    },
}
