//! Pieces shared by the sysdig-based formats (Falco `evt.args`, LID-DS `.sc`).

/// Splits sysdig's `key=value key=value …` argument text into pairs.
///
/// A new pair starts at a space-separated token of the form `key=` (key: letters, digits, `_`,
/// `.`); other tokens belong to the previous value (values may contain spaces). A `data=` value
/// always runs to the end of the text, since buffers may contain anything.
pub(crate) fn split_kv(text: &str) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, usize, usize)> = Vec::new(); // key, value start, value end
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let tok_start = i;
        while i < b.len() && b[i] != b' ' {
            i += 1;
        }
        let tok = &text[tok_start..i];
        let key_len = tok
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
            .count();
        let starts_pair = key_len > 0 && tok.as_bytes().get(key_len) == Some(&b'=');
        if starts_pair {
            let key = &tok[..key_len];
            let vstart = tok_start + key_len + 1;
            if key == "data" {
                let end = text.trim_end_matches([' ', '\n', '\r']).len().max(vstart);
                pairs.push((key, vstart, end));
                break;
            }
            pairs.push((key, vstart, i));
        } else if let Some(last) = pairs.last_mut() {
            last.2 = i;
        } else {
            // Text before any key: keep it as an unnamed value.
            pairs.push(("", tok_start, i));
        }
    }
    pairs
        .into_iter()
        .map(|(k, s, e)| (k, &text[s..e]))
        .collect()
}

/// `13(<f>/dev/urandom)` → `("13", "/dev/urandom")`; `5(<4t>1.2.3.4:5->6.7.8.9:80)` →
/// `("5", "1.2.3.4:5->6.7.8.9:80")`. `None` for values without a descriptor annotation.
pub(crate) fn fd_value(v: &str) -> Option<(&str, &str)> {
    let open = v.find("(<")?;
    let num = &v[..open];
    let digits = num.strip_prefix('-').unwrap_or(num);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !v.ends_with(')') {
        return None;
    }
    let inner = &v[open + 2..v.len() - 1];
    let tag_end = inner.find('>')?;
    Some((num, &inner[tag_end + 1..]))
}

/// A sysdig return value: `0`, `-11(EAGAIN)`, `2(<f>/x)`, or hexadecimal without `0x`
/// (`7F5246360000`, as sysdig prints addresses).
pub(crate) fn parse_res(v: &str) -> Option<i64> {
    let head = v.split('(').next().unwrap_or(v).trim();
    if let Ok(n) = head.parse::<i64>() {
        return Some(n);
    }
    if let Some(h) = head.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok().map(|n| n as i64);
    }
    if !head.is_empty() && head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return u64::from_str_radix(head, 16).ok().map(|n| n as i64);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_pairs() {
        assert_eq!(
            split_kv("fd=3(<f>/var/log/motion.log) size=64 data=GET / HTTP/1.1 x=y "),
            [
                ("fd", "3(<f>/var/log/motion.log)"),
                ("size", "64"),
                ("data", "GET / HTTP/1.1 x=y")
            ]
        );
        assert_eq!(
            split_kv("name=/a b c flags=1"),
            [("name", "/a b c"), ("flags", "1")]
        );
        assert_eq!(split_kv("  "), []);
        assert_eq!(split_kv("data="), [("data", "")]);
        assert_eq!(split_kv("junk k=v"), [("", "junk"), ("k", "v")]);
    }

    #[test]
    fn fd_values_and_res() {
        assert_eq!(
            fd_value("13(<f>/dev/urandom)"),
            Some(("13", "/dev/urandom"))
        );
        assert_eq!(
            fd_value("12(<4t>192.168.240.3:50140->192.168.240.21:443)"),
            Some(("12", "192.168.240.3:50140->192.168.240.21:443"))
        );
        assert_eq!(fd_value("4294967295"), None);
        assert_eq!(fd_value("2902771(apache2)"), None);
        assert_eq!(parse_res("-11(EAGAIN)"), Some(-11));
        assert_eq!(parse_res("7F5246360000"), Some(0x7F5246360000));
        assert_eq!(parse_res("2(<f>/var/log/apache2/error.log)"), Some(2));
        assert_eq!(parse_res("SUCCESS"), None);
    }
}
