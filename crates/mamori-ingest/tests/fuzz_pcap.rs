//! Mutation fuzzing of the capture reader: seed captures (a synthetic classic pcap, a synthetic
//! pcapng, a slice of a real lab capture) with random byte flips, inserts, deletes, overwritten
//! length fields and truncations, read plain and gzip-compressed, strict and lenient.
//!
//! Whatever the bytes: no panic, no hang (every loop is bounded by the input's length), strict
//! errors name a packet number and a byte offset inside the input, lenient reading never fails
//! (only I/O could, and these inputs are in memory) and its abandoned ranges lie inside the input.

mod pcap_common;

use std::io::Read;
use std::sync::OnceLock;

use mamori_ingest::pcap::{CaptureReader, Location};
use pcap_common::{classic, gzip, pcapng};
use proptest::prelude::*;

/// One mutation; positions are taken modulo the length.
#[derive(Debug, Clone)]
enum Op {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    /// A little-endian u32 written over whatever is there (record and block lengths, mostly).
    Word(usize, u32),
    Truncate(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), 1..=255u8).prop_map(|(p, x)| Op::Flip(p, x)),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Op::Insert(p, b)),
        2 => (any::<usize>(), 1..64usize).prop_map(|(p, n)| Op::Delete(p, n)),
        3 => (any::<usize>(), prop_oneof![
            Just(0u32), Just(13), Just(0xFFFF_FFFF), Just(0x7FFF_0000), Just(1 << 20),
            Just(32 << 20), any::<u32>()
        ]).prop_map(|(p, w)| Op::Word(p, w)),
        1 => any::<usize>().prop_map(Op::Truncate),
    ]
}

fn apply(seed: &[u8], ops: &[Op]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for op in ops {
        if b.is_empty() {
            break;
        }
        let at = |p: usize, len: usize| p % len;
        match op {
            Op::Flip(p, x) => {
                let i = at(*p, b.len());
                b[i] ^= x;
            }
            Op::Insert(p, bytes) => {
                let i = at(*p, b.len() + 1);
                b.splice(i..i, bytes.iter().copied());
            }
            Op::Delete(p, n) => {
                let i = at(*p, b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Op::Word(p, w) => {
                // Aligned on 4 so it mostly hits length fields.
                let i = at(*p, b.len()) & !3;
                if i + 4 <= b.len() {
                    b[i..i + 4].copy_from_slice(&w.to_le_bytes());
                }
            }
            Op::Truncate(p) => {
                let i = at(*p, b.len() + 1);
                b.truncate(i);
            }
        }
    }
    b
}

/// The seeds: synthetic captures and, when present, the first 48 KiB of a real lab capture.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut s = vec![classic(24).bytes, pcapng(24).bytes];
        let real = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/net/lab-a/capture.pcap.gz"
        );
        // The repository's own lab capture; the synthetic seeds alone still cover both formats.
        if let Ok(f) = std::fs::File::open(real) {
            let mut head = Vec::new();
            let _ = flate2::read::MultiGzDecoder::new(f)
                .take(48 << 10)
                .read_to_end(&mut head);
            if head.len() > 1024 {
                s.push(head);
            }
        }
        s
    })
}

fn no_control(text: &str) -> bool {
    !text.chars().any(|c| c.is_control())
}

/// Reads `bytes` (the decompressed content is `plain`) and checks the contract.
fn check(bytes: &[u8], plain_len: usize, lenient: bool) -> Result<(), TestCaseError> {
    let mut r = match CaptureReader::new(
        Box::new(std::io::Cursor::new(bytes.to_vec())),
        "f.pcap",
        lenient,
    ) {
        Ok(r) => r,
        Err(e) => {
            // Only the file header can fail here.
            prop_assert_eq!(e.location(), Location::FileHeader);
            prop_assert!(no_control(&e.to_string()), "{}", e);
            return Ok(());
        }
    };
    // Every call consumes at least 8 bytes or ends: more calls than that is a hang.
    let budget = plain_len / 4 + 16;
    let mut calls = 0;
    loop {
        calls += 1;
        prop_assert!(calls <= budget, "no end after {} calls", calls);
        match r.next_packet() {
            Ok(None) => break,
            Ok(Some(p)) => {
                prop_assert!(p.data.len() <= plain_len);
                // Damaged records skipped in between use numbers too, each at least 8 bytes.
                prop_assert!(p.number >= 1 && p.number <= plain_len as u64 / 8 + 2);
            }
            Err(e) => {
                prop_assert!(!lenient, "lenient reading failed: {}", e);
                let text = e.to_string();
                prop_assert!(no_control(&text), "{}", text);
                prop_assert!(text.starts_with("f.pcap: "), "{}", text);
                prop_assert!(
                    e.offset() <= plain_len as u64,
                    "{} (len {})",
                    text,
                    plain_len
                );
                let n = e.packet();
                prop_assert!(n.is_some(), "{}", text);
                prop_assert!(n.unwrap_or(0) >= 1);
                prop_assert!(
                    text.contains(&format!("packet {}", n.unwrap_or(0))),
                    "{}",
                    text
                );
            }
        }
    }
    prop_assert!(r.next_packet().map(|p| p.is_none()).unwrap_or(false) || !lenient);
    let mut last = 0;
    for a in r.abandoned() {
        prop_assert!(
            a.from >= last && a.from < a.to && a.to <= plain_len as u64,
            "{:?}",
            a
        );
        last = a.to;
    }
    prop_assert!(no_control(&r.skipped().to_string()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_captures(seed in 0..3usize, ops in proptest::collection::vec(op(), 1..8),
                        gz in any::<bool>()) {
        let seeds = seeds();
        let plain = apply(&seeds[seed % seeds.len()], &ops);
        let bytes = if gz { gzip(&plain) } else { plain.clone() };
        for lenient in [false, true] {
            check(&bytes, plain.len(), lenient)?;
        }
    }

    /// Damage to the compressed bytes themselves: truncated or corrupt gzip.
    #[test]
    fn mutated_gzip(seed in 0..2usize, ops in proptest::collection::vec(op(), 1..4)) {
        let seeds = seeds();
        let plain = &seeds[seed];
        let bytes = apply(&gzip(plain), &ops);
        for lenient in [false, true] {
            // A corrupt stream may decompress to more than the original: bound by its output.
            check(&bytes, plain.len() * 2 + (64 << 10), lenient)?;
        }
    }
}
