//! Attack labels for traffic: who attacked whom, and when.
//!
//! A labels file has one attack per line, `FROM TO ATTACKER VICTIM [NAME]` separated by tabs or
//! spaces, `#` comments. FROM/TO are Unix seconds (fractions allowed) or integer nanoseconds;
//! ATTACKER is an IP address; VICTIM an IP address or `*` (a scan of many hosts). A packet is an
//! attack packet when its time is inside [FROM, TO] and it goes between the attacker and the
//! victim, in either direction (replies are part of the attack's traffic). Labels name hosts and
//! absolute times, so several files can be given at once and apply to any capture.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use crate::packet::PacketMeta;

/// One labelled attack.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Attack {
    /// Start (ns since the Unix epoch), inclusive.
    pub from_ns: u64,
    /// End (ns), inclusive.
    pub to_ns: u64,
    /// The attacking host.
    pub attacker: IpAddr,
    /// The attacked host; `None` for any host (scans).
    pub victim: Option<IpAddr>,
    /// Name from the file (e.g. `syn-flood`).
    pub name: String,
}

/// All labelled attacks.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    attacks: Vec<Attack>,
}

/// A labels file that cannot be read.
#[derive(Debug)]
pub struct LabelsError(String);

impl fmt::Display for LabelsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LabelsError {}

impl Labels {
    /// Reads a labels file and adds its attacks.
    pub fn add_file(&mut self, path: &Path) -> Result<(), LabelsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LabelsError(format!("{}: {e}", path.display())))?;
        self.add_text(&text, &path.display().to_string())
    }

    /// Parses labels text; `source` names it in errors.
    pub fn add_text(&mut self, text: &str, source: &str) -> Result<(), LabelsError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |what: String| LabelsError(format!("{source}:{}: {what}", i + 1));
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 4 {
                return Err(err(format!(
                    "expected `FROM TO ATTACKER VICTIM [NAME]`, got {} fields",
                    fields.len()
                )));
            }
            let from_ns = parse_time(fields[0]).map_err(&err)?;
            let to_ns = parse_time(fields[1]).map_err(&err)?;
            if to_ns < from_ns {
                return Err(err(format!(
                    "TO {} is before FROM {}",
                    fields[1], fields[0]
                )));
            }
            let attacker: IpAddr = fields[2]
                .parse()
                .map_err(|_| err(format!("ATTACKER `{}` is not an IP address", fields[2])))?;
            let victim = match fields[3] {
                "*" => None,
                v => Some(
                    v.parse()
                        .map_err(|_| err(format!("VICTIM `{v}` is not an IP address or `*`")))?,
                ),
            };
            self.attacks.push(Attack {
                from_ns,
                to_ns,
                attacker,
                victim,
                name: fields[4..].join(" "),
            });
        }
        Ok(())
    }

    /// The labelled attacks.
    pub fn attacks(&self) -> &[Attack] {
        &self.attacks
    }

    /// True when no attack is labelled.
    pub fn is_empty(&self) -> bool {
        self.attacks.is_empty()
    }

    /// Index of the attack this packet belongs to, if any.
    #[inline]
    pub fn attack_of(&self, p: &PacketMeta) -> Option<usize> {
        if self.attacks.is_empty() {
            return None;
        }
        let (src, dst) = (p.src_ip?, p.dst_ip?);
        self.attacks.iter().position(|a| {
            p.ts_ns >= a.from_ns
                && p.ts_ns <= a.to_ns
                && ((src == a.attacker && a.victim.is_none_or(|v| v == dst))
                    || (dst == a.attacker && a.victim.is_none_or(|v| v == src)))
        })
    }
}

fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(ns) = text.parse::<u64>() {
        // Integer seconds are far smaller than any nanosecond time since 1971.
        return Ok(if ns < 100_000_000_000 {
            ns * 1_000_000_000
        } else {
            ns
        });
    }
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a time (Unix seconds or ns)"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{text}` is not a time (Unix seconds or ns)"));
    }
    Ok((secs * 1e9).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ts_s: f64, src: &str, dst: &str) -> PacketMeta {
        crate::features::tests::tcp((ts_s * 1e9) as u64, src, dst, 0x02, 60)
    }

    #[test]
    fn packets_between_attacker_and_victim_in_time_are_attacks() {
        let mut l = Labels::default();
        l.add_text(
            "# from to attacker victim name\n\
             100.5\t110\t10.0.0.3\t10.0.0.2\tsyn-flood\n\
             200 210 10.0.0.3 * scan\n",
            "t",
        )
        .unwrap();
        assert_eq!(l.attacks().len(), 2);
        assert_eq!(l.attack_of(&packet(101.0, "10.0.0.3", "10.0.0.2")), Some(0));
        assert_eq!(l.attack_of(&packet(101.0, "10.0.0.2", "10.0.0.3")), Some(0));
        assert_eq!(l.attack_of(&packet(101.0, "10.0.0.3", "10.0.0.9")), None);
        assert_eq!(l.attack_of(&packet(100.0, "10.0.0.3", "10.0.0.2")), None);
        assert_eq!(l.attack_of(&packet(205.0, "10.0.0.9", "10.0.0.3")), Some(1));
        assert_eq!(l.attack_of(&packet(205.0, "10.0.0.8", "10.0.0.9")), None);
    }

    #[test]
    fn errors_name_the_line() {
        let mut l = Labels::default();
        let e = l.add_text("1 2 10.0.0.1 *\n5 4 10.0.0.1 *\n", "f.tsv");
        assert_eq!(e.unwrap_err().to_string(), "f.tsv:2: TO 4 is before FROM 5");
        let e = l.add_text("1 2 host *\n", "f.tsv");
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("f.tsv:1: ATTACKER `host`"));
        let e = l.add_text("1 2 10.0.0.1\n", "f.tsv");
        assert!(e.unwrap_err().to_string().contains("3 fields"));
    }
}
