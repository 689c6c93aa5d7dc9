//! The byte layout of a sealed record, the same in the spool, on the wire and in the store:
//!
//! ```text
//! "MR" version:u8 kind:u8 payload_len:u32le seq:u64le time_ns:i64le prev:[32] tag:[32] payload
//! ```
//!
//! 88 bytes of header, then the payload. The magic lets a reader find the next record after
//! damage.

use crate::{Tag, TAG_LEN};

/// First two bytes of every record.
pub const MAGIC: [u8; 2] = *b"MR";
/// Layout version.
pub const VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 2 + 1 + 1 + 4 + 8 + 8 + TAG_LEN + TAG_LEN;
/// Largest payload (an incident with its provenance drawing fits; an audit line is ≤ 8 KiB).
pub const MAX_PAYLOAD: usize = 4 << 20;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// One line of auditd's log.
    Audit,
    /// A mamori alert (JSON).
    Alert,
    /// A mamori incident (JSON).
    Incident,
    /// The shipper's own notes (started, spool full, intake resumed), JSON.
    Notice,
    /// A periodic "still alive" record, so silence is visible.
    Heartbeat,
    /// Any other kind number (kept, verified, shown by number).
    Other(u8),
}

impl Kind {
    /// The kind's byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Kind::Audit => 1,
            Kind::Alert => 2,
            Kind::Incident => 3,
            Kind::Notice => 4,
            Kind::Heartbeat => 5,
            Kind::Other(b) => b,
        }
    }

    /// The kind of a byte.
    pub fn from_byte(b: u8) -> Kind {
        match b {
            1 => Kind::Audit,
            2 => Kind::Alert,
            3 => Kind::Incident,
            4 => Kind::Notice,
            5 => Kind::Heartbeat,
            b => Kind::Other(b),
        }
    }

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Audit => "audit",
            Kind::Alert => "alert",
            Kind::Incident => "incident",
            Kind::Notice => "notice",
            Kind::Heartbeat => "heartbeat",
            Kind::Other(_) => "other",
        }
    }
}

/// A sealed record's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// What the payload is.
    pub kind: Kind,
    /// Position in the chain.
    pub seq: u64,
    /// When it was sealed (ns since the epoch, the device's clock).
    pub time_ns: i64,
    /// The previous record's tag.
    pub prev: Tag,
    /// This record's tag.
    pub tag: Tag,
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a header or than the payload length says (`needed` in all).
    Short {
        /// Bytes needed for the whole record.
        needed: usize,
    },
    /// The first two bytes are not "MR".
    BadMagic,
    /// A layout version this code does not know.
    BadVersion(u8),
    /// The payload length is over [`MAX_PAYLOAD`].
    PayloadTooLarge(usize),
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Short { needed } => write!(f, "record cut short ({needed} bytes needed)"),
            DecodeError::BadMagic => f.write_str("not a sealed record (bad magic)"),
            DecodeError::BadVersion(v) => write!(f, "unknown record version {v}"),
            DecodeError::PayloadTooLarge(n) => {
                write!(
                    f,
                    "payload of {n} bytes is over the {MAX_PAYLOAD}-byte limit"
                )
            }
        }
    }
}

impl Header {
    /// The header bytes the tag covers (all but the tag), given the payload's length.
    pub(crate) fn mac_bytes(&self, payload_len: usize) -> [u8; HEADER_LEN - TAG_LEN] {
        let mut b = [0u8; HEADER_LEN - TAG_LEN];
        self.write_fixed(&mut b, payload_len);
        b
    }

    fn write_fixed(&self, b: &mut [u8], payload_len: usize) {
        b[0..2].copy_from_slice(&MAGIC);
        b[2] = VERSION;
        b[3] = self.kind.to_byte();
        b[4..8].copy_from_slice(&(payload_len as u32).to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.time_ns.to_le_bytes());
        b[24..56].copy_from_slice(&self.prev);
    }

    /// The 88 header bytes of this record with a payload of `payload_len` bytes.
    pub fn encode(&self, payload_len: usize) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        self.write_fixed(&mut b, payload_len);
        b[56..88].copy_from_slice(&self.tag);
        b
    }

    /// Reads a header from the start of `bytes`; returns it and the payload's length.
    pub fn decode(bytes: &[u8]) -> Result<(Header, usize), DecodeError> {
        if bytes.len() < HEADER_LEN {
            if bytes.len() >= 2 && bytes[0..2] != MAGIC {
                return Err(DecodeError::BadMagic);
            }
            return Err(DecodeError::Short { needed: HEADER_LEN });
        }
        if bytes[0..2] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if bytes[2] != VERSION {
            return Err(DecodeError::BadVersion(bytes[2]));
        }
        let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
        if len > MAX_PAYLOAD {
            return Err(DecodeError::PayloadTooLarge(len));
        }
        let header = Header {
            kind: Kind::from_byte(bytes[3]),
            seq: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
            time_ns: i64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")),
            prev: bytes[24..56].try_into().expect("32 bytes"),
            tag: bytes[56..88].try_into().expect("32 bytes"),
        };
        Ok((header, len))
    }
}

/// Reads one whole record from the start of `bytes`: header, payload, and bytes used.
pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8], usize), DecodeError> {
    let (header, len) = Header::decode(bytes)?;
    let end = HEADER_LEN + len;
    if bytes.len() < end {
        return Err(DecodeError::Short { needed: end });
    }
    Ok((header, &bytes[HEADER_LEN..end], end))
}

/// Where the next record may start after damage: the first "MR" at or after `from + 1`.
pub fn resync(bytes: &[u8], from: usize) -> Option<usize> {
    let start = from.checked_add(1)?;
    bytes
        .get(start..)?
        .windows(2)
        .position(|w| w == MAGIC)
        .map(|p| start + p)
}
