//! A sealed stream as a collector receives it from the network, mutated at random: decoding and
//! verifying never panic, every decode error is inside the stream, an untouched stream verifies
//! clean, and a changed byte is always noticed (no mutation leaves every record authentic and
//! linked unless it left the bytes as they were).

use mamori_seal::codec::{self, Kind, HEADER_LEN};
use mamori_seal::{Key, Sealer, Verifier};
use proptest::prelude::*;

fn key() -> Key {
    Key::from_bytes([7; 32])
}

/// Twenty records of the kinds a device sends: audit lines, alerts, a heartbeat.
fn stream() -> Vec<u8> {
    let mut sealer = Sealer::new(key());
    let mut out = Vec::new();
    for i in 0..20u8 {
        let (kind, payload): (Kind, Vec<u8>) = match i % 3 {
            0 => (
                Kind::from_byte(1),
                format!(
                    "type=SYSCALL msg=audit(1796585967.{i:03}:{i}): arch=c000003e syscall=59 \
                     success=yes exit=0 comm=\"sh\" exe=\"/bin/sh\"\n"
                )
                .into_bytes(),
            ),
            1 => (
                Kind::from_byte(2),
                format!("{{\"kind\":\"alert\",\"score\":0.{i},\"subject\":\"motion\"}}\n")
                    .into_bytes(),
            ),
            _ => (Kind::from_byte(3), Vec::new()),
        };
        let header = sealer
            .seal(kind, 1_796_585_967_000_000_000 + i64::from(i), &payload)
            .expect("seal");
        out.extend_from_slice(&header.encode(payload.len()));
        out.extend_from_slice(&payload);
    }
    out
}

/// Walks a received byte stream as the collector does: decode a record, verify it, and after
/// damage resynchronise on the next record marker. Returns (records decoded, all clean).
fn walk(bytes: &[u8]) -> (usize, bool) {
    let mut verifier = Verifier::new(key());
    let (mut at, mut records, mut clean) = (0usize, 0usize, true);
    while at < bytes.len() {
        match codec::decode(&bytes[at..]) {
            Ok((header, payload, used)) => {
                assert!(used >= HEADER_LEN && at + used <= bytes.len());
                records += 1;
                clean &= verifier.check(&header, payload).clean();
                at += used;
            }
            Err(_) => {
                clean = false;
                match codec::resync(bytes, at) {
                    Some(next) => {
                        assert!(next > at && next < bytes.len());
                        at = next;
                    }
                    None => break,
                }
            }
        }
    }
    (records, clean)
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Mutation::Flip(at, x)),
        (any::<usize>(), 1usize..200).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![Just(b'M'), Just(b'R'), Just(0xff), any::<u8>()],
                1..100
            )
        )
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..300).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match m {
        Mutation::Flip(at, x) => {
            let i = at % len;
            if let Some(b) = bytes.get_mut(i) {
                *b ^= x;
            }
        }
        Mutation::Delete(at, n) => {
            let i = at % len;
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Insert(at, extra) => {
            let i = at % (bytes.len() + 1);
            bytes.splice(i..i, extra.iter().copied());
        }
        Mutation::Truncate(at) => bytes.truncate(at % len),
        Mutation::Duplicate(at, n) => {
            let i = at % len;
            let end = (i + n).min(bytes.len());
            let copy = bytes[i..end].to_vec();
            bytes.splice(end..end, copy);
        }
    }
}

#[test]
fn an_untouched_stream_verifies_clean() {
    assert_eq!(walk(&stream()), (20, true));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_streams_never_panic_and_never_pass_unnoticed(
        mutations in prop::collection::vec(mutation(), 1..4)
    ) {
        let original = stream();
        let mut bytes = original.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let (records, clean) = walk(&bytes);
        prop_assert!(records <= 20 + bytes.len() / HEADER_LEN);
        if bytes != original {
            // a trailing cut that removed whole records is invisible to the stream itself (the
            // collector's head and the device's next records tell); anything else is noticed
            let whole_records_cut = original.starts_with(&bytes) && walk(&bytes).1;
            prop_assert!(!clean || whole_records_cut, "a changed stream verified clean");
        }
    }
}
