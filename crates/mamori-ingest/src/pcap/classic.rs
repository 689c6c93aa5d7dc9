//! Classic libpcap files: a 24-byte file header, then 16-byte record headers each followed by the
//! captured bytes.

use std::io;

use super::input::{u32_at, Input};
use super::{Fault, Found, PcapErrorKind, Step, MAX_PACKET_LEN, MAX_SNAPLEN};

/// What the file header says about every record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) big: bool,
    /// 1000 for microsecond files, 1 for nanosecond files.
    pub(crate) frac_ns: u64,
    pub(crate) linktype: u32,
    pub(crate) max_len: u32,
    /// 16, or 24 for the "modified" (Kuznetzov) format, whose extra fields are skipped.
    pub(crate) rec_hdr: usize,
    /// The file header's snap length (0: none given).
    pub(crate) snaplen: u32,
    /// Seconds of the last packet read, the reference for resynchronising.
    pub(crate) last_sec: Option<u64>,
}

/// How far (seconds) a record's time may be from the previous one's to be taken as the next
/// record when resynchronising.
const RESYNC_NEAR_S: u64 = 86_400;

/// File header length.
pub(crate) const FILE_HEADER: usize = 24;

impl Header {
    /// Parses the file header; `magic` is its first four bytes read big-endian and already
    /// known to be one of the classic magics.
    pub(crate) fn parse(hdr: &[u8], magic: u32) -> Header {
        let (big, frac_ns, rec_hdr) = match magic {
            0xA1B2_C3D4 => (true, 1000, 16),
            0xD4C3_B2A1 => (false, 1000, 16),
            0xA1B2_3C4D => (true, 1, 16),
            0x4D3C_B2A1 => (false, 1, 16),
            0xA1B2_CD34 => (true, 1000, 24),
            _ => (false, 1000, 24), // 0x34CDB2A1
        };
        let snaplen = u32_at(hdr, 16, big);
        // The low 16 bits are the link type; the upper ones carry FCS information.
        let linktype = u32_at(hdr, 20, big) & 0xFFFF;
        Header {
            big,
            frac_ns,
            linktype,
            max_len: MAX_PACKET_LEN.max(snaplen.min(MAX_SNAPLEN)),
            rec_hdr,
            snaplen,
            last_sec: None,
        }
    }

    /// Whether `magic` (first four bytes, big-endian) starts a classic pcap file.
    pub(crate) fn is_magic(magic: u32) -> bool {
        matches!(
            magic,
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 | 0xA1B2_CD34 | 0x34CD_B2A1
        )
    }
}

/// Reads the next record.
#[inline]
pub(crate) fn next(h: &mut Header, input: &mut Input) -> Result<Step, Fault> {
    let offset = input.offset();
    let io = |e| Fault::io(e, offset);
    if !input.fill(h.rec_hdr).map_err(io)? {
        if input.available() == 0 {
            return Ok(Step::End);
        }
        return Err(Fault::truncated(offset, true, h.rec_hdr, input.available()));
    }
    let rec = input.peek(h.rec_hdr);
    let sec = u32_at(rec, 0, h.big) as u64;
    let frac = u32_at(rec, 4, h.big) as u64;
    let incl = u32_at(rec, 8, h.big);
    let orig_len = u32_at(rec, 12, h.big);
    if incl > h.max_len {
        // Where the next record starts is unknown now: nothing after this can be trusted.
        return Err(Fault {
            kind: PcapErrorKind::RecordTooLong {
                len: incl,
                max: h.max_len,
            },
            offset,
            packet: true,
            framing_lost: true,
        });
    }
    let total = h.rec_hdr + incl as usize;
    if !input.fill(total).map_err(io)? {
        return Err(Fault::truncated(offset, true, total, input.available()));
    }
    let start = input.pos() + h.rec_hdr;
    input.consume(total);
    h.last_sec = Some(sec);
    Ok(Step::Packet(Found {
        ts_ns: sec * 1_000_000_000 + frac * h.frac_ns,
        linktype: h.linktype,
        orig_len,
        start,
        len: incl as usize,
    }))
}

/// The captured length of the record header `rec`, if it looks like a real one: fraction below a
/// second, captured length within the snap length, the maximum and the wire length, and a time
/// within [`RESYNC_NEAR_S`] of `near` (when known).
fn plausible(h: &Header, rec: &[u8], near: Option<u64>) -> Option<u32> {
    let sec = u64::from(u32_at(rec, 0, h.big));
    let frac = u64::from(u32_at(rec, 4, h.big));
    let incl = u32_at(rec, 8, h.big);
    let orig_len = u32_at(rec, 12, h.big);
    let frac_max = if h.frac_ns == 1 {
        1_000_000_000
    } else {
        1_000_000
    };
    let snap_ok = h.snaplen == 0 || incl <= h.snaplen;
    let near_ok = near.is_none_or(|t| sec.abs_diff(t) <= RESYNC_NEAR_S);
    (frac < frac_max && incl <= h.max_len && incl <= orig_len && snap_ok && near_ok).then_some(incl)
}

/// Scans forward, a byte at a time, for a plausible record header whose following record is
/// plausible too (or which ends exactly at the end of the input). `Ok(true)` leaves the input at
/// it; `Ok(false)` means the input ended first (all of it consumed).
pub(crate) fn resync(h: &Header, input: &mut Input) -> io::Result<bool> {
    let hdr = h.rec_hdr;
    loop {
        if !input.fill(hdr)? {
            input.consume(input.available());
            return Ok(false);
        }
        if let Some(incl) = plausible(h, input.peek(hdr), h.last_sec) {
            let total = hdr + incl as usize;
            if input.fill(total + hdr)? {
                let two = input.peek(total + hdr);
                let sec = u64::from(u32_at(two, 0, h.big));
                if plausible(h, &two[total..], Some(sec)).is_some() {
                    return Ok(true);
                }
            } else if input.available() == total {
                return Ok(true);
            }
        }
        input.consume(1);
    }
}
