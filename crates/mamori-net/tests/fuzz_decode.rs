//! Mutation fuzzing of the network path after the capture reader: the header decoder and the
//! feature extractors on mutated frames, and the labels parser on mutated labels files.
//!
//! No input may panic; decoded lengths stay consistent; a labels file either parses into
//! attacks with finite, ordered, non-negative times or fails naming `file:line` within it.

use std::net::IpAddr;

use mamori_net::features::{Extractor, FeatureConfig, FeatureKind, FeatureRow};
use mamori_net::labels::Labels;
use mamori_net::packet::{decode, linktype};
use proptest::prelude::*;

/// Seed frames: Ethernet/IPv4/TCP SYN, Ethernet/VLAN/IPv6/UDP DNS, Linux SLL/IPv4/ICMP, ARP.
fn seed_frames() -> Vec<(u32, Vec<u8>)> {
    let mut tcp = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    tcp.extend_from_slice(&[
        0x45, 0, 0, 44, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 3, 10, 0, 0, 2,
    ]);
    tcp.extend_from_slice(&[
        0x9c, 0x40, 0, 23, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff,
    ]);
    tcp.extend_from_slice(&[0, 0, 0, 0, 2, 4, 5, 0xb4]);

    let mut v6 = vec![
        0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 9, 0x81, 0x00, 0, 5, 0x86, 0xdd,
    ];
    v6.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, 17, 64]);
    v6.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v6.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb]);
    v6.extend_from_slice(&[0x14, 0xe9, 0x14, 0xe9, 0, 20, 0, 0]);
    v6.extend_from_slice(&[0; 12]);

    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 7, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&[
        0x45, 0, 0, 28, 0, 2, 0, 0, 64, 1, 0, 0, 192, 168, 1, 5, 192, 168, 1, 1,
    ]);
    sll.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);

    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 4, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 4, 10, 0, 0, 4]);
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 1]);

    vec![
        (linktype::ETHERNET, tcp),
        (linktype::ETHERNET, v6),
        (linktype::LINUX_SLL, sll),
        (linktype::ETHERNET, arp),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), 1..=255u8).prop_map(|(p, x)| Op::Flip(p, x)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(p, x)| Op::Insert(p, x)),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => any::<usize>().prop_map(Op::Truncate),
    ]
}

fn mutate(mut b: Vec<u8>, ops: &[Op]) -> Vec<u8> {
    for op in ops {
        match *op {
            Op::Flip(p, x) if !b.is_empty() => {
                let i = p % b.len();
                b[i] ^= x;
            }
            Op::Insert(p, x) => {
                let i = p % (b.len() + 1);
                b.insert(i, x);
            }
            Op::Delete(p) if !b.is_empty() => {
                let i = p % b.len();
                b.remove(i);
            }
            Op::Truncate(p) => {
                let i = p % (b.len() + 1);
                b.truncate(i);
            }
            _ => {}
        }
    }
    b
}

const LINKTYPES: [u32; 11] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::RAW_BSD_12,
    linktype::RAW_BSD_14,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    147,
];

const LABELS: &str = "# from to attacker victim name\n\
                      1615216935.5\t1615216940\t10.0.0.3\t10.0.0.2\tsyn-flood\n\
                      1615216950 1615216960 10.0.0.3 * scan\n\
                      1615216970000000000 1615216980000000000 fe80::1 fe80::2 telnet\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Mutated frames decode without panicking and feed every extractor.
    #[test]
    fn mutated_frames(frames in proptest::collection::vec(
                          (0..4usize, proptest::collection::vec(op(), 0..6), 0..LINKTYPES.len(),
                           any::<bool>(), 0..2_000_000_000u64, any::<u32>()), 1..24)) {
        let seeds = seed_frames();
        let mut extractors: Vec<Extractor> = [FeatureKind::Device, FeatureKind::Flow,
                                              FeatureKind::Interval]
            .into_iter()
            .map(|kind| Extractor::new(&FeatureConfig { kind, ..FeatureConfig::default() }))
            .collect();
        let mut rows: Vec<FeatureRow> = Vec::new();
        let mut ts = 1_615_216_935_000_000_000u64;
        for (seed, ops, lt, other_link, dt, orig) in frames {
            let (seed_lt, frame) = &seeds[seed];
            let data = mutate(frame.clone(), &ops);
            let lt = if other_link { LINKTYPES[lt] } else { *seed_lt };
            ts = ts.saturating_add(dt);
            let orig_len = if orig % 2 == 0 { data.len() as u32 } else { orig };
            match decode(lt, ts, orig_len, &data) {
                Ok(m) => {
                    prop_assert_eq!(m.wire_len, orig_len);
                    prop_assert_eq!(m.ts_ns, ts);
                    for x in &mut extractors {
                        x.push(&m, (), &mut rows);
                    }
                }
                Err(e) => prop_assert_eq!(e.linktype, lt),
            }
        }
        for x in &mut extractors {
            x.finish(&mut rows);
        }
        for r in &rows {
            prop_assert!(r.end_ns >= r.start_ns);
            prop_assert!(r.values.iter().all(|v| !v.is_nan()), "NaN feature in {:?}", r);
        }
    }

    /// Mutated labels files: parse into sane attacks, or fail naming a line of the file.
    #[test]
    fn mutated_labels(ops in proptest::collection::vec(op(), 1..10),
                      word in prop_oneof![Just("nan"), Just("-5"), Just("inf"), Just("1e400"),
                                          Just("-0.5"), Just("1.5e9"), Just("\u{7}x")],
                      at in any::<usize>()) {
        let mut text = String::from_utf8_lossy(&mutate(LABELS.as_bytes().to_vec(), &ops))
            .into_owned();
        // And a suspicious word over one of the fields.
        let fields: Vec<(usize, usize)> = text
            .match_indices(|c: char| c.is_ascii_digit())
            .map(|(i, _)| (i, i + 1))
            .collect();
        if !fields.is_empty() {
            let (i, j) = fields[at % fields.len()];
            text.replace_range(i..j, word);
        }
        let lines = text.lines().count().max(1);
        let mut labels = Labels::default();
        match labels.add_text(&text, "l.tsv") {
            Ok(()) => {
                for a in labels.attacks() {
                    prop_assert!(a.from_ns >= 0 && a.to_ns >= a.from_ns, "{:?}", a);
                    prop_assert!(matches!(a.attacker, Some(IpAddr::V4(_) | IpAddr::V6(_))));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let line: usize = msg
                    .strip_prefix("l.tsv:")
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                prop_assert!(line >= 1 && line <= lines, "{} ({} lines)", msg, lines);
                prop_assert!(!msg.chars().any(char::is_control), "{:?}", msg);
                prop_assert!(labels.is_empty(), "a bad file adds nothing");
            }
        }
    }
}
