//! Live system-call capture for mamori.
//!
//! - [`probe`]: an eBPF probe (CO-RE, BTF-relocated at load) on the raw syscall tracepoints,
//!   streaming entry and exit records through a BPF ring buffer, with per-CPU drop counters and
//!   in-kernel filtering by cgroup (container).
//! - [`assemble`]: turns those records into [`SyscallEvent`](mamori_detect::event::SyscallEvent)s
//!   with names, text arguments and descriptor paths, as strace `-yy` would show them.
//! - [`sockets`]: socket names (addresses and ports) for descriptors opened before capture.
//! - [`ptrace`]: the fallback when eBPF is not available: strace attached to a process tree.
#![deny(missing_docs)]

pub mod assemble;
pub mod probe;
pub mod ptrace;
pub mod raw;
pub mod sockets;
pub mod syscalls_table;

pub use assemble::{Assembler, Captured, FdSnapshots};
pub use probe::{Probe, ProbeConfig, ProbeCounters, ProbeError, RecordSink, WatchHandle};
