//! Mutated and truncated real-format lines never panic the parser, the assembler or the decoders,
//! and every error names an offset inside the line (or the stream).

use std::io::Cursor;

use mamori_audit::decode::{decode_sockaddr, decode_syscall};
use mamori_audit::{parse_line, AuditReader, Error, ReaderOptions};
use proptest::prelude::*;

const LINES: &[&str] = &[
    "type=SYSCALL msg=audit(1796585967.760:2): arch=c000003e syscall=44 success=yes exit=60 a0=3 a1=7ffe6d4e0390 a2=3c a3=0 items=0 ppid=9615 pid=9632 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"auditctl\" exe=\"/usr/sbin/auditctl\" key=(null)\x1dARCH=x86_64 SYSCALL=sendto AUID=\"unset\" UID=\"root\" GID=\"root\"",
    "type=EXECVE msg=audit(1615150974.493:21028): argc=3 a0=\"/bin/echo\" a1_len=8 a1[0]=6261616161616161 a2=2F746D702F6120622E7368",
    "type=PATH msg=audit(1733500000.123:4567): item=0 name=\"/usr/bin/cat\" inode=1234 dev=fe:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\x1dOUID=\"root\" OGID=\"root\"",
    "type=SOCKADDR msg=audit(1796585967.760:6): saddr=02001F907F0000010000000000000000\x1dSADDR={ saddr_fam=inet laddr=127.0.0.1 lport=8080 }",
    "node=web-1 type=USER_LOGIN msg=audit(1700000001.000:10): pid=812 uid=0 auid=1000 ses=4 msg='op=login id=1000 exe=\"/usr/sbin/sshd\" hostname=10.0.0.2 addr=10.0.0.2 terminal=/dev/pts/1 res=success'\x1dUID=\"root\" AUID=\"alice\"",
    "type=AVC msg=audit(1700000002.000:11): avc:  denied  { read write } for  pid=5 comm=\"nginx\" scontext=system_u:system_r:httpd_t:s0 tclass=file permissive=0",
    "type=PROCTITLE msg=audit(1796585967.760:2): proctitle=617564697463746C002D52002F776F726B",
    "type=EOE msg=audit(1796585967.760:2): ",
    "type=LOST msg=audit(1796585967.900:3): lost=12",
];

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop_oneof![
        Just(b'"'),
        Just(b'\''),
        Just(b'='),
        Just(b' '),
        Just(0x1d),
        Just(b'{'),
        Just(b'}'),
        Just(b'('),
        Just(b':'),
        Just(b'.'),
        Just(b'\n'),
        any::<u8>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..20).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), prop::collection::vec(special.clone(), 1..6))
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        (any::<usize>(), special).prop_map(|(a, b)| Mutation::Replace(a, b)),
    ]
}

fn apply(line: &str, muts: &[Mutation]) -> Vec<u8> {
    let mut b = line.as_bytes().to_vec();
    for m in muts {
        let len = b.len().max(1);
        match m {
            Mutation::Truncate(at) => b.truncate(at % len),
            Mutation::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
            Mutation::Insert(at, bytes) => {
                let at = (at % len).min(b.len());
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Replace(at, c) => {
                if !b.is_empty() {
                    let at = at % b.len();
                    b[at] = *c;
                }
            }
        }
    }
    b
}

proptest! {
    // 512 cases by default (bounded for CI); PROPTEST_CASES raises it for a longer hunt.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn mutated_lines_parse_or_fail_with_an_offset_in_the_line(
        i in 0..LINES.len(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = apply(LINES[i], &muts);
        let text = String::from_utf8_lossy(&bytes);
        match parse_line(&text) {
            Ok(p) => {
                // Every accessor works on what parsed.
                let r = &p.record;
                for (k, v) in r.fields() {
                    prop_assert!(r.raw().contains(k) && r.raw().contains(v));
                }
                let _ = r.interpreted().count();
                let _ = r.decoded("name");
                let _ = decode_syscall(r);
                if let Some(s) = r.get("saddr") {
                    let _ = decode_sockaddr(s, true).to_string();
                }
            }
            Err(e) => prop_assert!(e.offset <= text.len(), "{e} for {text:?}"),
        }
    }

    #[test]
    fn mutated_streams_never_panic_and_strict_errors_point_into_the_stream(
        picks in prop::collection::vec((0..LINES.len(), prop::collection::vec(mutation(), 0..3)), 1..40),
        strict in any::<bool>(),
    ) {
        let mut stream = Vec::new();
        for (i, muts) in &picks {
            stream.extend(apply(LINES[*i], muts));
            stream.push(b'\n');
        }
        let opts = ReaderOptions { strict, max_line: 300, ..ReaderOptions::default() };
        let mut r = AuditReader::with_options(Cursor::new(stream.clone()), opts);
        let mut records = 0usize;
        for ev in r.by_ref() {
            match ev {
                Ok(ev) => records += ev.records.len(),
                Err(Error::Malformed { offset, line, .. }) | Err(Error::LineTooLong { offset, line, .. }) => {
                    prop_assert!(strict);
                    prop_assert!(offset <= stream.len() as u64);
                    prop_assert!(line >= 1);
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
        let s = r.stats();
        for m in &s.malformed_examples {
            prop_assert!(m.offset <= stream.len() as u64 && m.line >= 1 && m.column <= 300);
        }
        if !strict {
            // Every record is in exactly one event, minus EOEs (kept with their event or counted
            // as orphans, or absorbed after a PROCTITLE completed their event).
            prop_assert!(records as u64 <= s.records);
            prop_assert_eq!(s.lines, s.records + s.malformed + s.long_lines + blank_lines(&stream));
        }
    }

    #[test]
    fn sockaddr_and_hex_decoders_take_anything(hex in "[0-9A-Fa-fxz]{0,80}", le in any::<bool>()) {
        let _ = decode_sockaddr(&hex, le).to_string();
        let _ = mamori_audit::hex::decode_untrusted(&hex, false);
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

fn blank_lines(stream: &[u8]) -> u64 {
    stream
        .split(|&b| b == b'\n')
        .take(stream.iter().filter(|&&b| b == b'\n').count())
        .filter(|l| l.iter().all(|b| b.is_ascii_whitespace()))
        .count() as u64
}
