//! Helpers shared by the integration tests of the `mamori` binary.

#![allow(dead_code)] // each test file uses its own subset

pub mod ship;
pub mod things;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `mamori` binary under test.
pub fn mamori() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mamori"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/data/<dataset>` beside the repository: the real datasets the `#[ignore]`d tests
/// need (run them with `cargo test -- --include-ignored`).
///
/// # Panics
/// When it is missing: a test that needs the data fails without it instead of passing untested.
pub fn shared_data(dataset: &str) -> PathBuf {
    let path = repo().join("../shared/data").join(dataset);
    assert!(
        path.exists(),
        "{} is missing: this test needs ../shared/data/{dataset} beside the repository",
        path.display()
    );
    path
}

/// Runs `cmd` and returns its output, panicking with both streams when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("mamori runs");
    if !out.status.success() {
        panic!(
            "{:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("mamori-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the Docker tests run (MAMORI_DOCKER_TESTS=1, set by .ci/run after it starts dockerd);
/// says why not when they do not.
pub fn docker_tests_enabled() -> bool {
    if std::env::var_os("MAMORI_DOCKER_TESTS").is_none() {
        eprintln!("skipped: set MAMORI_DOCKER_TESTS=1 with dockerd running (see .ci/run)");
        return false;
    }
    true
}

/// Runs the docker CLI and returns its trimmed stdout, failing the test when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
