//! Forward-secure sealing of log records (Schneier–Kelsey secure audit logs; the idea of
//! systemd's journal sealing), with no I/O and no `std`: the part of mamori's log shipping that
//! would run inside a trusted execution environment.
//!
//! Every record gets the next sequence number and a tag, HMAC-SHA256 under the key of its
//! position, over its header, the previous record's tag and its payload. After each record the
//! key moves on, `key[i+1] = SHA-256("mamori-seal evolve v1" ‖ key[i])`, and the old key is
//! erased. Whoever takes the device later holds only the current key: they cannot seal a record
//! for an earlier position, so they can neither rewrite nor silently drop what was already
//! sealed. The verifier holds the first key and walks the chain forward.
//!
//! [`codec`] is the one byte layout of a sealed record, used in the device's spool, on the wire
//! and in the collector's store.

#![no_std]
#![forbid(unsafe_code)]

pub mod codec;
mod key;
mod verify;

pub use codec::{DecodeError, Header, Kind, HEADER_LEN, MAGIC, MAX_PAYLOAD, VERSION};
pub use key::{Key, KEY_LEN};
pub use verify::{Checked, Fault, Verifier, LATER_KEY_SEARCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of a tag (HMAC-SHA256).
pub const TAG_LEN: usize = 32;

/// A tag, and the link a record carries to its predecessor.
pub type Tag = [u8; TAG_LEN];

/// The `prev` of the first record of a chain.
pub const ANCHOR: Tag = [0; TAG_LEN];

/// Sequence number of the first record of a chain (sealed with the first key).
pub const FIRST_SEQ: u64 = 1;

/// The tag of a record under `key`: over every header field but the tag, then the payload.
pub fn tag(key: &Key, header: &Header, payload: &[u8]) -> Tag {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"mamori-seal v1\0");
    mac.update(&header.mac_bytes(payload.len()));
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// The sealing side: the position and key of the next record, and the last tag.
///
/// Its whole state is [`Sealer::state`]; a device persists that (and nothing older) between
/// records, so a restart continues the chain.
pub struct Sealer {
    next_seq: u64,
    key: Key,
    prev: Tag,
}

/// What a [`Sealer`] needs to continue: next position, its key, the last tag.
#[derive(Clone)]
pub struct SealerState {
    /// Sequence number the next record gets.
    pub next_seq: u64,
    /// The key for `next_seq` (all earlier keys are gone).
    pub key: Key,
    /// Tag of record `next_seq - 1` ([`ANCHOR`] before the first).
    pub prev: Tag,
}

impl Sealer {
    /// A new chain whose first record is sealed with `first_key`.
    pub fn new(first_key: Key) -> Sealer {
        Sealer {
            next_seq: FIRST_SEQ,
            key: first_key,
            prev: ANCHOR,
        }
    }

    /// Continues a chain from its saved state.
    pub fn resume(state: SealerState) -> Sealer {
        Sealer {
            next_seq: state.next_seq,
            key: state.key,
            prev: state.prev,
        }
    }

    /// The state to persist: from it the chain continues, and nothing earlier can be resealed.
    pub fn state(&self) -> SealerState {
        SealerState {
            next_seq: self.next_seq,
            key: self.key.clone(),
            prev: self.prev,
        }
    }

    /// Sequence number of the next record.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Seals one record: its header (with sequence number and tag); the key then moves on and
    /// the one used is erased.
    pub fn seal(
        &mut self,
        kind: Kind,
        time_ns: i64,
        payload: &[u8],
    ) -> Result<Header, DecodeError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(DecodeError::PayloadTooLarge(payload.len()));
        }
        let mut header = Header {
            kind,
            seq: self.next_seq,
            time_ns,
            prev: self.prev,
            tag: [0; TAG_LEN],
        };
        header.tag = tag(&self.key, &header, payload);
        self.key = self.key.evolve(); // the old key is zeroed as it drops
        self.prev = header.tag;
        self.next_seq += 1;
        Ok(header)
    }
}

#[cfg(test)]
mod tests;
