extern crate std;
use std::vec::Vec;

use super::*;
use crate::codec::{decode, resync};

fn key(b: u8) -> Key {
    Key::from_bytes([b; KEY_LEN])
}

/// Seals `n` records "record i" and returns them encoded, one after another.
fn chain(n: u64) -> Vec<(Header, Vec<u8>)> {
    let mut s = Sealer::new(key(7));
    (0..n)
        .map(|i| {
            let p = std::format!("record {i}").into_bytes();
            (s.seal(Kind::Audit, 1_000 + i as i64, &p).unwrap(), p)
        })
        .collect()
}

#[test]
fn a_clean_chain_verifies() {
    let mut v = Verifier::new(key(7));
    for (h, p) in chain(50) {
        assert!(v.check(&h, &p).clean(), "seq {}", h.seq);
    }
    assert_eq!(v.next_seq(), 51);
}

#[test]
fn keys_move_on_and_differ() {
    let k = key(1);
    assert_ne!(k.evolve(), k);
    assert_eq!(k.evolve_by(3), k.evolve().evolve().evolve());
    // the evolution is SHA-256("mamori-seal evolve v1" || key), computed independently
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"mamori-seal evolve v1");
    h.update([1u8; KEY_LEN]);
    let want: [u8; 32] = h.finalize().into();
    assert_eq!(k.evolve().as_bytes(), &want);
}

#[test]
fn a_flipped_payload_byte_is_tampering_at_its_position() {
    let mut c = chain(10);
    c[4].1[0] ^= 1;
    let mut v = Verifier::new(key(7));
    let faults: Vec<_> = c
        .iter()
        .map(|(h, p)| (h.seq, v.check(h, p)))
        .filter(|(_, r)| !r.clean())
        .collect();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].0, 5);
    assert_eq!(faults[0].1.fault, Some(Fault::Tampered));
}

#[test]
fn a_flipped_header_field_is_tampering() {
    let mut c = chain(5);
    c[2].0.time_ns += 1;
    let mut v = Verifier::new(key(7));
    let r: Vec<_> = c.iter().map(|(h, p)| v.check(h, p)).collect();
    assert_eq!(r[2].fault, Some(Fault::Tampered));
    // the next record is authentic; its link cannot be checked against an altered tag
    assert!(r[3].clean() && r[4].clean());
}

#[test]
fn a_changed_sequence_number_does_not_move_the_chain() {
    for far in [12, 1 << 40, u64::MAX] {
        let mut c = chain(10);
        c[4].0.seq = far; // seq 5 claims to be far ahead (one flipped bit, or a forgery)
        let mut v = Verifier::new(key(7));
        let r: Vec<_> = c.iter().map(|(h, p)| v.check(h, p)).collect();
        assert_eq!(r[4].fault, Some(Fault::Tampered), "{far}");
        assert_eq!(r[4].gap, None, "{far}");
        // the genuine records after it verify at their own positions: position 5 is missing
        assert_eq!(r[5].gap, Some(Fault::Gap { first: 5, last: 5 }), "{far}");
        assert!(
            r[5].authentic() && r[6..].iter().all(|x| x.clean()),
            "{far}: {r:?}"
        );
        assert_eq!(v.next_seq(), 11);
    }
}

#[test]
fn a_dropped_record_is_a_gap_with_exact_positions() {
    let mut c = chain(10);
    c.remove(6); // seq 7
    let mut v = Verifier::new(key(7));
    let r: Vec<_> = c.iter().map(|(h, p)| v.check(h, p)).collect();
    assert_eq!(r[6].gap, Some(Fault::Gap { first: 7, last: 7 }));
    assert!(r[6].authentic());
    assert!(r.iter().enumerate().all(|(i, x)| i == 6 || x.clean()));
}

#[test]
fn two_records_swapped_are_a_gap_then_one_behind() {
    let mut c = chain(6);
    c.swap(2, 3); // 1 2 4 3 5 6
    let mut v = Verifier::new(key(7));
    let r: Vec<_> = c.iter().map(|(h, p)| v.check(h, p)).collect();
    assert_eq!(r[2].gap, Some(Fault::Gap { first: 3, last: 3 }));
    assert_eq!(r[3].fault, Some(Fault::Behind { expected: 5 }));
    assert!(r[4].clean(), "{:?}", r[4]);
}

#[test]
fn a_replayed_old_record_is_behind() {
    let c = chain(5);
    let mut v = Verifier::new(key(7));
    for (h, p) in &c {
        v.check(h, p);
    }
    let r = v.check(&c[1].0, &c[1].1);
    assert_eq!(r.fault, Some(Fault::Behind { expected: 6 }));
    assert_eq!(v.next_seq(), 6);
}

#[test]
fn a_record_forged_with_a_later_key_is_named() {
    // the attacker takes the device at position 9 and rewrites record 4 with the key it holds
    let c = chain(8);
    let mut s = Sealer::new(key(7));
    for _ in 0..8 {
        s.seal(Kind::Audit, 0, b"x").unwrap();
    }
    let stolen = s.state();
    assert_eq!(stolen.next_seq, 9);
    let mut forged = c[3].0.clone();
    let payload = b"nothing happened".to_vec();
    forged.tag = tag(&stolen.key, &forged, &payload);
    let mut v = Verifier::new(key(7));
    let r: Vec<_> = c
        .iter()
        .enumerate()
        .map(|(i, (h, p))| {
            if i == 3 {
                v.check(&forged, &payload)
            } else {
                v.check(h, p)
            }
        })
        .collect();
    assert_eq!(r[3].fault, Some(Fault::LaterKey { key_of: 9 }));
}

#[test]
fn a_record_relinked_elsewhere_breaks_the_link() {
    // a genuine record of another chain position cannot be moved: its seq is in the MAC;
    // a record of a second chain under the same key has the wrong link
    let c = chain(4);
    let mut other = Sealer::new(key(7));
    let h0 = other.seal(Kind::Audit, 5, b"fork").unwrap();
    let mut v = Verifier::new(key(7));
    let r = v.check(&h0, b"fork");
    assert!(r.clean());
    let r = v.check(&c[1].0, &c[1].1);
    assert_eq!(r.fault, Some(Fault::BrokenLink));
}

#[test]
fn resumed_sealer_continues_the_same_chain() {
    let mut s = Sealer::new(key(3));
    let mut out = Vec::new();
    for i in 0..3u8 {
        out.push((s.seal(Kind::Alert, 0, &[i]).unwrap(), std::vec![i]));
    }
    let mut s2 = Sealer::resume(s.state());
    drop(s);
    for i in 3..6u8 {
        out.push((s2.seal(Kind::Alert, 0, &[i]).unwrap(), std::vec![i]));
    }
    let mut v = Verifier::new(key(3));
    assert!(out.iter().all(|(h, p)| v.check(h, p).clean()));
    // a verifier started in the middle agrees
    let mut mid = Verifier::at(&key(3), 4, Some(out[2].0.tag));
    assert!(out[3..].iter().all(|(h, p)| mid.check(h, p).clean()));
}

#[test]
fn codec_round_trips_and_rejects() {
    let (h, p) = chain(3).pop().unwrap();
    let mut bytes = h.encode(p.len()).to_vec();
    bytes.extend_from_slice(&p);
    let (h2, p2, used) = decode(&bytes).unwrap();
    assert_eq!((h2, p2, used), (h.clone(), &p[..], bytes.len()));
    assert_eq!(
        decode(&bytes[..bytes.len() - 1]),
        Err(DecodeError::Short {
            needed: bytes.len()
        })
    );
    assert_eq!(
        decode(&bytes[..10]),
        Err(DecodeError::Short { needed: HEADER_LEN })
    );
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(decode(&bad), Err(DecodeError::BadMagic));
    bad = bytes.clone();
    bad[2] = 9;
    assert_eq!(decode(&bad), Err(DecodeError::BadVersion(9)));
    bad = bytes.clone();
    bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(decode(&bad), Err(DecodeError::PayloadTooLarge(_))));
    // after damage at byte 0 the next "MR" is found, at the second record or before it
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes);
    let next = resync(&two, 0).unwrap();
    assert!(next <= bytes.len() && two[next..next + 2] == MAGIC);
    assert_eq!(resync(b"xxMRyy", 0), Some(2));
    assert_eq!(resync(b"MRxx", 0), None);
}

#[test]
fn oversized_payload_is_refused_before_sealing() {
    let mut s = Sealer::new(key(1));
    let big = std::vec![0u8; MAX_PAYLOAD + 1];
    assert!(s.seal(Kind::Audit, 0, &big).is_err());
    assert_eq!(s.next_seq(), FIRST_SEQ);
}
