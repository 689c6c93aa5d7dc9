//! Throughput of the capture reader alone and of reader + header decoding, on one core.
//!
//! ```text
//! cargo run --release -p mamori-net --example pcap_throughput -- [ROUNDS] [FILE...]
//! ```
//!
//! Without files it reads `../shared/data/iot-benign-pcap/*.pcap` (from the workspace root).
//! Each file is read `ROUNDS` times (default 40) from the page cache, so this measures parsing,
//! not the disk.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use mamori_ingest::pcap::CaptureReader;
use mamori_net::packet::decode;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rounds: u32 = match args.next() {
        Some(r) => r.parse()?,
        None => 40,
    };
    let mut files: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if files.is_empty() {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/iot-benign-pcap");
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "pcap") {
                files.push(path);
            }
        }
        files.sort();
    }

    for decode_too in [false, true] {
        let mut packets = 0u64;
        let mut bytes = 0u64;
        let mut check = 0u64;
        let start = Instant::now();
        for _ in 0..rounds {
            for path in &files {
                let mut reader = CaptureReader::open(path, false)?;
                while let Some(p) = reader.next_packet()? {
                    packets += 1;
                    bytes += p.data.len() as u64;
                    if decode_too {
                        let m = decode(p.linktype, p.ts_ns, p.orig_len, p.data)?;
                        check = check
                            .wrapping_add(u64::from(m.src_port))
                            .wrapping_add(u64::from(m.payload_len));
                    } else {
                        check = check.wrapping_add(p.ts_ns);
                    }
                }
            }
        }
        black_box(check);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<16} {} files x {rounds}: {packets} packets, {:.1} MB captured in {secs:.3} s: \
             {:.2} M packets/s",
            if decode_too {
                "read + decode"
            } else {
                "read only"
            },
            files.len(),
            bytes as f64 / 1e6,
            packets as f64 / secs / 1e6
        );
    }
    Ok(())
}
