//! Device conformance for mamori: a Prometheus-like monitor of W3C WoT Things.
//!
//! - [`td`] loads Thing Descriptions (a file, a TD's URL, a servient's directory) and checks
//!   them ([`check`]) with every problem named by its JSON path;
//! - [`api`] lists the HTTP requests a Thing declares and whether each only reads;
//! - [`schema`] checks a value a device returned against its DataSchema;
//! - [`client`] reads properties over HTTP(S) with nosec, basic or bearer security;
//! - [`probe`] polls every readable property of a Thing once and judges the round;
//! - [`health`] turns rounds into healthy → suspect → failed, with hysteresis and reasons;
//! - [`recovery`] decides restarts with backoff and a crash-loop guard;
//! - [`monitor`] runs all of it per Thing and restarts the Thing's container through Docker.
#![deny(missing_docs)]

pub mod api;
pub mod check;
pub mod client;
pub mod expect;
pub mod health;
pub mod monitor;
pub mod probe;
pub mod recovery;
pub mod schema;
pub mod status;
pub mod td;
