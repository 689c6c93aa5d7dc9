//! Helpers shared by mamori-net's integration tests (`mod common;`).
// Each test binary uses only some of the helpers.
#![allow(dead_code)]

pub mod parity;

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/data/<dataset>` beside the repository: the real datasets the `#[ignore]`d tests
/// need (run them with `cargo test -- --include-ignored`).
///
/// # Panics
/// When it is missing: a test that needs the data fails without it instead of passing untested.
pub fn shared_data(dataset: &str) -> PathBuf {
    let path = workspace_root().join("../shared/data").join(dataset);
    assert!(
        path.exists(),
        "{} is missing: this test needs ../shared/data/{dataset} beside the repository",
        path.display()
    );
    path
}
