//! Tamper-evident log shipping, device → collector.
//!
//! On the device, records (audit lines, mamori's alerts and incidents) are sealed into a
//! forward-secure chain ([`mamori_seal`]) the moment they are read and written to an on-disk
//! spool; a shipper sends the spool over mutually authenticated TLS 1.3 and forgets only what the
//! collector acknowledged. The collector verifies each device's chain, stores it append-only,
//! and reports gaps, reordering and tampering by sequence number. For fleets, NATS JetStream can
//! carry and keep the records instead ([`nats`] on the device, [`nats_intake`] on the
//! collector), through the same verification and store.

pub mod certs;
pub mod collector;
pub mod device;
pub mod finding;
pub mod http;
pub mod intake;
pub mod nats;
pub mod nats_intake;
pub mod proto;
pub mod shipper;
pub mod spool;
pub mod stats;
pub mod store;
pub mod tls;
pub mod verify;

pub use finding::{Finding, FindingKind};
pub use store::{
    list_devices, DeviceStore, Head, Positioned, ReadError, RecordReader, Recovery, StoreError,
    StoreOptions,
};
pub use verify::{verify, verify_each, Report, Verdict, VerifyError, VerifyOptions};
