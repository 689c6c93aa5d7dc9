//! Helpers shared by mamori-net's integration tests (`mod common;`).
// Each test binary uses only some of the helpers.
#![allow(dead_code)]

pub mod parity;
