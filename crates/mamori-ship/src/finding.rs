//! What verification found wrong (or worth knowing) about a device's chain, by sequence number
//! and byte position, in one shape for live verification (`findings.jsonl`), offline
//! verification (the report) and the CLI.

use std::fmt;

use mamori_seal::{Checked, Fault, Header};
use serde::{Deserialize, Serialize};

/// One thing verification noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The sequence number it is about (for a gap or a truncation, the first missing one);
    /// None for damaged bytes, which have no trustworthy number.
    pub seq: Option<u64>,
    /// What it is; flattened so the JSON reads `{"seq":5,"kind":"tampered",...}`.
    #[serde(flatten)]
    pub kind: FindingKind,
    /// The file it was found in (a segment's name inside a device directory, else the path).
    pub file: Option<String>,
    /// Byte offset in `file` (for a gap: where the missing records would have been).
    pub offset: Option<u64>,
    /// A human sentence on what it means.
    pub detail: String,
}

/// The kinds of finding. Faults make a report unclean; the rest ([`FindingKind::is_fault`]
/// false) are information an operator should still see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FindingKind {
    /// Records `first..=last` are missing.
    Gap {
        /// First missing sequence number.
        first: u64,
        /// Last missing sequence number.
        last: u64,
    },
    /// The record's tag does not match its content: altered.
    Tampered,
    /// The record was sealed with the key of a later position: forged by someone who took the
    /// device at (or before) `key_of`.
    LaterKey {
        /// The position whose key seals it.
        key_of: u64,
    },
    /// Authentic, but it does not link to the record before it.
    BrokenLink,
    /// A record behind the chain that is neither a known duplicate nor a late arrival.
    Behind {
        /// The position expected at that point.
        expected: u64,
    },
    /// An exact copy of a record already seen (a replay).
    Duplicate,
    /// A second authentic record for a position already filled with a different one: the
    /// device sealed two histories (its key state was restored or cloned).
    ReplayConflict,
    /// A record that arrived out of order: it belongs before `after`, which came first.
    Reordered {
        /// The record it was stored after (the one that overtook it).
        after: u64,
        /// Where `after` is stored.
        after_file: Option<String>,
        /// Byte offset of `after`.
        after_offset: Option<u64>,
    },
    /// Bytes that are not a record; reading resumed at the next record.
    Damaged {
        /// How many bytes were skipped.
        bytes: u64,
    },
    /// head.json says records `first..=last` were stored, the files end before them.
    Truncated {
        /// First missing sequence number.
        first: u64,
        /// Last one head.json vouches for.
        last: u64,
    },
    /// The record at head.json's last position is not the one head.json recorded.
    TailRewritten,
    /// There is no head.json, so a cut or rewritten tail cannot be detected.
    HeadMissing,
    /// Information: records `first..=last` were removed by the store's recorded retention.
    Retention {
        /// First removed.
        first: u64,
        /// Last removed.
        last: u64,
    },
    /// Information: the inputs start after the chain's first record (only some segments were
    /// given).
    NotGiven {
        /// First record not given.
        first: u64,
        /// Last record not given.
        last: u64,
    },
    /// Information: authentic records after head.json's last one (written but never
    /// acknowledged; the store cuts them when it is next opened).
    BeyondHead {
        /// First record after the head.
        first: u64,
        /// Last one.
        last: u64,
    },
    /// Information: opening the store cut an unacknowledged or torn tail.
    Recovered {
        /// Bytes cut.
        bytes: u64,
        /// Whole records among them.
        records: u64,
    },
}

impl FindingKind {
    /// The snake_case name (as in the JSON).
    pub fn name(&self) -> &'static str {
        match self {
            FindingKind::Gap { .. } => "gap",
            FindingKind::Tampered => "tampered",
            FindingKind::LaterKey { .. } => "later_key",
            FindingKind::BrokenLink => "broken_link",
            FindingKind::Behind { .. } => "behind",
            FindingKind::Duplicate => "duplicate",
            FindingKind::ReplayConflict => "replay_conflict",
            FindingKind::Reordered { .. } => "reordered",
            FindingKind::Damaged { .. } => "damaged",
            FindingKind::Truncated { .. } => "truncated",
            FindingKind::TailRewritten => "tail_rewritten",
            FindingKind::HeadMissing => "head_missing",
            FindingKind::Retention { .. } => "retention",
            FindingKind::NotGiven { .. } => "not_given",
            FindingKind::BeyondHead { .. } => "beyond_head",
            FindingKind::Recovered { .. } => "recovered",
        }
    }

    /// False for the kinds that are information, not evidence of a problem.
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            FindingKind::Retention { .. }
                | FindingKind::NotGiven { .. }
                | FindingKind::BeyondHead { .. }
                | FindingKind::Recovered { .. }
        )
    }
}

impl Finding {
    /// A finding with no position.
    pub fn new(seq: Option<u64>, kind: FindingKind, detail: impl Into<String>) -> Finding {
        Finding {
            seq,
            kind,
            file: None,
            offset: None,
            detail: detail.into(),
        }
    }

    /// The same finding, located at `offset` in `file`.
    pub fn at(mut self, file: impl Into<String>, offset: u64) -> Finding {
        self.file = Some(file.into());
        self.offset = Some(offset);
        self
    }

    /// The finding for one fault the seal verifier reported on the record `header` (for the
    /// live collector, which has no file position until it stores the record).
    pub fn from_fault(header: &Header, fault: Fault) -> Finding {
        let seq = header.seq;
        match fault {
            Fault::Gap { first, last } => Finding::new(
                Some(first),
                FindingKind::Gap { first, last },
                format!("{} missing before seq {seq}", range_words(first, last)),
            ),
            Fault::Tampered => Finding::new(
                Some(seq),
                FindingKind::Tampered,
                "its tag does not match its content",
            ),
            Fault::LaterKey { key_of } => Finding::new(
                Some(seq),
                FindingKind::LaterKey { key_of },
                format!(
                    "sealed with the key of position {key_of}: forged by someone holding the \
                     device's key at {key_of} or later"
                ),
            ),
            Fault::BrokenLink => Finding::new(
                Some(seq),
                FindingKind::BrokenLink,
                "authentic, but it does not link to the record stored before it",
            ),
            Fault::Behind { expected } => Finding::new(
                Some(seq),
                FindingKind::Behind { expected },
                format!("behind the chain (expected {expected}): replayed or out of order"),
            ),
        }
    }

    /// All findings of one checked record (gap first), e.g. for `findings.jsonl`.
    pub fn from_checked(header: &Header, checked: &Checked) -> Vec<Finding> {
        checked
            .gap
            .into_iter()
            .chain(checked.fault)
            .map(|f| Finding::from_fault(header, f))
            .collect()
    }
}

/// "record 7" or "records 7..=9".
pub(crate) fn range_words(first: u64, last: u64) -> String {
    if first == last {
        format!("record {first} is")
    } else {
        format!("records {first}..={last} ({} in all) are", last - first + 1)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = match (&self.file, self.offset) {
            (Some(file), Some(off)) => Some(format!("{file} @ {off}")),
            (Some(file), None) => Some(file.clone()),
            _ => None,
        };
        match (self.seq, place) {
            (Some(seq), Some(p)) => write!(f, "seq {seq} ({p})")?,
            (Some(seq), None) => write!(f, "seq {seq}")?,
            (None, Some(p)) => f.write_str(&p)?,
            (None, None) => f.write_str("store")?,
        }
        write!(f, ": {} — {}", self.kind.name(), self.detail)
    }
}
