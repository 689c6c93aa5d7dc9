//! Attack labels for traffic: who attacked whom, and when.
//!
//! A labels file has one attack per line, `FROM TO ATTACKER VICTIM [NAME]` separated by tabs or
//! spaces, `#` comments, parsed by [`mamori_ingest::labels`] (which every line here must match).
//! FROM/TO are Unix seconds (fractions allowed) or integer nanoseconds; ATTACKER is an IP address;
//! VICTIM an IP address or `*` (a scan of many hosts). A packet is an attack packet when its time
//! is inside [FROM, TO] and it goes between the attacker and the victim, in either direction
//! (replies are part of the attack's traffic). Labels name hosts and absolute times, so several
//! files can be given at once and apply to any capture.
//!
//! Labelling is a pass of its own beside feature extraction, which never sees the labels:
//! [`LabelledExtractor`] looks each packet up ([`Labels::attack_of`]) and hands the verdict to a
//! label-free [`Extractor`], whose rows tally it without reading it ([`RowLabel`]). A row is an
//! attack row when it holds at least one attack packet.

use std::path::Path;

use crate::features::{Extractor, FeatureConfig, FeatureRow, RowSink, RowTally};
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

/// A row's ground truth, tallied from the labels of its packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowLabel {
    /// Packets of the row that the labels mark as attack traffic.
    pub attack_packets: u64,
    /// Index (into [`Labels::attacks`]) of the first attack seen in the row.
    pub attack: Option<usize>,
}

impl RowLabel {
    /// Labelled as attack: at least one attack packet.
    pub fn is_attack(&self) -> bool {
        self.attack_packets > 0
    }
}

/// A packet's mark is [`Labels::attack_of`].
impl RowTally for RowLabel {
    type Mark = Option<usize>;

    #[inline]
    fn add(&mut self, attack: Option<usize>) {
        if attack.is_some() {
            self.attack_packets += 1;
            self.attack = self.attack.or(attack);
        }
    }

    #[inline]
    fn merge(&mut self, part: &RowLabel) {
        self.attack_packets += part.attack_packets;
        self.attack = self.attack.or(part.attack);
    }
}

/// A feature row and its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledRow {
    /// The row, as extracted.
    pub row: FeatureRow,
    /// What the labels say of its packets.
    pub label: RowLabel,
}

impl LabelledRow {
    /// Labelled as attack: at least one attack packet.
    pub fn is_attack(&self) -> bool {
        self.label.is_attack()
    }
}

impl RowSink<RowLabel> for Vec<LabelledRow> {
    #[inline]
    fn put(&mut self, row: FeatureRow, label: RowLabel) {
        self.push(LabelledRow { row, label });
    }
}

/// The labelling pass: looks every packet up in the labels and feeds it, with the verdict, to a
/// label-free [`Extractor`]; rows come out with their [`RowLabel`]. With no labels every row is
/// normal and the features are those of a plain [`Extractor`].
pub struct LabelledExtractor {
    extractor: Extractor<RowLabel>,
    labels: Labels,
    attack_packets: u64,
    /// Packets matched per attack.
    matched: Vec<u64>,
}

impl LabelledExtractor {
    /// A new extractor with `config`, labelling with `labels` (which may be empty).
    pub fn new(config: &FeatureConfig, labels: Labels) -> Self {
        LabelledExtractor {
            extractor: Extractor::new(config),
            matched: vec![0; labels.attacks.len()],
            labels,
            attack_packets: 0,
        }
    }

    /// Labels one packet and adds it; completed rows are appended to `out`.
    #[inline]
    pub fn push(&mut self, p: &PacketMeta, out: &mut Vec<LabelledRow>) {
        let attack = self.labels.attack_of(p);
        self.attack_packets += u64::from(attack.is_some());
        if let Some(i) = attack {
            if let Some(n) = self.matched.get_mut(i) {
                *n += 1;
            }
        }
        self.extractor.push(p, attack, out);
    }

    /// Ends the stream: the last rows are appended to `out`.
    pub fn finish(&mut self, out: &mut Vec<LabelledRow>) {
        self.extractor.finish(out);
    }

    /// Packets seen, and of those labelled as attack.
    pub fn packet_counts(&self) -> (u64, u64) {
        (self.extractor.packets(), self.attack_packets)
    }

    /// What the extractor's memory caps cost so far.
    pub fn evictions(&self) -> crate::features::Evictions {
        self.extractor.evictions()
    }

    /// Packets matched so far by each attack (indexes as in [`Labels::attacks`]): a 0 is a label
    /// that matched nothing, whose hosts or times are wrong for these captures.
    pub fn matched_packets(&self) -> &[u64] {
        &self.matched
    }

    /// The labels in use.
    pub fn labels(&self) -> &Labels {
        &self.labels
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

    /// The labelling pass changes no feature: its rows are the plain extractor's, in the same
    /// order, and only the labels say which are attacks.
    #[test]
    fn labelling_adds_ground_truth_and_changes_no_feature() {
        use crate::features::{FeatureKind, FeatureRow};
        let mut l = Labels::default();
        l.add_text("100 110 10.0.0.3 10.0.0.2 syn-flood\n", "t")
            .unwrap();
        let packets: Vec<PacketMeta> = (0..40)
            .map(|i| {
                let t = 95.0 + f64::from(i) * 0.5;
                let (src, dst) = if i % 3 == 0 {
                    ("10.0.0.3", "10.0.0.2")
                } else {
                    ("10.0.0.4", "10.0.0.9")
                };
                packet(t, src, dst)
            })
            .collect();
        for kind in [
            FeatureKind::Device,
            FeatureKind::Flow,
            FeatureKind::Interval,
        ] {
            let config = FeatureConfig {
                kind,
                ..FeatureConfig::default()
            };
            let mut plain: Extractor = Extractor::new(&config);
            let mut labelled = LabelledExtractor::new(&config, l.clone());
            let (mut a, mut b): (Vec<FeatureRow>, Vec<LabelledRow>) = (Vec::new(), Vec::new());
            for p in &packets {
                plain.push(p, (), &mut a);
                labelled.push(p, &mut b);
            }
            plain.finish(&mut a);
            labelled.finish(&mut b);
            let rows: Vec<FeatureRow> = b.iter().map(|r| r.row.clone()).collect();
            assert_eq!(a, rows, "{kind:?}");
            assert!(b.iter().any(LabelledRow::is_attack), "{kind:?}");
            assert!(b.iter().any(|r| !r.is_attack()), "{kind:?}");
            // Packets 10..30 are in [100, 110]; every third is between attacker and victim.
            assert_eq!(labelled.packet_counts(), (40, 7), "{kind:?}");
            let attack_rows = b.iter().filter(|r| r.is_attack());
            assert!(attack_rows.clone().all(|r| r.label.attack == Some(0)));
            // The victim never sends, so it has no device row: each attack packet is counted
            // once, in the attacker's window, flow or interval.
            let counted: u64 = attack_rows.map(|r| r.label.attack_packets).sum();
            assert_eq!(counted, 7, "{kind:?}");
        }
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
