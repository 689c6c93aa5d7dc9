//! The verifying side: holds the chain's first key and walks forward, record by record.

use crate::{tag, Header, Key, Tag, ANCHOR, FIRST_SEQ};

/// How far ahead a record that fails its own key is tried against later keys, to tell "altered"
/// from "sealed by someone holding a later key" (a forgery after the device was taken).
pub const LATER_KEY_SEARCH: u64 = 4096;

/// The furthest ahead of the chain a record may claim to be and still be checked: reaching its
/// key costs one hash per position skipped, so a record claiming position 2^60 (one flipped bit
/// in its header) would otherwise stall the verifier for ever. Four million positions are a few
/// seconds of hashing at most; a real gap longer than that is reported by the next record that
/// is within reach (the collector's and device's positions tell it too).
pub const MAX_JUMP: u64 = 1 << 22;

/// What checking one record found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Records `first..=last` never arrived before this one.
    Gap {
        /// First missing sequence number.
        first: u64,
        /// Last missing sequence number.
        last: u64,
    },
    /// Its tag is wrong for its position: the record was altered (or forged).
    Tampered,
    /// Its tag is right for position `key_of`, later than its own: sealed by someone who held
    /// a later key — a forgery spliced into the past.
    LaterKey {
        /// Position whose key seals it.
        key_of: u64,
    },
    /// Its tag is right but it does not link to the record before it (which was altered or is
    /// missing).
    BrokenLink,
    /// Its position is behind the chain: a replay or a record out of order. Nothing changes.
    Behind {
        /// The position the verifier expected.
        expected: u64,
    },
}

/// The result of checking one record: faults found (often none) and whether the record itself
/// is authentic (its tag verifies for its position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checked {
    /// A gap before it, if any.
    pub gap: Option<Fault>,
    /// What is wrong with the record itself, if anything.
    pub fault: Option<Fault>,
}

impl Checked {
    /// True when nothing was wrong.
    pub fn clean(&self) -> bool {
        self.gap.is_none() && self.fault.is_none()
    }

    /// True when the record itself is authentic (a gap before it may still be reported).
    pub fn authentic(&self) -> bool {
        self.fault.is_none()
    }
}

/// Checks a chain in order, from its first key.
pub struct Verifier {
    next_seq: u64,
    key: Key,
    /// Tag of the record before `next_seq`; None when it is unknown (after a gap or an altered
    /// record), in which case the link is not checked once.
    prev: Option<Tag>,
}

impl Verifier {
    /// A verifier for a chain that starts at [`FIRST_SEQ`] with `first_key`.
    pub fn new(first_key: Key) -> Verifier {
        Verifier {
            next_seq: FIRST_SEQ,
            key: first_key,
            prev: Some(ANCHOR),
        }
    }

    /// A verifier positioned at `next_seq` (the key derived from the first, `next_seq - 1`
    /// hashes) expecting `prev` as the last tag (None: unknown, link not checked once).
    pub fn at(first_key: &Key, next_seq: u64, prev: Option<Tag>) -> Verifier {
        let next_seq = next_seq.max(FIRST_SEQ);
        Verifier {
            key: first_key.evolve_by(next_seq - FIRST_SEQ),
            next_seq,
            prev,
        }
    }

    /// The position expected next.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last authentic tag, if known.
    pub fn prev(&self) -> Option<Tag> {
        self.prev
    }

    /// Checks one record and moves past it, unless it is behind the chain, or ahead of it
    /// without being authentic at the position it claims (then it is `Tampered` and the chain
    /// stays, so the genuine records after it still verify).
    pub fn check(&mut self, header: &Header, payload: &[u8]) -> Checked {
        let mut out = Checked::default();
        if header.seq < self.next_seq {
            out.fault = Some(Fault::Behind {
                expected: self.next_seq,
            });
            return out;
        }
        if header.seq > self.next_seq {
            // A record ahead moves the chain only if it is authentic at the position it claims:
            // its sequence number is part of what may have been changed, and trusting a changed
            // one would skip the chain past every genuine record after it.
            let ahead = header.seq - self.next_seq;
            if ahead > MAX_JUMP {
                out.fault = Some(Fault::Tampered);
                return out;
            }
            let key = self.key.evolve_by(ahead);
            if tag(&key, header, payload) != header.tag {
                out.fault = Some(Fault::Tampered);
                return out;
            }
            out.gap = Some(Fault::Gap {
                first: self.next_seq,
                last: header.seq - 1,
            });
            self.key = key;
            self.next_seq = header.seq;
            self.prev = None;
        }
        if tag(&self.key, header, payload) == header.tag {
            if self.prev.is_some_and(|p| p != header.prev) {
                out.fault = Some(Fault::BrokenLink);
            }
            self.prev = Some(header.tag);
        } else {
            out.fault = Some(self.later_key(header, payload));
            self.prev = None;
        }
        self.key = self.key.evolve();
        self.next_seq += 1;
        out
    }

    fn later_key(&self, header: &Header, payload: &[u8]) -> Fault {
        let mut k = self.key.clone();
        for ahead in 1..=LATER_KEY_SEARCH {
            k = k.evolve();
            if tag(&k, header, payload) == header.tag {
                return Fault::LaterKey {
                    key_of: header.seq + ahead,
                };
            }
        }
        Fault::Tampered
    }
}
