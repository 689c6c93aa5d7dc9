//! Linux Audit logs for mamori: records parsed from raw or ENRICHED auditd output, grouped into
//! events by their serial, with the fields provenance analysis needs decoded.
#![deny(missing_docs)]

pub mod event;

pub use event::{AuditEvent, Execve, PathItem, Record, SockAddr, Syscall};
