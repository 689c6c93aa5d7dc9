//! Linux Audit logs for mamori: records parsed from raw or ENRICHED auditd output, grouped into
//! events by their serial, with the fields provenance analysis needs decoded.
//!
//! - [`parse`]: one line → one [`Record`] (spans into the owned line; no per-field allocation).
//! - [`assemble`]: records → [`AuditEvent`]s by serial, interleaved or out of order.
//! - [`decode`]: the SYSCALL, EXECVE, PATH, CWD, SOCKADDR and PROCTITLE views.
//! - [`reader`]: files (gzip too) and streams → events, lenient or strict, in constant memory.
//! - [`follow`]: a live log followed across rotation and truncation, or the audisp socket.
//! - [`stats`]: malformed lines, LOST records, serial gaps, how events completed.
//! - [`syscalls`]: x86_64 and aarch64 system-call names.
#![deny(missing_docs)]

pub mod assemble;
pub mod decode;
pub mod event;
pub mod follow;
pub mod hex;
pub mod parse;
pub mod reader;
pub mod stats;
pub mod syscalls;

pub use assemble::{Assembler, AssemblerOptions, Completion};
pub use event::{AuditEvent, Execve, PathItem, Record, SockAddr, Syscall, Value};
pub use follow::{
    connect_audisp, follow_path, Audisp, FilePos, Follow, FollowOptions, Resumed, Start, StopHandle,
};
pub use parse::{parse_line, LineError, LineParser, ParsedLine};
pub use reader::{open_path, open_path_with, read_all, AuditReader, Error, ReaderOptions};
pub use stats::{Malformed, ParseStats};
