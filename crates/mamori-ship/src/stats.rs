//! The shipper's counters (read by `/metrics` and the CLI's summary).

use std::sync::atomic::{AtomicU64, Ordering};

use mamori_seal::Kind;

use crate::spool::Spool;

/// Whole seconds since the Unix epoch, now (for "last seen" gauges).
pub fn unix_now() -> u64 {
    u64::try_from(mamori_core::time::now_ns() / 1_000_000_000).unwrap_or(0)
}

/// The kinds counted separately, in the order of the per-kind counter arrays.
pub const KIND_NAMES: [&str; 6] = ["audit", "alert", "incident", "notice", "heartbeat", "other"];

/// A kind's slot in the per-kind counter arrays ([`KIND_NAMES`]).
pub fn kind_slot(kind: Kind) -> usize {
    match kind {
        Kind::Audit => 0,
        Kind::Alert => 1,
        Kind::Incident => 2,
        Kind::Notice => 3,
        Kind::Heartbeat => 4,
        Kind::Other(_) => 5,
    }
}

/// Counters and gauges of one shipper; all relaxed atomics.
#[derive(Debug, Default)]
pub struct ShipStats {
    /// Records sealed, by kind: audit, alert, incident, notice, heartbeat, other.
    pub sealed: [AtomicU64; 6],
    /// Last sequence number sealed and committed.
    pub committed: AtomicU64,
    /// Last sequence number the collector acknowledged.
    pub acked: AtomicU64,
    /// Bytes of unacknowledged records in the spool.
    pub spool_bytes: AtomicU64,
    /// 1 while the spool is full and intake is paused.
    pub full: AtomicU64,
    /// Times the spool filled.
    pub full_events: AtomicU64,
    /// In-process records dropped (intake queue full).
    pub dropped: AtomicU64,
    /// Lines longer than a record can hold, shipped cut.
    pub lines_cut: AtomicU64,
    /// Saved file positions that could not be resumed (the file was rotated away).
    pub positions_lost: AtomicU64,
    /// Errors reading a followed file.
    pub source_errors: AtomicU64,
    /// 1 while connected to the collector.
    pub connected: AtomicU64,
    /// Connection attempts that failed or sessions that ended in an error.
    pub connect_failures: AtomicU64,
    /// Sessions established.
    pub sessions: AtomicU64,
    /// Records sent (resends included).
    pub sent_records: AtomicU64,
    /// Bytes of records sent.
    pub sent_bytes: AtomicU64,
    /// Unix time (s) of the last acknowledgement.
    pub last_ack_unix: AtomicU64,
    /// Bytes of the spool skipped as damaged while sending.
    pub damaged_bytes: AtomicU64,
}

impl ShipStats {
    /// Counts one sealed record.
    pub fn count_sealed(&self, kind: Kind) {
        self.sealed[kind_slot(kind)].fetch_add(1, Ordering::Relaxed);
    }

    /// Sealed counts with their kind names.
    pub fn sealed_by_kind(&self) -> [(&'static str, u64); 6] {
        std::array::from_fn(|i| (KIND_NAMES[i], self.sealed[i].load(Ordering::Relaxed)))
    }

    /// Copies the spool's gauges.
    pub fn observe(&self, spool: &Spool) {
        self.committed.store(spool.committed(), Ordering::Relaxed);
        self.acked.store(spool.acked(), Ordering::Relaxed);
        self.spool_bytes
            .store(spool.pending_bytes(), Ordering::Relaxed);
    }
}
