//! The store and offline verification against real stores with real damage: each test builds a
//! store from sealed records, edits the stored bytes the way an attacker or a crash would, and
//! checks that verification names exactly that.

use std::fs;
use std::path::{Path, PathBuf};

use mamori_seal::{Header, Key, Kind, Sealer, HEADER_LEN};
use mamori_ship::store::{list_segments, segment_name, HEAD_FILE};
use mamori_ship::{
    list_devices, verify, verify_each, DeviceStore, Finding, FindingKind, RecordReader, Report,
    StoreError, StoreOptions, VerifyOptions,
};

const N: u64 = 300;
const DEV: &str = "gw-01";

fn key() -> Key {
    Key::from_bytes([42; 32])
}

fn opts() -> StoreOptions {
    StoreOptions {
        rotate_bytes: 4096,
        keep_segments: 0,
        fsync: false,
    }
}

/// `n` records of mixed kinds and lengths, sealed in one chain.
fn sealed(n: u64) -> Vec<(Header, Vec<u8>)> {
    let mut s = Sealer::new(key());
    (1..=n)
        .map(|i| {
            let kind = match i % 10 {
                0 => Kind::Alert,
                5 => Kind::Heartbeat,
                7 => Kind::Incident,
                _ => Kind::Audit,
            };
            let p = format!(
                "type=SYSCALL msg=audit(1700000000.{i:03}:{i}): syscall=59 exe=\"/bin/sh\" {}",
                "x".repeat((i % 37) as usize)
            )
            .into_bytes();
            (s.seal(kind, 1_700_000_000_000 + i as i64, &p).unwrap(), p)
        })
        .collect()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
    recs: Vec<(Header, Vec<u8>)>,
}

/// A committed store of `N` records in several segments (committing every 25).
fn store() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let recs = sealed(N);
    let mut st = DeviceStore::open(&root, DEV, opts()).unwrap();
    st.enroll(&key()).unwrap();
    for (i, (h, p)) in recs.iter().enumerate() {
        st.append(h, p).unwrap();
        if i % 25 == 24 {
            st.commit().unwrap();
        }
    }
    st.commit().unwrap();
    let dir = st.dir().to_path_buf();
    Fixture {
        _tmp: tmp,
        root,
        dir,
        recs,
    }
}

/// (file, offset, length) of the stored record `seq`.
fn locate(dir: &Path, seq: u64) -> (PathBuf, u64, usize) {
    RecordReader::device(dir)
        .unwrap()
        .map(|r| r.unwrap())
        .find(|p| p.header.seq == seq)
        .map(|p| (p.file.clone(), p.offset, HEADER_LEN + p.payload.len()))
        .unwrap()
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn encoded(h: &Header, p: &[u8]) -> Vec<u8> {
    let mut b = h.encode(p.len()).to_vec();
    b.extend_from_slice(p);
    b
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = fs::read(path).unwrap();
    f(&mut b);
    fs::write(path, b).unwrap();
}

fn check(dir: &Path) -> Report {
    verify(&[dir.to_path_buf()], &VerifyOptions::default()).unwrap()
}

fn faults(r: &Report) -> Vec<&Finding> {
    r.faults().collect()
}

/// Asserts exactly one fault, and returns it.
fn only_fault(r: &Report) -> &Finding {
    let f = faults(r);
    assert_eq!(f.len(), 1, "{}", r.render_text());
    f[0]
}

#[test]
fn a_clean_store_verifies_clean() {
    let fx = store();
    let segs = list_segments(&fx.dir).unwrap();
    assert!(segs.len() >= 5, "{} segments", segs.len());
    let r = check(&fx.dir);
    assert!(r.clean(), "{}", r.render_text());
    assert!(r.findings.is_empty(), "{}", r.render_text());
    assert_eq!((r.records, r.authentic), (N, N));
    assert_eq!(
        (r.start_seq, r.last_seq, r.head_seq),
        (Some(1), Some(N), Some(N))
    );
    assert_eq!(r.kinds.alert, 30);
    assert_eq!(r.kinds.heartbeat, 30);
    assert_eq!(r.kinds.incident, 30);
    assert_eq!(r.kinds.audit, 210);
    assert_eq!(r.device.as_deref(), Some(DEV));
    assert!(r.render_text().contains("CLEAN"));
    // JSON for --json
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["records"], N);
}

#[test]
fn on_record_sees_every_record_in_order() {
    let fx = store();
    let mut seen = Vec::new();
    let r = verify_each(
        std::slice::from_ref(&fx.dir),
        &VerifyOptions::default(),
        |p, v| {
            assert!(v.authentic && v.checked.clean());
            seen.push(p.header.seq);
        },
    )
    .unwrap();
    assert!(r.clean());
    assert_eq!(seen, (1..=N).collect::<Vec<_>>());
}

#[test]
fn a_flipped_payload_byte_is_tampering_at_its_seq_and_offset() {
    let fx = store();
    let (file, off, _) = locate(&fx.dir, 123);
    edit(&file, |b| b[off as usize + HEADER_LEN + 3] ^= 0x20);
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(f.kind, FindingKind::Tampered);
    assert_eq!(f.seq, Some(123));
    assert_eq!(f.file.as_deref(), Some(name(&file).as_str()));
    assert_eq!(f.offset, Some(off));
    assert_eq!(r.authentic, N - 1);
    let text = f.to_string();
    assert!(
        text.starts_with(&format!("seq 123 ({} @ {off}): tampered — ", name(&file))),
        "{text}"
    );
}

#[test]
fn a_flipped_header_byte_is_tampering() {
    let fx = store();
    let (file, off, _) = locate(&fx.dir, 77);
    edit(&file, |b| b[off as usize + 17] ^= 1); // time_ns, covered by the tag
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(
        (&f.kind, f.seq, f.offset),
        (&FindingKind::Tampered, Some(77), Some(off))
    );
}

#[test]
fn a_dropped_record_is_a_gap_where_it_was() {
    let fx = store();
    let (file, off, len) = locate(&fx.dir, 150);
    edit(&file, |b| {
        b.drain(off as usize..off as usize + len);
    });
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(
        f.kind,
        FindingKind::Gap {
            first: 150,
            last: 150
        }
    );
    assert_eq!(f.seq, Some(150));
    // the hole: where 151 now starts (150 was not the last of its segment)
    let (file151, off151, _) = locate(&fx.dir, 151);
    assert_eq!(f.file.as_deref(), Some(name(&file151).as_str()));
    assert_eq!(f.offset, Some(off151));
    assert_eq!(r.records, N - 1);
}

#[test]
fn two_swapped_records_are_reported_as_reordered_not_gap_and_behind() {
    let fx = store();
    // pick two neighbours in one segment
    let (seq, file, off_a, len_a, off_b, len_b) = (40..N)
        .find_map(|s| {
            let (fa, oa, la) = locate(&fx.dir, s);
            let (fb, ob, lb) = locate(&fx.dir, s + 1);
            (fa == fb).then_some((s, fa, oa, la, ob, lb))
        })
        .unwrap();
    assert_eq!(off_a + len_a as u64, off_b);
    edit(&file, |b| {
        let (a, bb) = (off_a as usize, off_b as usize);
        let first = b[a..a + len_a].to_vec();
        let second = b[bb..bb + len_b].to_vec();
        b.splice(a..bb + len_b, second.into_iter().chain(first));
    });
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(f.seq, Some(seq));
    match &f.kind {
        FindingKind::Reordered {
            after,
            after_file,
            after_offset,
        } => {
            assert_eq!(*after, seq + 1);
            assert_eq!(after_file.as_deref(), Some(name(&file).as_str()));
            assert_eq!(*after_offset, Some(off_a)); // seq+1 now sits where seq was
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(f.offset, Some(off_a + len_b as u64));
    assert!(f.detail.contains("swapped"), "{f}");
    assert_eq!(r.records, N);
}

#[test]
fn a_cut_tail_is_truncation_against_head_json() {
    let fx = store();
    let (last, _) = list_segments(&fx.dir)
        .unwrap()
        .pop()
        .map(|(s, p)| (p, s))
        .unwrap();
    let (file, off, _) = locate(&fx.dir, N - 2);
    assert_eq!(file, last, "the last three records share the last segment");
    edit(&file, |b| b.truncate(off as usize));
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(
        f.kind,
        FindingKind::Truncated {
            first: N - 2,
            last: N
        }
    );
    assert_eq!(f.seq, Some(N - 2));
    assert_eq!(f.file.as_deref(), Some(name(&file).as_str()));
    assert_eq!(f.offset, Some(off));
}

#[test]
fn a_replayed_record_is_a_duplicate() {
    let fx = store();
    let (h, p) = &fx.recs[41]; // seq 42
    let (last_seq, last) = list_segments(&fx.dir).unwrap().pop().unwrap();
    assert!(last_seq > 42);
    let end = fs::metadata(&last).unwrap().len();
    edit(&last, |b| b.extend(encoded(h, p)));
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(f.kind, FindingKind::Duplicate);
    assert_eq!(f.seq, Some(42));
    assert_eq!(f.file.as_deref(), Some(name(&last).as_str()));
    assert_eq!(f.offset, Some(end));
    let (orig, orig_off, _) = locate(&fx.dir, 42);
    assert!(
        f.detail.contains(&format!("{} @ {orig_off}", name(&orig))),
        "{f}"
    );
}

#[test]
fn a_second_authentic_record_for_a_position_is_a_replay_conflict() {
    // the device's key state was restored from a backup: it seals seq 60 again
    let fx = store();
    let mut s = Sealer::new(key());
    for (h, p) in &fx.recs[..59] {
        let again = s.seal(h.kind, h.time_ns, p).unwrap();
        assert_eq!(&again, h);
    }
    let fork = s.seal(Kind::Audit, 1, b"another history").unwrap();
    assert_eq!(fork.seq, 60);
    let (_, last) = list_segments(&fx.dir).unwrap().pop().unwrap();
    let end = fs::metadata(&last).unwrap().len();
    edit(&last, |b| b.extend(encoded(&fork, b"another history")));
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(
        (&f.kind, f.seq, f.offset),
        (&FindingKind::ReplayConflict, Some(60), Some(end))
    );
}

#[test]
fn a_record_forged_with_a_later_key_names_that_key() {
    let fx = store();
    // the attacker took the device after record N: it holds the key of N + 1
    let mut s = Sealer::new(key());
    for (h, p) in &fx.recs {
        s.seal(h.kind, h.time_ns, p).unwrap();
    }
    let stolen = s.state();
    assert_eq!(stolen.next_seq, N + 1);
    let mut forged = fx.recs[99].0.clone(); // seq 100
    let payload = b"type=SYSCALL msg=audit(1700000000.100:100): nothing to see".to_vec();
    forged.tag = mamori_seal::tag(&stolen.key, &forged, &payload);
    let (file, off, len) = locate(&fx.dir, 100);
    edit(&file, |b| {
        b.splice(off as usize..off as usize + len, encoded(&forged, &payload));
    });
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(f.kind, FindingKind::LaterKey { key_of: N + 1 });
    assert_eq!((f.seq, f.offset), (Some(100), Some(off)));
    assert_eq!(f.file.as_deref(), Some(name(&file).as_str()));
}

#[test]
fn a_deleted_middle_segment_is_a_gap_of_exactly_its_records() {
    let fx = store();
    let segs = list_segments(&fx.dir).unwrap();
    let (first, path) = segs[2].clone();
    let (next, next_path) = segs[3].clone();
    fs::remove_file(&path).unwrap();
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(
        f.kind,
        FindingKind::Gap {
            first,
            last: next - 1
        }
    );
    assert_eq!(f.seq, Some(first));
    assert_eq!(f.file.as_deref(), Some(name(&next_path).as_str()));
    assert_eq!(f.offset, Some(0));
    assert!(f.detail.contains("whole segment"), "{f}");
}

#[test]
fn garbage_between_records_is_damage_and_the_records_after_it_verify() {
    let fx = store();
    let (file, off, _) = locate(&fx.dir, 200);
    // includes an "MR" that is not a record, so resync has to try more than once
    let junk = b"\x00\x01garbage MR\x09 not a record \xff\xfe".to_vec();
    edit(&file, |b| {
        b.splice(off as usize..off as usize, junk.clone());
    });
    let mut after = Vec::new();
    let r = verify_each(
        std::slice::from_ref(&fx.dir),
        &VerifyOptions::default(),
        |p, v| {
            if p.header.seq >= 200 {
                assert!(v.authentic && v.checked.clean(), "seq {}", p.header.seq);
                after.push(p.header.seq);
            }
        },
    )
    .unwrap();
    let f = only_fault(&r);
    assert_eq!(
        f.kind,
        FindingKind::Damaged {
            bytes: junk.len() as u64
        }
    );
    assert_eq!(f.seq, None);
    assert_eq!(
        (f.file.as_deref(), f.offset),
        (Some(name(&file).as_str()), Some(off))
    );
    assert_eq!(r.records, N);
    assert_eq!(after, (200..=N).collect::<Vec<_>>());
}

#[test]
fn a_rewritten_tail_that_verifies_is_caught_by_head_json() {
    // a fork of the last record: authentic and linked, only head.json knows it is not the one
    // the collector acknowledged
    let fx = store();
    let mut s = Sealer::new(key());
    for (h, p) in &fx.recs[..(N - 1) as usize] {
        s.seal(h.kind, h.time_ns, p).unwrap();
    }
    let other = s.seal(Kind::Audit, 5, b"a different ending").unwrap();
    let (file, off, len) = locate(&fx.dir, N);
    edit(&file, |b| {
        b.splice(
            off as usize..off as usize + len,
            encoded(&other, b"a different ending"),
        );
    });
    let r = check(&fx.dir);
    let f = only_fault(&r);
    assert_eq!(
        (&f.kind, f.seq, f.offset),
        (&FindingKind::TailRewritten, Some(N), Some(off))
    );
}

#[test]
fn a_torn_tail_is_cut_back_to_head_on_open() {
    let fx = store();
    let (_, last) = list_segments(&fx.dir).unwrap().pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    // the collector was killed half-way through writing a record
    let mut s = Sealer::new(key());
    for (h, p) in &fx.recs {
        s.seal(h.kind, h.time_ns, p).unwrap();
    }
    let next = s.seal(Kind::Audit, 9, b"half written").unwrap();
    let bytes = encoded(&next, b"half written");
    edit(&last, |b| b.extend_from_slice(&bytes[..50]));
    let r = check(&fx.dir);
    assert_eq!(
        only_fault(&r).kind,
        FindingKind::Damaged { bytes: 50 },
        "verify sees the torn bytes"
    );

    let mut st = DeviceStore::open(&fx.root, DEV, opts()).unwrap();
    let rec = st.recovered().unwrap();
    assert_eq!((rec.bytes, rec.records), (50, 0));
    assert_eq!(fs::metadata(&last).unwrap().len(), len);
    // the device resends it, and the chain goes on clean
    st.append(&next, b"half written").unwrap();
    st.commit().unwrap();
    drop(st);
    let r = check(&fx.dir);
    assert!(r.clean(), "{}", r.render_text());
    assert_eq!(r.last_seq, Some(N + 1));
    let findings = fs::read_to_string(fx.dir.join("findings.jsonl")).unwrap();
    assert!(findings.contains("\"kind\":\"recovered\""), "{findings}");
}

#[test]
fn unacknowledged_records_are_cut_on_open_including_new_segments() {
    let fx = store();
    let before = list_segments(&fx.dir).unwrap();
    let mut s = Sealer::new(key());
    for (h, p) in &fx.recs {
        s.seal(h.kind, h.time_ns, p).unwrap();
    }
    let mut st = DeviceStore::open(&fx.root, DEV, opts()).unwrap();
    assert_eq!(st.recovered(), None);
    let extra: Vec<_> = (0..60)
        .map(|i| {
            let p = format!("unacked {i} {}", "y".repeat(100)).into_bytes();
            (s.seal(Kind::Audit, i, &p).unwrap(), p)
        })
        .collect();
    for (h, p) in &extra {
        st.append(h, p).unwrap();
    }
    drop(st); // killed before commit; buffers reached the disk
    assert!(list_segments(&fx.dir).unwrap().len() > before.len());
    let r = check(&fx.dir);
    assert!(
        r.clean(),
        "beyond the head is information: {}",
        r.render_text()
    );
    assert!(r.findings.iter().any(|f| f.kind
        == FindingKind::BeyondHead {
            first: N + 1,
            last: N + 60
        }));

    let st = DeviceStore::open(&fx.root, DEV, opts()).unwrap();
    assert_eq!(st.recovered().map(|r| r.records), Some(60));
    assert_eq!(list_segments(&fx.dir).unwrap(), before);
    assert_eq!(st.head().unwrap().last_seq, N);
    drop(st);
    let r = check(&fx.dir);
    assert!(r.findings.is_empty(), "{}", r.render_text());
}

#[test]
fn segments_rotate_and_are_named_by_their_first_seq() {
    let fx = store();
    let segs = list_segments(&fx.dir).unwrap();
    let mut expected_next = 1;
    for (i, (seq, path)) in segs.iter().enumerate() {
        assert_eq!(name(path), segment_name(*seq));
        assert_eq!(name(path).len(), "segment-".len() + 20 + ".mrl".len());
        let recs: Vec<_> = RecordReader::files(vec![path.clone()])
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(recs[0].header.seq, *seq);
        assert_eq!(*seq, expected_next);
        expected_next = recs.last().unwrap().header.seq + 1;
        let size = fs::metadata(path).unwrap().len();
        let last_len = (HEADER_LEN + recs.last().unwrap().payload.len()) as u64;
        if i + 1 < segs.len() {
            // it exceeded the limit only with its last record
            assert!(size >= 4096 && size - last_len < 4096, "{size}");
        }
    }
    assert_eq!(expected_next, N + 1);
}

#[test]
fn enrolling_another_key_is_refused_and_the_same_key_is_fine() {
    let fx = store();
    let mut st = DeviceStore::open(&fx.root, DEV, opts()).unwrap();
    st.enroll(&key()).unwrap();
    let err = st.enroll(&Key::from_bytes([1; 32])).unwrap_err();
    assert!(matches!(err, StoreError::KeyMismatch { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("chain.json") && msg.contains("move the old chain away"),
        "{msg}"
    );
    assert_eq!(st.first_key(), Some(&key()));
    // and appending without enrolment is refused
    let mut fresh = DeviceStore::open(&fx.root, "gw-02", opts()).unwrap();
    let (h, p) = &fx.recs[0];
    assert!(matches!(
        fresh.append(h, p),
        Err(StoreError::NotEnrolled { .. })
    ));
    assert_eq!(list_devices(&fx.root).unwrap(), vec![DEV, "gw-02"]);
}

#[test]
fn reopening_continues_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let recs = sealed(120);
    for part in recs.chunks(40) {
        let mut st = DeviceStore::open(tmp.path(), DEV, opts()).unwrap();
        st.enroll(&key()).unwrap();
        if let Some(h) = st.head() {
            assert_eq!(h.last_seq + 1, part[0].0.seq);
            assert_eq!(h.last_tag, recs[h.last_seq as usize - 1].0.tag);
        }
        for (h, p) in part {
            st.append(h, p).unwrap();
        }
        // a replay is refused by the store (it belongs in reject)
        let (h0, p0) = &recs[0];
        assert!(matches!(
            st.append(h0, p0),
            Err(StoreError::OutOfOrder { seq: 1, .. })
        ));
        st.reject(h0, p0).unwrap();
        st.commit().unwrap();
        assert_eq!(st.recovered(), None);
    }
    let dir = tmp.path().join(DEV);
    let r = check(&dir);
    assert!(r.findings.is_empty(), "{}", r.render_text());
    assert_eq!((r.records, r.head_seq), (120, Some(120)));
    let head: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join(HEAD_FILE)).unwrap()).unwrap();
    assert_eq!(head["records"], 120);
    assert_eq!(head["last_tag"].as_str().unwrap().len(), 64);
    // rejected records stay readable, outside the chain
    let rejected: Vec<_> = RecordReader::files(vec![dir.join("rejected.mrl")])
        .map(|r| r.unwrap().header.seq)
        .collect();
    assert_eq!(rejected, vec![1, 1, 1]);
}

#[cfg(unix)]
#[test]
fn chain_json_is_private_and_complete() {
    use std::os::unix::fs::PermissionsExt;
    let fx = store();
    let path = fx.dir.join("chain.json");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let chain: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(chain["device"], DEV);
    assert_eq!(chain["first_seq"], 1);
    assert_eq!(chain["first_key"], "2a".repeat(32));
    assert_eq!(chain["fingerprint"].as_str().unwrap().len(), 64);
    assert!(chain["enrolled"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn device_names_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["", "..", "a/b", "x y", &"a".repeat(65)] {
        assert!(matches!(
            DeviceStore::open(tmp.path(), bad, opts()),
            Err(StoreError::BadDevice(_))
        ));
    }
    DeviceStore::open(tmp.path(), "Gw_1.lab-2", opts()).unwrap();
}

#[test]
fn recorded_retention_is_information_and_unrecorded_loss_is_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let recs = sealed(N);
    let mut st = DeviceStore::open(
        tmp.path(),
        DEV,
        StoreOptions {
            keep_segments: 3,
            ..opts()
        },
    )
    .unwrap();
    st.enroll(&key()).unwrap();
    for (h, p) in &recs {
        st.append(h, p).unwrap();
        st.commit().unwrap();
    }
    drop(st);
    let dir = tmp.path().join(DEV);
    let segs = list_segments(&dir).unwrap();
    assert_eq!(segs.len(), 3);
    let oldest = segs[0].0;
    let r = check(&dir);
    assert!(r.clean(), "{}", r.render_text());
    assert_eq!(r.findings.len(), 1, "{}", r.render_text());
    assert_eq!(
        r.findings[0].kind,
        FindingKind::Retention {
            first: 1,
            last: oldest - 1
        }
    );
    assert_eq!(r.start_seq, Some(oldest));
    assert!(
        fs::read_to_string(dir.join("retention.jsonl"))
            .unwrap()
            .lines()
            .count()
            > 0
    );

    // the oldest kept segment removed by hand: not covered by retention, so a gap
    fs::remove_file(&segs[0].1).unwrap();
    let r = check(&dir);
    let f = only_fault(&r);
    assert_eq!(
        f.kind,
        FindingKind::Gap {
            first: oldest,
            last: segs[1].0 - 1
        }
    );
}

#[test]
fn explicit_segment_files_use_the_chain_json_beside_them() {
    let fx = store();
    let segs: Vec<PathBuf> = list_segments(&fx.dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let r = verify(&segs, &VerifyOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{}", r.render_text());
    // a later part only: the start is not a fault, the head still vouches for the end
    let r = verify(&segs[2..], &VerifyOptions::default()).unwrap();
    assert!(r.clean(), "{}", r.render_text());
    assert!(matches!(
        r.findings[0].kind,
        FindingKind::NotGiven { first: 1, .. }
    ));
    // without the key there is nothing to verify against
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join(name(&segs[0]));
    fs::copy(&segs[0], &copy).unwrap();
    assert!(matches!(
        verify(std::slice::from_ref(&copy), &VerifyOptions::default()),
        Err(mamori_ship::VerifyError::NoKey { .. })
    ));
    let r = verify(
        &[copy],
        &VerifyOptions {
            key: Some(fx.dir.join("chain.json")),
            head: None,
        },
    )
    .unwrap();
    assert!(
        r.findings.is_empty() && r.head_seq.is_none(),
        "{}",
        r.render_text()
    );
}

#[test]
fn findings_serialize_flat_and_read_well() {
    let f = Finding::new(
        Some(7),
        FindingKind::Gap { first: 7, last: 9 },
        "records 7..=9 are missing",
    )
    .at("segment-00000000000000000010.mrl", 0);
    let j = serde_json::to_value(&f).unwrap();
    assert_eq!(j["kind"], "gap");
    assert_eq!(
        (j["first"].as_u64(), j["last"].as_u64()),
        (Some(7), Some(9))
    );
    let back: Finding = serde_json::from_value(j).unwrap();
    assert_eq!(back, f);
    assert_eq!(
        f.to_string(),
        "seq 7 (segment-00000000000000000010.mrl @ 0): gap — records 7..=9 are missing"
    );
    let j = serde_json::to_value(Finding::new(
        Some(1),
        FindingKind::LaterKey { key_of: 9 },
        "",
    ))
    .unwrap();
    assert_eq!(
        (j["kind"].as_str(), j["key_of"].as_u64()),
        (Some("later_key"), Some(9))
    );
}

#[test]
fn the_reader_resyncs_across_its_buffer_in_a_large_segment() {
    // one 2 MB segment, 200 KB of damage without any magic, and a record cut short at the end
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Sealer::new(key());
    let recs: Vec<_> = (0..2000u32)
        .map(|i| {
            let p = vec![b'a' + (i % 26) as u8; 1000];
            (s.seal(Kind::Audit, i.into(), &p).unwrap(), p)
        })
        .collect();
    let path = tmp.path().join(segment_name(1));
    let mut bytes = Vec::new();
    let mut damage_at = 0;
    for (i, (h, p)) in recs.iter().enumerate() {
        if i == 1000 {
            damage_at = bytes.len();
            bytes.extend(vec![b'z'; 200_000]);
        }
        bytes.extend(encoded(h, p));
    }
    let full = bytes.len();
    bytes.extend_from_slice(&encoded(&recs[0].0, &recs[0].1)[..500]);
    fs::write(&path, &bytes).unwrap();
    let mut seqs = Vec::new();
    let mut damage = Vec::new();
    for item in RecordReader::files(vec![path]) {
        match item {
            Ok(p) => seqs.push(p.header.seq),
            Err(mamori_ship::ReadError::Damaged(d)) => {
                damage.push((d.offset, d.length, d.incomplete))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(seqs, (1..=2000).collect::<Vec<_>>());
    assert_eq!(
        damage,
        vec![(damage_at as u64, 200_000, false), (full as u64, 500, true)]
    );
}

/// One flipped bit in a stored record's sequence number (its top bit: position 2^63 + 77) is
/// tampering at that record; the chain does not jump there (which would take 2^63 hashes and
/// then call every genuine record after it a replay): 77 is a gap and 78.. verify.
#[test]
fn a_flipped_sequence_bit_is_tampering_and_the_chain_goes_on() {
    let fx = store();
    let (file, off, _) = locate(&fx.dir, 77);
    edit(&file, |b| b[off as usize + 15] ^= 0x80); // top byte of the little-endian seq
    let r = check(&fx.dir);
    let kinds: Vec<(&FindingKind, Option<u64>)> =
        faults(&r).iter().map(|f| (&f.kind, f.seq)).collect();
    assert!(
        kinds.contains(&(&FindingKind::Tampered, Some((1 << 63) + 77))),
        "{}",
        r.render_text()
    );
    assert!(
        !kinds
            .iter()
            .any(|(k, _)| matches!(k, FindingKind::Behind { .. })),
        "genuine records after it were called replays: {}",
        r.render_text()
    );
    assert!(kinds.len() <= 2, "{}", r.render_text());
}

/// The collector, handed a batch in which one record claims a far position, stores the genuine
/// records after it and acknowledges only as far as the chain really reached.
#[test]
fn the_collector_does_not_jump_to_a_tampered_far_position() {
    let tmp = tempfile::tempdir().unwrap();
    let collector =
        mamori_ship::collector::Collector::new(mamori_ship::collector::CollectorConfig {
            listen: String::new(),
            store: tmp.path().to_path_buf(),
            store_options: opts(),
            tls: None,
            idle_timeout: std::time::Duration::from_secs(5),
            remember: 1024,
        })
        .unwrap();
    collector.enroll(DEV, &key()).unwrap();
    let mut recs = sealed(20);
    recs[9].0.seq = 1 << 50; // record 10 claims position 2^50
    let last_is_far = {
        let mut batch = Vec::new();
        for (h, p) in &recs[..10] {
            batch.extend(encoded(h, p));
        }
        collector.ingest(DEV, &batch).unwrap()
    };
    assert_eq!(last_is_far, 9, "acknowledged past the genuine records");
    let mut batch = Vec::new();
    for (h, p) in &recs[10..] {
        batch.extend(encoded(h, p));
    }
    assert_eq!(collector.ingest(DEV, &batch).unwrap(), 20);
    let stored = RecordReader::device(&tmp.path().join(DEV))
        .unwrap()
        .map(|r| r.unwrap().header.seq)
        .collect::<Vec<_>>();
    let want: Vec<u64> = (1..=20).filter(|&s| s != 10).collect();
    assert_eq!(stored, want);
}
