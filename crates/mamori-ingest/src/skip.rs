//! What lenient reading left out: counts per reason and the first few examples, for the lines of
//! system-call inputs ([`crate::EventReader::skipped`]) and the records of packet captures
//! ([`crate::pcap::CaptureReader::skipped`]) alike.

use std::collections::BTreeMap;
use std::fmt;

/// How many skipped items [`Skipped`] keeps as examples.
pub const SKIP_EXAMPLES: usize = 5;

/// What a reader reads one at a time, and so what it skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipUnit {
    /// Lines of a text input.
    Line,
    /// Records (packets and blocks) of a capture.
    Record,
}

impl SkipUnit {
    fn count(self, n: u64) -> &'static str {
        match (self, n) {
            (SkipUnit::Line, 1) => "line",
            (SkipUnit::Line, _) => "lines",
            (SkipUnit::Record, 1) => "record",
            (SkipUnit::Record, _) => "records",
        }
    }
}

/// Where a skipped item was in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipAt {
    /// A line of a text input (1-based).
    Line(u64),
    /// A packet record of a capture.
    Packet {
        /// 1-based packet number.
        number: u64,
        /// Byte offset of the record.
        offset: u64,
    },
    /// A capture block that is not a packet.
    Block {
        /// Byte offset of the block.
        offset: u64,
        /// The number the next packet gets.
        next_packet: u64,
    },
}

impl fmt::Display for SkipAt {
    /// `line 3`, `packet 2 (byte offset 44)`, `block at byte offset 44 (before packet 2)`: the
    /// wording of the readers' errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SkipAt::Line(n) => write!(f, "line {n}"),
            SkipAt::Packet { number, offset } => {
                write!(f, "packet {number} (byte offset {offset})")
            }
            SkipAt::Block {
                offset,
                next_packet,
            } => write!(
                f,
                "block at byte offset {offset} (before packet {next_packet})"
            ),
        }
    }
}

/// One skipped item, kept as an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedItem {
    /// Where it was.
    pub at: SkipAt,
    /// Category (the key of [`Skipped::counts`]).
    pub reason: &'static str,
    /// What was wrong.
    pub message: String,
}

/// Items skipped in lenient mode: counts per reason, the first [`SKIP_EXAMPLES`] examples, and
/// where reading had to stop, if it did.
///
/// Its `Display` is the one-line report the command line prints:
///
/// ```
/// use mamori_ingest::{EventReader, Format};
///
/// let text = "{\"syscall\":\"read\"}\n{\"syscall\": 12}\n{\"syscall\":\"close\"}\n";
/// let mut reader = EventReader::new(text.as_bytes(), "t.jsonl", Format::Jsonl, true);
/// assert_eq!(reader.by_ref().count(), 2);
/// let skipped = reader.skipped();
/// assert_eq!(skipped.total(), 1);
/// assert_eq!(skipped.examples()[0].at, mamori_ingest::SkipAt::Line(2));
/// assert_eq!(skipped.counts().get("invalid event"), Some(&1));
/// assert!(skipped.to_string().starts_with("1 line skipped (invalid event: 1); e.g. line 2: "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    unit: SkipUnit,
    counts: BTreeMap<&'static str, u64>,
    examples: Vec<SkippedItem>,
    stopped_at: Option<u64>,
}

impl Skipped {
    /// Nothing skipped yet, of `unit`s.
    pub fn new(unit: SkipUnit) -> Self {
        Skipped {
            unit,
            counts: BTreeMap::new(),
            examples: Vec::new(),
            stopped_at: None,
        }
    }

    /// What is counted.
    pub fn unit(&self) -> SkipUnit {
        self.unit
    }

    /// Skipped items per reason.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// The first few skipped items, in input order.
    pub fn examples(&self) -> &[SkippedItem] {
        &self.examples
    }

    /// Total skipped items.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Whether nothing was skipped.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Byte offset of a damaged record after which nothing could be read (the next record could
    /// not be located), if reading stopped early. A truncated final record is not counted here.
    pub fn stopped_at(&self) -> Option<u64> {
        self.stopped_at
    }

    /// Counts one skipped item, keeping it as an example while there are few.
    pub(crate) fn record(&mut self, at: SkipAt, reason: &'static str, message: impl Into<String>) {
        *self.counts.entry(reason).or_insert(0) += 1;
        if self.examples.len() < SKIP_EXAMPLES {
            self.examples.push(SkippedItem {
                at,
                reason,
                message: message.into(),
            });
        }
    }

    /// Notes that reading stopped at byte `offset`.
    pub(crate) fn stop_at(&mut self, offset: u64) {
        self.stopped_at = Some(offset);
    }
}

impl fmt::Display for Skipped {
    /// `N lines skipped (reason: n, …); e.g. line L: message; …`, or for a capture
    /// `N records skipped (…); e.g. packet P (byte offset O): message; …; reading stopped at byte
    /// offset O`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        write!(f, "{total} {} skipped", self.unit.count(total))?;
        if !self.is_empty() {
            let counts: Vec<String> = self
                .counts
                .iter()
                .map(|(reason, n)| format!("{reason}: {n}"))
                .collect();
            write!(f, " ({})", counts.join(", "))?;
            for (i, ex) in self.examples.iter().enumerate() {
                let sep = if i == 0 { "; e.g. " } else { "; " };
                write!(f, "{sep}{}: {}", ex.at, ex.message)?;
            }
        }
        if let Some(off) = self.stopped_at {
            write!(f, "; reading stopped at byte offset {off}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_keeps_the_first_examples() {
        let mut s = Skipped::new(SkipUnit::Line);
        assert_eq!(s.to_string(), "0 lines skipped");
        for line in 1..=7 {
            let reason = if line % 2 == 0 { "even" } else { "odd" };
            s.record(SkipAt::Line(line), reason, format!("bad {line}"));
        }
        assert_eq!(s.total(), 7);
        assert_eq!(s.counts().get("odd"), Some(&4));
        assert_eq!(s.examples().len(), SKIP_EXAMPLES);
        assert_eq!(s.examples()[4].at, SkipAt::Line(5));
        assert_eq!(
            s.to_string(),
            "7 lines skipped (even: 3, odd: 4); e.g. line 1: bad 1; line 2: bad 2; line 3: bad 3; \
             line 4: bad 4; line 5: bad 5"
        );
    }

    #[test]
    fn capture_records_say_where_and_where_reading_stopped() {
        let mut s = Skipped::new(SkipUnit::Record);
        s.record(
            SkipAt::Block {
                offset: 28,
                next_packet: 1,
            },
            "bad block",
            "bad",
        );
        assert_eq!(
            s.to_string(),
            "1 record skipped (bad block: 1); e.g. block at byte offset 28 (before packet 1): bad"
        );
        s.record(
            SkipAt::Packet {
                number: 2,
                offset: 44,
            },
            "record too long",
            "too long",
        );
        s.stop_at(44);
        assert!(s.to_string().starts_with("2 records skipped"));
        assert!(s
            .to_string()
            .ends_with("; packet 2 (byte offset 44): too long; reading stopped at byte offset 44"));
    }
}
