//! Hex as audit writes it: untrusted strings (`name`, `comm`, `exe`, `cwd`, `proctitle`, EXECVE
//! arguments, `key`, …) that contain a space, a quote or a control byte are logged as unquoted
//! upper-case hex instead of a quoted literal, and `saddr` is always hex.

use std::borrow::Cow;

/// The value of one hex digit, `0xff` for anything else.
const fn digit_table() -> [u8; 256] {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
}
static DIGIT: [u8; 256] = digit_table();

/// Decodes an even-length hex string; `None` when it is not one.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 2);
    for pair in b.chunks_exact(2) {
        let (hi, lo) = (DIGIT[pair[0] as usize], DIGIT[pair[1] as usize]);
        if (hi | lo) & 0xf0 != 0 {
            return None;
        }
        out.push(hi << 4 | lo);
    }
    Some(out)
}

/// Whether `s` is non-empty, even-length hex.
pub fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(|c| DIGIT[c as usize] != 0xff)
}

/// Parses hex digits (an optional `0x` is not audit's style and is refused) into a u64.
pub fn parse_hex_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for c in s.bytes() {
        let d = DIGIT[c as usize];
        if d == 0xff {
            return None;
        }
        v = v << 4 | u64::from(d);
    }
    Some(v)
}

/// An untrusted-string value as text: quoted → literal; `(null)`/`(none)` → `None`; unquoted
/// hex → decoded (invalid UTF-8 replaced); anything else (`?`, numbers) as written.
pub fn decode_untrusted(text: &str, quoted: bool) -> Option<Cow<'_, str>> {
    if quoted {
        return Some(Cow::Borrowed(text));
    }
    if text == "(null)" || text == "(none)" {
        return None;
    }
    match decode_hex(text) {
        Some(bytes) if !text.is_empty() => Some(match String::from_utf8(bytes) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }),
        _ => Some(Cow::Borrowed(text)),
    }
}

/// Upper-case hex of `bytes` (for raw sockaddr kept as written elsewhere and for tests).
pub fn encode_hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(D[usize::from(b >> 4)] as char);
        s.push(D[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        assert_eq!(decode_hex("636174").as_deref(), Some(&b"cat"[..]));
        assert_eq!(decode_hex("").as_deref(), Some(&b""[..]));
        assert_eq!(decode_hex("6361a"), None, "odd length");
        assert_eq!(decode_hex("63zz"), None);
        assert_eq!(encode_hex(b"a b\0"), "61206200");
        assert!(is_hex("DEADbeef"));
        assert!(!is_hex("") && !is_hex("abc") && !is_hex("xy"));
        assert_eq!(parse_hex_u64("fffffffffffff878"), Some(0xfffffffffffff878));
        assert_eq!(
            parse_hex_u64("10000000000000000"),
            None,
            "17 digits overflow"
        );
        assert_eq!(parse_hex_u64(""), None);
    }

    #[test]
    fn untrusted_strings() {
        assert_eq!(decode_untrusted("cat", true).as_deref(), Some("cat"));
        // `cafe` is valid hex, but quoted means literal.
        assert_eq!(decode_untrusted("cafe", true).as_deref(), Some("cafe"));
        assert_eq!(
            decode_untrusted("2F746D702F6120622E7368", false).as_deref(),
            Some("/tmp/a b.sh")
        );
        assert_eq!(decode_untrusted("(null)", false), None);
        assert_eq!(decode_untrusted("(none)", false), None);
        assert_eq!(decode_untrusted("?", false).as_deref(), Some("?"));
        assert_eq!(
            decode_untrusted("123", false).as_deref(),
            Some("123"),
            "odd: not hex"
        );
        assert_eq!(
            decode_untrusted("FF41", false).as_deref(),
            Some("\u{fffd}A")
        );
    }
}
