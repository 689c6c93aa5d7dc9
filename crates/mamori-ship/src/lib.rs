//! Tamper-evident log shipping, device → collector.
//!
//! On the device, records (audit lines, mamori's alerts and incidents) are sealed into a
//! forward-secure chain ([`mamori_seal`]) the moment they are read and written to an on-disk
//! spool; a shipper sends the spool over mutually authenticated TLS 1.3 and forgets only what the
//! collector acknowledged. The collector verifies each device's chain, stores it append-only,
//! and reports gaps, reordering and tampering by sequence number.

pub mod nats;
