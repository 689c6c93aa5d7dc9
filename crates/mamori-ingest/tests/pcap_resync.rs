//! Lenient reading after damage: a corrupt record length no longer costs every record after it,
//! and a cut gzip stream keeps what decompressed. Strict reading names the packet and offset.

mod pcap_common;

use pcap_common::{classic, expected, gzip, pcapng, read_all, reader};

const N: usize = 200;

/// The packets read, as `(ts_ns, orig_len, data)`, must be `expected(i)` for every `i` but `lost`.
fn assert_all_but(got: &[pcap_common::Pkt], lost: &[usize]) {
    let want: Vec<_> = (0..N).filter(|i| !lost.contains(i)).map(expected).collect();
    let got: Vec<_> = got
        .iter()
        .map(|(_, ts, orig, data)| (*ts, *orig, data.clone()))
        .collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "packets differ");
}

#[test]
fn classic_corrupt_length_resynchronises() {
    let mut b = classic(N);
    let bad = 100;
    let (from, to) = (b.offsets[bad], b.offsets[bad + 1]);
    b.bytes[from + 8..from + 12].copy_from_slice(&0x7fff_0000u32.to_le_bytes());

    let mut strict = reader(&b.bytes, false).unwrap();
    for _ in 0..bad {
        strict.next_packet().unwrap().unwrap();
    }
    let err = strict.next_packet().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "t.pcap: packet {} (byte offset {from}): record length 2147418112 exceeds the \
             maximum 262144",
            bad + 1
        )
    );

    let mut lenient = reader(&b.bytes, true).unwrap();
    let got = read_all(&mut lenient).unwrap();
    assert_all_but(&got, &[bad]);
    let skipped = lenient.skipped();
    assert_eq!(skipped.total(), 1);
    assert_eq!(skipped.counts().get("record too long"), Some(&1));
    let text = skipped.to_string();
    let range = format!(
        "bytes {from}..{to} abandoned ({} bytes), reading resumed at byte offset {to}",
        to - from
    );
    assert!(text.contains(&range), "{text}");
    assert_eq!(skipped.stopped_at(), None, "{text}");
}

#[test]
fn classic_corrupt_length_of_the_first_record_resynchronises() {
    let mut b = classic(N);
    let from = b.offsets[0];
    b.bytes[from + 8..from + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let got = read_all(&mut reader(&b.bytes, true).unwrap()).unwrap();
    assert_all_but(&got, &[0]);
}

#[test]
fn pcapng_bad_block_length_and_trailer_resynchronise() {
    for (bad, field) in [(57usize, 4usize), (120, 13)] {
        let mut b = pcapng(N);
        let from = b.offsets[bad];
        if field == 4 {
            // Leading length impossible (not a multiple of 4).
            b.bytes[from + 4..from + 8].copy_from_slice(&13u32.to_le_bytes());
        } else {
            // Leading length plausible but wrong: the trailer disagrees.
            b.bytes[from + 4] = b.bytes[from + 4].wrapping_add(8);
        }
        let to = b.offsets[bad + 1];
        let mut lenient = reader(&b.bytes, true).unwrap();
        let got = read_all(&mut lenient).unwrap();
        assert_all_but(&got, &[bad]);
        let text = lenient.skipped().to_string();
        assert_eq!(lenient.skipped().total(), 1, "{text}");
        assert!(
            text.contains(&format!("bytes {from}..{to} abandoned")),
            "{text}"
        );

        let mut strict = reader(&b.bytes, false).unwrap();
        let err = read_all(&mut strict).unwrap_err();
        assert_eq!(err.packet(), Some(bad as u64 + 1));
        assert_eq!(err.offset(), from as u64);
    }
}

#[test]
fn damage_near_the_end_abandons_the_rest_and_says_so() {
    let mut b = classic(N);
    let from = b.offsets[N - 1];
    b.bytes[from + 8..from + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut lenient = reader(&b.bytes, true).unwrap();
    let got = read_all(&mut lenient).unwrap();
    assert_all_but(&got, &[N - 1]);
    let text = lenient.skipped().to_string();
    let end = b.bytes.len();
    assert!(
        text.contains(&format!(
            "no intact record after it: bytes {from}..{end} abandoned ({} bytes)",
            end - from
        )),
        "{text}"
    );
    assert_eq!(lenient.skipped().stopped_at(), Some(from as u64));
}

#[test]
fn truncated_gzip_keeps_what_decompressed() {
    for b in [classic(N), pcapng(N)] {
        let gz = gzip(&b.bytes);
        let cut = &gz[..gz.len() / 2];
        let mut lenient = reader(cut, true).expect("the header decompresses");
        let got = read_all(&mut lenient).expect("lenient reading keeps what decompressed");
        assert!(got.len() > 10 && got.len() < N, "{} packets", got.len());
        for (i, p) in got.iter().enumerate() {
            assert_eq!((p.1, p.2, p.3.clone()), expected(i));
        }
        let skipped = lenient.skipped();
        let text = skipped.to_string();
        assert_eq!(skipped.counts().get("truncated gzip"), Some(&1), "{text}");
        assert!(text.contains("gzip stream ends early after "), "{text}");
        assert!(skipped.stopped_at().is_some(), "{text}");

        let mut strict = reader(cut, false).unwrap();
        let err = read_all(&mut strict).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("t.pcap: "), "{msg}");
        assert!(msg.contains("gzip stream ends early"), "{msg}");
        assert_eq!(err.packet(), Some(got.len() as u64 + 1), "{msg}");
        assert!(err.offset() > 0, "{msg}");
    }
}

#[test]
fn corrupt_gzip_is_an_error_only_in_strict_mode() {
    let b = classic(N);
    let mut gz = gzip(&b.bytes);
    let n = gz.len();
    // Break the CRC of the member: the data all decompress, the check fails at the end.
    gz[n - 8] ^= 0xFF;
    let mut lenient = reader(&gz, true).unwrap();
    let got = read_all(&mut lenient).expect("lenient");
    assert_eq!(got.len(), N);
    assert_eq!(
        lenient.skipped().counts().get("corrupt gzip"),
        Some(&1),
        "{}",
        lenient.skipped()
    );
    let mut strict = reader(&gz, false).unwrap();
    let err = read_all(&mut strict).unwrap_err();
    assert!(err.to_string().contains("gzip stream is corrupt"), "{err}");
}
