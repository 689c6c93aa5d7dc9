//! Hand-built captures: every format variant, every kind of damage.

use super::*;
use proptest::prelude::*;
use std::io::Cursor;

/// An owned copy of a packet, to compare sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pkt {
    number: u64,
    ts_ns: u64,
    linktype: u32,
    orig_len: u32,
    data: Vec<u8>,
}

fn reader(bytes: &[u8], lenient: bool) -> CaptureReader {
    CaptureReader::new(Box::new(Cursor::new(bytes.to_vec())), "t.pcap", lenient)
        .expect("valid header")
}

fn read_all(r: &mut CaptureReader) -> Result<Vec<Pkt>, PcapError> {
    let mut out = Vec::new();
    while let Some(p) = r.next_packet()? {
        out.push(Pkt {
            number: p.number,
            ts_ns: p.ts_ns,
            linktype: p.linktype,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
        });
    }
    Ok(out)
}

fn put32(out: &mut Vec<u8>, big: bool, v: u32) {
    out.extend_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

fn put16(out: &mut Vec<u8>, big: bool, v: u16) {
    out.extend_from_slice(&if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    });
}

/// A classic pcap file: `(seconds, fraction, orig_len, data)` records.
fn classic(big: bool, nanos: bool, linktype: u32, records: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    put32(&mut out, big, if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 });
    put16(&mut out, big, 2);
    put16(&mut out, big, 4);
    put32(&mut out, big, 0);
    put32(&mut out, big, 0);
    put32(&mut out, big, 65535);
    put32(&mut out, big, linktype);
    for (sec, frac, orig, data) in records {
        put32(&mut out, big, *sec);
        put32(&mut out, big, *frac);
        put32(&mut out, big, data.len() as u32);
        put32(&mut out, big, *orig);
        out.extend_from_slice(data);
    }
    out
}

/// Builds pcapng blocks in a chosen byte order (switchable per section).
struct Ng {
    big: bool,
    out: Vec<u8>,
}

impl Ng {
    fn new() -> Self {
        Ng {
            big: false,
            out: Vec::new(),
        }
    }

    fn block(&mut self, btype: u32, body: &[u8]) -> &mut Self {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        put32(&mut self.out, self.big, btype);
        put32(&mut self.out, self.big, len);
        self.out.extend_from_slice(body);
        self.out.extend(std::iter::repeat_n(0, pad));
        put32(&mut self.out, self.big, len);
        self
    }

    fn shb(&mut self, big: bool) -> &mut Self {
        self.big = big;
        let mut body = Vec::new();
        put32(&mut body, big, 0x1A2B_3C4D);
        put16(&mut body, big, 1);
        put16(&mut body, big, 0);
        body.extend_from_slice(&[0xFF; 8]); // section length: unknown
                                            // An option (shb_userappl) to prove options are skipped.
        put16(&mut body, big, 4);
        put16(&mut body, big, 5);
        body.extend_from_slice(b"mamor\0\0\0");
        put32(&mut body, big, 0);
        self.block(pcapng::SHB, &body)
    }

    /// An IDB with raw options `(code, value)`.
    fn idb(&mut self, linktype: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> &mut Self {
        let big = self.big;
        let mut body = Vec::new();
        put16(&mut body, big, linktype);
        put16(&mut body, big, 0);
        put32(&mut body, big, snaplen);
        for (code, val) in opts {
            put16(&mut body, big, *code);
            put16(&mut body, big, val.len() as u16);
            body.extend_from_slice(val);
            body.extend(std::iter::repeat_n(0, (4 - val.len() % 4) % 4));
        }
        if !opts.is_empty() {
            put32(&mut body, big, 0);
        }
        self.block(1, &body)
    }

    fn epb(&mut self, iface: u32, ts: u64, orig: u32, data: &[u8]) -> &mut Self {
        let big = self.big;
        let mut body = Vec::new();
        put32(&mut body, big, iface);
        put32(&mut body, big, (ts >> 32) as u32);
        put32(&mut body, big, ts as u32);
        put32(&mut body, big, data.len() as u32);
        put32(&mut body, big, orig);
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    fn spb(&mut self, orig: u32, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        put32(&mut body, self.big, orig);
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    fn pb(&mut self, iface: u16, ts: u64, orig: u32, data: &[u8]) -> &mut Self {
        let big = self.big;
        let mut body = Vec::new();
        put16(&mut body, big, iface);
        put16(&mut body, big, 0);
        put32(&mut body, big, (ts >> 32) as u32);
        put32(&mut body, big, ts as u32);
        put32(&mut body, big, data.len() as u32);
        put32(&mut body, big, orig);
        body.extend_from_slice(data);
        self.block(2, &body)
    }
}

fn pkt(number: u64, ts_ns: u64, linktype: u32, orig_len: u32, data: &[u8]) -> Pkt {
    Pkt {
        number,
        ts_ns,
        linktype,
        orig_len,
        data: data.to_vec(),
    }
}

#[test]
fn classic_both_byte_orders_and_nanoseconds() {
    let recs: &[(u32, u32, u32, &[u8])] = &[
        (1_615_216_935, 831_389, 60, b"abcdef"),
        (1_615_216_936, 0, 3, b"xyz"),
        (1_615_216_937, 999_999, 0, b""),
    ];
    let want = vec![
        pkt(1, 1_615_216_935_831_389_000, 1, 60, b"abcdef"),
        pkt(2, 1_615_216_936_000_000_000, 1, 3, b"xyz"),
        pkt(3, 1_615_216_937_999_999_000, 1, 0, b""),
    ];
    for big in [false, true] {
        let mut r = reader(&classic(big, false, 1, recs), false);
        assert_eq!(
            r.format(),
            CaptureFormat::Pcap {
                nanos: false,
                big_endian: big
            }
        );
        assert_eq!(r.linktype(), Some(1));
        assert_eq!(read_all(&mut r).unwrap(), want, "big endian: {big}");
        assert_eq!(r.packets_read(), 3);
        assert!(r.skipped().is_empty());
    }
    let mut r = reader(&classic(true, true, 101, &recs[..1]), false);
    let got = read_all(&mut r).unwrap();
    assert_eq!(got, [pkt(1, 1_615_216_935_000_831_389, 101, 60, b"abcdef")]);
}

#[test]
fn classic_linktype_ignores_fcs_bits() {
    let mut bytes = classic(false, false, 1, &[(1, 2, 3, b"abc")]);
    bytes[23] = 0x14; // FCS length present in the upper bits
    let mut r = reader(&bytes, false);
    assert_eq!(read_all(&mut r).unwrap()[0].linktype, 1);
}

#[test]
fn pcapng_sections_of_both_byte_orders() {
    let mut ng = Ng::new();
    ng.shb(false)
        .idb(1, 65535, &[])
        .epb(0, 1_000_001, 64, b"first")
        .shb(true)
        .idb(101, 0, &[(9, &[9])])
        .idb(1, 0, &[])
        .epb(0, 5, 20, b"second")
        .epb(1, 7, 7, b"third!!");
    let mut r = reader(&ng.out, false);
    assert_eq!(r.format(), CaptureFormat::Pcapng);
    assert_eq!(
        read_all(&mut r).unwrap(),
        [
            pkt(1, 1_000_001_000, 1, 64, b"first"),
            pkt(2, 5, 101, 20, b"second"),
            pkt(3, 7_000, 1, 7, b"third!!"),
        ]
    );
    assert_eq!(r.linktype(), Some(1));
}

#[test]
fn pcapng_new_section_forgets_interfaces() {
    let mut ng = Ng::new();
    ng.shb(false)
        .idb(1, 0, &[])
        .idb(1, 0, &[])
        .shb(false)
        .idb(1, 0, &[])
        .epb(1, 0, 1, b"x")
        .epb(0, 0, 1, b"y");
    let mut r = reader(&ng.out, false);
    let err = r.next_packet().unwrap_err();
    assert!(matches!(
        err.kind(),
        PcapErrorKind::UnknownInterface { id: 1, count: 1 }
    ));
    assert_eq!(err.packet(), Some(1));
    assert!(
        err.to_string().ends_with(
            "packet 1 (byte offset 148): interface id 1 out of range (1 interfaces described in \
             this section)"
        ),
        "{err}"
    );
    // The block's framing is intact, so reading goes on with the next one.
    let next = r.next_packet().unwrap().unwrap();
    assert_eq!((next.number, next.data), (2, &b"y"[..]));
}

#[test]
fn pcapng_timestamp_resolution_and_offset() {
    let mut ng = Ng::new();
    ng.shb(false)
        .idb(1, 0, &[(9, &[9])]) // 10^-9
        .idb(1, 0, &[(9, &[0x80 | 10])]) // 2^-10
        .idb(1, 0, &[(9, &[6]), (14, &100i64.to_le_bytes())]) // µs, +100 s
        .idb(1, 0, &[(14, &(-1i64).to_le_bytes())]) // default µs, -1 s
        .epb(0, 1_615_216_935_123_456_789, 1, b"a")
        .epb(1, 3 * 1024 + 512, 1, b"b")
        .epb(2, 1_500_000, 1, b"c")
        .epb(3, 500_000, 1, b"d");
    let ts: Vec<u64> = read_all(&mut reader(&ng.out, false))
        .unwrap()
        .iter()
        .map(|p| p.ts_ns)
        .collect();
    assert_eq!(
        ts,
        [1_615_216_935_123_456_789, 3_500_000_000, 101_500_000_000, 0]
    );
}

#[test]
fn pcapng_simple_and_obsolete_packet_blocks() {
    let mut ng = Ng::new();
    ng.shb(true)
        .idb(113, 4, &[])
        .spb(10, b"abcdef") // snaplen 4 cuts it
        .pb(0, 2_000_000, 9, b"obsolete!")
        .spb(2, b"xy");
    let got = read_all(&mut reader(&ng.out, false)).unwrap();
    // An SPB has no timestamp: it takes the previous packet's (0 before any).
    assert_eq!(
        got,
        [
            pkt(1, 0, 113, 10, b"abcd"),
            pkt(2, 2_000_000_000, 113, 9, b"obsolete!"),
            pkt(3, 2_000_000_000, 113, 2, b"xy"),
        ]
    );
    // Without an interface, an SPB is an error.
    let mut ng = Ng::new();
    ng.shb(false).spb(1, b"z");
    let err = reader(&ng.out, false).next_packet().unwrap_err();
    assert!(matches!(err.kind(), PcapErrorKind::UnknownInterface { .. }));
}

#[test]
fn pcapng_skips_other_blocks() {
    let mut ng = Ng::new();
    ng.shb(false)
        .block(4, b"\x01\x00\x08\x00\x0a\x00\x00\x01host\x00\x00\x00\x00") // NRB
        .idb(1, 0, &[])
        .block(5, &[0; 20]) // ISB
        .block(0x0000_000A, &[7; 13]) // DSB
        .block(0x4000_0BAD, &[1, 2, 3]) // custom
        .block(0x8000_0001, &[]) // local use, empty
        .epb(0, 1, 1, b"p");
    let mut r = reader(&ng.out, false);
    let got = read_all(&mut r).unwrap();
    assert_eq!(got, [pkt(1, 1000, 1, 1, b"p")]);
}

#[test]
fn truncated_final_packet() {
    let recs: &[(u32, u32, u32, &[u8])] =
        &[(1, 0, 4, b"abcd"), (2, 0, 4, b"efgh"), (3, 0, 4, b"ijkl")];
    let full = classic(false, false, 1, recs);
    let mut ng = Ng::new();
    ng.shb(false)
        .idb(1, 0, &[])
        .epb(0, 1, 4, b"abcd")
        .epb(0, 2, 4, b"efgh")
        .epb(0, 3, 4, b"ijkl");
    for (bytes, last_offset) in [(full, 24 + 2 * 20), (ng.out.clone(), ng.out.len() - 36)] {
        // Cut inside the third record's data, and inside its header.
        for cut in [bytes.len() - 2, last_offset + 3] {
            let cut_bytes = &bytes[..cut];
            let mut strict = reader(cut_bytes, false);
            assert_eq!(strict.next_packet().unwrap().unwrap().number, 1);
            assert_eq!(strict.next_packet().unwrap().unwrap().number, 2);
            let err = strict.next_packet().unwrap_err();
            assert_eq!(err.packet(), Some(3));
            assert_eq!(err.offset(), last_offset as u64);
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!(
                    "t.pcap: packet 3 (byte offset {last_offset}): truncated final packet"
                )),
                "{msg}"
            );
            assert!(strict.next_packet().unwrap().is_none());

            let mut lenient = reader(cut_bytes, true);
            assert_eq!(read_all(&mut lenient).unwrap().len(), 2);
            let skipped = lenient.skipped();
            assert_eq!(skipped.counts().get("truncated final packet"), Some(&1));
            assert!(matches!(
                skipped.examples()[0].at,
                crate::SkipAt::Packet { number: 3, .. }
            ));
            assert_eq!(skipped.stopped_at(), None);
        }
    }
}

#[test]
fn corrupt_classic_length_resynchronises() {
    let mut bytes = classic(
        false,
        false,
        1,
        &[(1, 0, 4, b"abcd"), (2, 0, 4, b"efgh"), (3, 0, 4, b"ijkl")],
    );
    bytes[24 + 20 + 8..24 + 20 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut strict = reader(&bytes, false);
    assert!(strict.next_packet().unwrap().is_some());
    let err = strict.next_packet().unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.pcap: packet 2 (byte offset 44): record length 4294967295 exceeds the maximum 262144"
    );
    assert!(strict.next_packet().unwrap().is_none());

    let mut lenient = reader(&bytes, true);
    let got = read_all(&mut lenient).unwrap();
    // The third record is found again; it is numbered by the packets found.
    assert_eq!(
        got.iter()
            .map(|p| (p.number, &p.data[..]))
            .collect::<Vec<_>>(),
        [(1, &b"abcd"[..]), (3, &b"ijkl"[..])]
    );
    assert_eq!(lenient.skipped().counts().get("record too long"), Some(&1));
    assert_eq!(lenient.skipped().stopped_at(), None);
    assert_eq!(
        lenient.abandoned(),
        [Abandoned {
            from: 44,
            to: 64,
            resumed: true,
            next_packet: 3
        }]
    );
    assert_eq!(lenient.abandoned_total(), (1, 20));
    let text = lenient.skipped().to_string();
    assert_eq!(
        text,
        "1 record skipped (record too long: 1); e.g. packet 2 (byte offset 44): record length \
         4294967295 exceeds the maximum 262144; bytes 44..64 abandoned (20 bytes), reading \
         resumed at byte offset 64"
    );

    // Nothing plausible after it: the rest is abandoned and reading stops there.
    let mut bytes = classic(false, false, 1, &[(1, 0, 4, b"abcd"), (2, 0, 4, b"efgh")]);
    bytes[24 + 20 + 8..24 + 20 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut lenient = reader(&bytes, true);
    assert_eq!(read_all(&mut lenient).unwrap().len(), 1);
    assert_eq!(lenient.skipped().stopped_at(), Some(44));
    assert_eq!(
        lenient.abandoned(),
        [Abandoned {
            from: 44,
            to: 64,
            resumed: false,
            next_packet: 3
        }]
    );
    assert!(lenient
        .skipped()
        .to_string()
        .ends_with("no intact record after it: bytes 44..64 abandoned (20 bytes); reading stopped at byte offset 44"));
}

#[test]
fn corrupt_pcapng_blocks() {
    // A packet block whose captured length overruns it: framing intact, so lenient goes on.
    let mut ng = Ng::new();
    ng.shb(false).idb(1, 0, &[]).epb(0, 1, 4, b"good");
    let bad_at = ng.out.len();
    ng.epb(0, 2, 4, b"bad!").epb(0, 3, 4, b"okay");
    ng.out[bad_at + 20..bad_at + 24].copy_from_slice(&100u32.to_le_bytes());
    let mut lenient = reader(&ng.out, true);
    let got = read_all(&mut lenient).unwrap();
    assert_eq!(got.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(
        lenient
            .skipped()
            .counts()
            .get("captured length overruns block"),
        Some(&1)
    );
    assert_eq!(lenient.skipped().stopped_at(), None);
    let mut strict = reader(&ng.out, false);
    assert!(strict.next_packet().unwrap().is_some());
    let err = strict.next_packet().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "t.pcap: packet 2 (byte offset {bad_at}): captured length 100 does not fit in a \
             block of length 36"
        )
    );
    assert_eq!(strict.next_packet().unwrap().unwrap().number, 3);

    // A trailer that disagrees: the framing is lost, lenient resynchronises and says where.
    let mut ng = Ng::new();
    ng.shb(false).idb(1, 0, &[]).epb(0, 1, 4, b"good");
    let bad_at = ng.out.len();
    ng.epb(0, 2, 4, b"bad!").epb(0, 3, 4, b"okay");
    ng.out[bad_at + 32] ^= 0x10;
    let mut lenient = reader(&ng.out, true);
    let got = read_all(&mut lenient).unwrap();
    assert_eq!(got.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(
        lenient.skipped().counts().get("block trailer mismatch"),
        Some(&1)
    );
    assert_eq!(lenient.skipped().stopped_at(), None);
    let to = bad_at as u64 + 36;
    assert_eq!(
        lenient.abandoned(),
        [Abandoned {
            from: bad_at as u64,
            to,
            resumed: true,
            next_packet: 3
        }]
    );

    // An impossible block length.
    let mut ng = Ng::new();
    ng.shb(false).idb(1, 0, &[]);
    let bad_at = ng.out.len();
    ng.epb(0, 1, 4, b"abcd");
    ng.out[bad_at + 4..bad_at + 8].copy_from_slice(&13u32.to_le_bytes());
    let err = reader(&ng.out, false).next_packet().unwrap_err();
    assert!(matches!(
        err.kind(),
        PcapErrorKind::BadBlockLength { len: 13, .. }
    ));
    assert_eq!(err.offset(), bad_at as u64);

    // A section header with a broken byte-order magic, after the first.
    let mut ng = Ng::new();
    ng.shb(false).idb(1, 0, &[]).epb(0, 1, 4, b"abcd");
    let bad_at = ng.out.len();
    ng.shb(false);
    ng.out[bad_at + 8] = 0;
    let mut r = reader(&ng.out, false);
    assert!(r.next_packet().unwrap().is_some());
    let err = r.next_packet().unwrap_err();
    assert_eq!(err.location(), Location::Block { next_packet: 2 });
    assert!(err.to_string().starts_with(&format!(
        "t.pcap: block at byte offset {bad_at} (before packet 2): "
    )));
}

#[test]
fn wrong_magic_and_empty_files() {
    let open = |b: &[u8]| {
        CaptureReader::new(Box::new(Cursor::new(b.to_vec())), "x.bin", false)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        open(b"GIF89a........................"),
        "x.bin: not a pcap or pcapng file (magic 0x47494638)"
    );
    assert_eq!(open(b""), "x.bin: empty file: not a pcap or pcapng file");
    assert_eq!(
        open(b"\xd4\xc3"),
        "x.bin: not a pcap or pcapng file (only 2 bytes)"
    );
    assert_eq!(
        open(b"\xd4\xc3\xb2\xa1\x02\x00"),
        "x.bin: truncated pcap file header (6 of 24 bytes)"
    );
    let missing = CaptureReader::open(Path::new("/nonexistent/cap.pcap"), false).unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/cap.pcap: cannot read: "),
        "{missing}"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_input() {
    let recs: &[(u32, u32, u32, &[u8])] = &[(1, 5, 4, b"abcd"), (2, 6, 2, b"ef")];
    let plain = classic(false, false, 1, recs);
    let want = read_all(&mut reader(&plain, false)).unwrap();
    let gz = gzip(&plain);
    // By magic, from any reader.
    assert_eq!(read_all(&mut reader(&gz, false)).unwrap(), want);
    // By name or magic, from a file.
    let dir = std::env::temp_dir().join(format!("mamori-pcap-gz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["cap.pcap.gz", "cap.pcap"] {
        let path = dir.join(name);
        std::fs::write(&path, &gz).unwrap();
        let mut r = CaptureReader::open(&path, false).unwrap();
        assert_eq!(read_all(&mut r).unwrap(), want, "{name}");
        assert_eq!(r.source_name(), path.display().to_string());
    }
    // pcapng inside gzip too.
    let mut ng = Ng::new();
    ng.shb(true).idb(1, 0, &[]).epb(0, 1, 1, b"n");
    let got = read_all(&mut reader(&gzip(&ng.out), false)).unwrap();
    assert_eq!(got, [pkt(1, 1000, 1, 1, b"n")]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Hands out at most `chunk` bytes per read.
struct Dribble(Cursor<Vec<u8>>, usize);

impl Read for Dribble {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.1.min(out.len());
        self.0.read(&mut out[..n])
    }
}

#[test]
fn records_straddling_reads_and_large_packets() {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let mut recs: Vec<(u32, u32, u32, &[u8])> = Vec::new();
    for i in 0..30u32 {
        recs.push((i, i, 1500, if i % 7 == 3 { &big } else { b"0123456789abc" }));
    }
    let bytes = classic(false, false, 1, &recs);
    let want = read_all(&mut reader(&bytes, false)).unwrap();
    assert_eq!(want.len(), 30);
    assert_eq!(want[3].data, big);
    for chunk in [1, 7, 4096] {
        let src = Dribble(Cursor::new(bytes.clone()), chunk);
        let mut r = CaptureReader::new(Box::new(src), "d.pcap", false).unwrap();
        assert_eq!(read_all(&mut r).unwrap(), want, "chunk {chunk}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever follows a valid header, reading never panics and always ends.
    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..400), ng in any::<bool>(),
                    lenient in any::<bool>()) {
        let mut bytes = if ng {
            let mut n = Ng::new();
            n.shb(false).idb(1, 0, &[]);
            n.out
        } else {
            classic(false, false, 1, &[])
        };
        bytes.extend_from_slice(&body);
        let mut r = reader(&bytes, lenient);
        for _ in 0..1000 {
            match r.next_packet() {
                Ok(None) => break,
                Ok(Some(p)) => prop_assert!(p.data.len() <= bytes.len()),
                Err(_) => {}
            }
        }
        prop_assert!(r.next_packet().is_ok() || !lenient);
    }
}
