//! Compiles the eBPF probe with clang and generates its libbpf-rs skeleton.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/mamori.bpf.c";

fn main() {
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("mamori.skel.rs");
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => panic!("mamori's eBPF probe supports x86_64 and aarch64, not {other}"),
        Err(_) => panic!("cargo sets CARGO_CFG_TARGET_ARCH"),
    };
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args([
            format!("-D__TARGET_ARCH_{arch}"),
            "-Isrc/bpf".to_string(),
            "-Wall".to_string(),
        ])
        .build_and_generate(&out)
        .unwrap_or_else(|e| {
            panic!("building the eBPF probe {SRC} failed (needs clang and libbpf-dev's headers): {e:#}")
        });
    println!("cargo:rerun-if-changed=src/bpf");
}
