//! Decodes every packet of the real IoT captures in `../shared/data/iot-benign-pcap` and checks
//! per-category counts against tcpdump's BPF filters, the reference for what a packet is.
//! `#[ignore]`d for the captures (run with `--include-ignored`): without them the test fails;
//! without tcpdump it is skipped with a message.

use std::path::{Path, PathBuf};
use std::process::Command;
mod common;

use mamori_ingest::pcap::CaptureReader;
use mamori_net::packet::{decode, AppProto, PacketMeta, L3};

type Category = (&'static str, fn(&PacketMeta) -> bool);

/// The categories compared: a tcpdump filter and the same question asked of [`PacketMeta`].
const CATEGORIES: [Category; 8] = [
    ("tcp", |m| m.ip_proto == 6),
    ("udp", |m| m.ip_proto == 17),
    ("arp", |m| m.l3 == L3::Arp),
    ("ip6", |m| m.l3 == L3::Ipv6),
    ("udp port 53", |m| {
        m.ip_proto == 17 && (m.src_port == 53 || m.dst_port == 53)
    }),
    ("icmp", |m| m.l3 == L3::Ipv4 && m.ip_proto == 1),
    ("tcp[tcpflags] & tcp-syn != 0", |m| {
        m.l3 == L3::Ipv4 && m.ip_proto == 6 && m.tcp_flags & 0x02 != 0
    }),
    ("tcp port 8883 or tcp port 1883", |m| {
        m.app == AppProto::Mqtt
    }),
];

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

/// Packets tcpdump prints for `filter` (one line each starting with the time; hex dumps of
/// unknown payloads follow indented).
///
/// A BPF filter only looks at untagged frames unless `vlan` comes first (it shifts the offsets of
/// what follows), and these captures carry one direction VLAN-tagged, so the filter asked is
/// `F or (vlan and F)`: the decoder steps over tags.
fn tcpdump_count(path: &Path, filter: &str) -> u64 {
    let filter = format!("({filter}) or (vlan and ({filter}))");
    let out = Command::new("tcpdump")
        .arg("-r")
        .arg(path)
        .args(["-nn", "-tt", &filter])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tcpdump '{filter}' failed on {}",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .count() as u64
}

#[test]
#[ignore = "needs ../shared/data (iot-benign-pcap); run with --include-ignored"]
fn category_counts_match_tcpdump() {
    let files = captures();
    if Command::new("tcpdump").arg("--version").output().is_err() {
        eprintln!("skipping: tcpdump is not installed");
        return;
    }
    for path in files {
        let mut reader = CaptureReader::open(&path, false).unwrap();
        let mut ours = [0u64; CATEGORIES.len()];
        let mut apps = std::collections::BTreeMap::<String, u64>::new();
        while let Some(p) = reader.next_packet().unwrap() {
            let m = decode(p.linktype, p.ts_ns, p.orig_len, p.data).unwrap();
            assert_eq!(m.wire_len, p.orig_len);
            for (count, (_, pred)) in ours.iter_mut().zip(CATEGORIES) {
                *count += u64::from(pred(&m));
            }
            if m.app != AppProto::Unknown {
                *apps.entry(format!("{:?}", m.app)).or_default() += 1;
            }
        }
        for (count, (filter, _)) in ours.iter().zip(CATEGORIES) {
            let reference = tcpdump_count(&path, filter);
            assert_eq!(
                *count,
                reference,
                "{}: packets matching '{filter}'",
                path.display()
            );
        }
        eprintln!(
            "{}: {} packets; {:?} as tcpdump; apps {apps:?}",
            path.display(),
            reader.packets_read(),
            CATEGORIES.iter().map(|c| c.0).zip(ours).collect::<Vec<_>>()
        );
    }
}
