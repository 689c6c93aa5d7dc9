//! Helpers shared by mamori-ingest's integration tests (`mod common;`).

use std::path::{Path, PathBuf};

/// `../shared/data/<dataset>` beside the repository: the real datasets the `#[ignore]`d tests
/// need (run them with `cargo test -- --include-ignored`).
///
/// # Panics
/// When it is missing: a test that needs the data fails without it instead of passing untested.
pub fn shared_data(dataset: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(dataset);
    assert!(
        path.exists(),
        "{} is missing: this test needs ../shared/data/{dataset} beside the repository",
        path.display()
    );
    path
}
