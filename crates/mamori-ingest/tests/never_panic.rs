//! Property tests: parsers never panic on arbitrary input, and strace's escaping round-trips.

use mamori_ingest::{split_args, unescape_c_string, EventReader, Format};
use proptest::prelude::*;

/// Escapes bytes the way strace prints a string argument's contents.
fn strace_escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            // strace pads octal to 3 digits when a digit follows; always padding is also valid.
            _ if b % 2 == 0 => s.push_str(&format!("\\{b:03o}")),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Pieces strace lines are made of, to reach deep parser paths more often than random text.
fn strace_ish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("1234  ".to_string()),
        Just("12:34:56.789012 ".to_string()),
        Just("1700000000.5 ".to_string()),
        Just("[pid 9] ".to_string()),
        Just("write(".to_string()),
        Just("<... read resumed>".to_string()),
        Just(" <unfinished ...>".to_string()),
        Just("+++ exited with 0 +++".to_string()),
        Just("3</a<b>>".to_string()),
        Just("\"x\\\"y\\".to_string()),
        Just("\"...".to_string()),
        Just("/* c */".to_string()),
        Just(", ".to_string()),
        Just(") = ".to_string()),
        Just("-1 ENOENT (x)".to_string()),
        Just("0x7f".to_string()),
        Just("<TCP:[1->2]>".to_string()),
        "[\\[\\]{}()<>\",=?\\\\ 0-9a-z-]{0,6}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn lenient_skips(format: Format, text: &str) -> u64 {
    let mut reader = EventReader::new(text.as_bytes(), "p", format, true);
    reader.by_ref().for_each(|r| assert!(r.is_ok()));
    reader.skipped().total()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn split_args_never_panics(s in any::<String>()) {
        let split = split_args(&s);
        if let Some(end) = split.end {
            prop_assert!(end <= s.len());
        }
    }

    #[test]
    fn split_args_structured_never_panics(s in strace_ish()) {
        let _ = split_args(&s);
    }

    #[test]
    fn unescape_never_panics(s in any::<String>()) {
        let _ = unescape_c_string(&s);
    }

    #[test]
    fn unescape_inverts_strace_escaping(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let escaped = strace_escape(&bytes);
        prop_assert_eq!(unescape_c_string(&escaped), String::from_utf8_lossy(&bytes).into_owned());
    }

    #[test]
    fn quoted_args_split_back(args in prop::collection::vec("[ -~]{0,12}", 1..6)) {
        let printed: Vec<String> = args
            .iter()
            .map(|a| format!("\"{}\"", strace_escape(a.as_bytes())))
            .collect();
        let line = format!("1 write({}) = 0", printed.join(", "));
        let mut reader = EventReader::new(line.as_bytes(), "p", Format::Strace, false);
        let event = reader.next().unwrap().unwrap();
        prop_assert_eq!(event.args, args);
    }

    #[test]
    fn line_parsers_never_panic(lines in prop::collection::vec(strace_ish(), 0..8)) {
        let text = lines.join("\n");
        let physical_lines = text.split('\n').count() as u64;
        for format in Format::ALL {
            let skipped = lenient_skips(format, &text);
            prop_assert!(skipped <= physical_lines);
            // Strict mode: at most one error per line, and reading always ends.
            let errors = EventReader::new(text.as_bytes(), "p", format, false)
                .filter(Result::is_err)
                .count() as u64;
            prop_assert_eq!(errors, skipped);
        }
    }
}
