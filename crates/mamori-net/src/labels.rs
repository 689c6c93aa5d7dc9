//! Attack labels for traffic: who attacked whom, and when.
//!
//! A labels file has one attack per line, `FROM TO ATTACKER VICTIM [NAME]` separated by tabs or
//! spaces, `#` comments, parsed by [`mamori_ingest::labels`] (which every line here must match).
//! FROM/TO are Unix seconds (fractions allowed) or integer nanoseconds; ATTACKER is an IP address;
//! VICTIM an IP address or `*` (a scan of many hosts). A packet is an attack packet when its time
//! is inside [FROM, TO] and it goes between the attacker and the victim, in either direction
//! (replies are part of the attack's traffic). Labels name hosts and absolute times, so several
//! files can be given at once and apply to any capture.

use std::path::Path;

use mamori_ingest::labels::{parse_labels, read_labels, Expect};
pub use mamori_ingest::labels::{LabelsError, Step};

use crate::packet::PacketMeta;

/// One labelled attack: a [`Step`] that names its hosts (`attacker` is always set).
pub type Attack = Step;

/// All labelled attacks.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    attacks: Vec<Attack>,
}

impl Labels {
    /// Reads a labels file and adds its attacks.
    pub fn add_file(&mut self, path: &Path) -> Result<(), LabelsError> {
        self.attacks.extend(read_labels(path, Expect::Hosts)?);
        Ok(())
    }

    /// Parses labels text and adds its attacks (none when a line is wrong); `source` names it in
    /// errors.
    pub fn add_text(&mut self, text: &str, source: &str) -> Result<(), LabelsError> {
        self.attacks
            .extend(parse_labels(text, source, Expect::Hosts)?);
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
            // Parsed with `Expect::Hosts`: every attack names its attacker.
            let Some(attacker) = a.attacker else {
                return false;
            };
            // Label times are never negative.
            p.ts_ns >= a.from_ns as u64
                && p.ts_ns <= a.to_ns as u64
                && ((src == attacker && a.victim.is_none_or(|v| v == dst))
                    || (dst == attacker && a.victim.is_none_or(|v| v == src)))
        })
    }
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

    #[test]
    fn every_line_must_name_hosts_and_a_bad_file_adds_nothing() {
        let mut l = Labels::default();
        let e = l.add_text("100 110 10.0.0.3 * scan\n120 130 edit-config\n", "f.tsv");
        assert_eq!(
            e.unwrap_err().to_string(),
            "f.tsv:2: expected `FROM TO ATTACKER VICTIM [NAME]`, got 3 fields"
        );
        assert!(l.is_empty());
        let e = l.add_text("nan 110 10.0.0.3 *\n", "f.tsv");
        assert_eq!(
            e.unwrap_err().to_string(),
            "f.tsv:1: `nan` is not a finite time"
        );
        // Integer nanoseconds and IPv6 hosts.
        l.add_text("100500000000 101000000000 fd00::3 fd00::2 ns\n", "f.tsv")
            .unwrap();
        assert_eq!(l.attack_of(&packet(100.75, "fd00::2", "fd00::3")), Some(0));
        assert_eq!(l.attack_of(&packet(100.25, "fd00::2", "fd00::3")), None);
    }
}
