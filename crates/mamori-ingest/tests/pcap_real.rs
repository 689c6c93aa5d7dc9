//! The capture reader on real IoT captures from `../shared/data/iot-benign-pcap`, checked against
//! tcpdump (packet count, first and last timestamps) and against itself after `editcap -F pcapng`
//! (identical packets). The tests are `#[ignore]`d (run them with `--include-ignored`) and fail
//! when the captures are missing; each is skipped with a message when its tool is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

use mamori_ingest::pcap::{CaptureFormat, CaptureReader};
mod common;

/// The `.pcap` files of ../shared/data/iot-benign-pcap; panics when there are none.
fn captures() -> Vec<PathBuf> {
    let dir = common::shared_data("iot-benign-pcap");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .pcap files in {}", dir.display());
    files
}

fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        eprintln!("skipping the {tool} comparison: {tool} is not installed");
    }
    found
}

/// `(ts_ns, orig_len, data)` of every packet.
fn packets(path: &Path) -> Vec<(u64, u32, Vec<u8>)> {
    let mut r = CaptureReader::open(path, false).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        assert_eq!(p.number, out.len() as u64 + 1);
        out.push((p.ts_ns, p.orig_len, p.data.to_vec()));
    }
    assert_eq!(r.packets_read(), out.len() as u64);
    assert!(r.skipped().is_empty());
    out
}

/// Parses tcpdump's `-tt --time-stamp-precision=nano` time (`1615213839.596226000`) to ns.
fn ts_ns(text: &str) -> u64 {
    let (sec, frac) = text.split_once('.').expect("seconds.fraction");
    assert_eq!(frac.len(), 9, "{text}");
    sec.parse::<u64>().unwrap() * 1_000_000_000 + frac.parse::<u64>().unwrap()
}

#[test]
#[ignore = "needs ../shared/data (iot-benign-pcap); run with --include-ignored"]
fn counts_and_times_match_tcpdump() {
    let files = captures();
    if !have("tcpdump") {
        return;
    }
    for path in files {
        let ours = packets(&path);
        let out = Command::new("tcpdump")
            .args(["-r"])
            .arg(&path)
            .args(["-nn", "-tt", "--time-stamp-precision=nano"])
            .output()
            .unwrap();
        assert!(out.status.success(), "tcpdump failed on {}", path.display());
        let text = String::from_utf8_lossy(&out.stdout);
        // One line per packet starts with its time; hex dumps of unknown protocols follow
        // indented.
        let times: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .map(|l| ts_ns(l.split(' ').next().unwrap_or_default()))
            .collect();
        let name = path.display();
        assert_eq!(ours.len(), times.len(), "{name}: packet count");
        assert_eq!(ours.first().map(|p| p.0), times.first().copied(), "{name}");
        assert_eq!(ours.last().map(|p| p.0), times.last().copied(), "{name}");
        let ours_times: Vec<u64> = ours.iter().map(|p| p.0).collect();
        assert_eq!(ours_times, times, "{name}: every timestamp");
        eprintln!("{name}: {} packets, as tcpdump", ours.len());
    }
}

#[test]
#[ignore = "needs ../shared/data (iot-benign-pcap); run with --include-ignored"]
fn pcapng_conversion_reads_identically() {
    let files = captures();
    if !have("editcap") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("mamori-pcap-real-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for path in files {
        let ng = dir.join(path.with_extension("pcapng").file_name().unwrap());
        let status = Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(&path)
            .arg(&ng)
            .status()
            .unwrap();
        assert!(status.success(), "editcap failed on {}", path.display());
        let r = CaptureReader::open(&ng, false).unwrap();
        assert_eq!(r.format(), CaptureFormat::Pcapng);
        let classic = packets(&path);
        let converted = packets(&ng);
        assert_eq!(classic.len(), converted.len(), "{}", path.display());
        assert!(classic == converted, "{}: packets differ", path.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
