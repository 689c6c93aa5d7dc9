//! pcapng: a sequence of blocks (`type`, `total length`, body, `total length` again), grouped in
//! sections that each start with a Section Header Block fixing that section's byte order.
//!
//! Packets come from Enhanced Packet Blocks, Simple Packet Blocks and the obsolete Packet Block;
//! Interface Description Blocks give link type, snap length and timestamp resolution. Every other
//! block type is skipped by its length, without buffering it.

use std::io;

use super::input::{u16_at, u32_at, Input};
use super::{Fault, Found, PcapErrorKind, Step, MAX_BLOCK_LEN, MAX_PACKET_LEN, MAX_SNAPLEN};

/// Section Header Block type (the same bytes in either byte order).
pub(crate) const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// More interfaces per section than any real capture has; bounds memory on corrupt files.
const MAX_INTERFACES: usize = 1 << 16;

/// How raw timestamps of one interface become nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsScale {
    /// Units of 10^-n s with n ≤ 9: multiply.
    Mul(u64),
    /// Units of 10^-n s with n > 9: divide by 10^(n-9); `None` when everything rounds to 0.
    Div(Option<u128>),
    /// Units of 2^-n s.
    Pow2(u32),
}

impl TsScale {
    fn from_tsresol(v: u8) -> TsScale {
        let n = u32::from(v & 0x7F);
        if v & 0x80 != 0 {
            TsScale::Pow2(n)
        } else if n <= 9 {
            TsScale::Mul(10u64.pow(9 - n))
        } else {
            TsScale::Div(10u128.checked_pow(n - 9))
        }
    }

    #[inline]
    fn to_ns(self, ts: u64) -> u64 {
        match self {
            TsScale::Mul(f) => ts.saturating_mul(f),
            TsScale::Div(Some(d)) => (u128::from(ts) / d) as u64,
            TsScale::Div(None) => 0,
            TsScale::Pow2(n) => {
                let ns = if n >= 128 {
                    0
                } else {
                    (u128::from(ts) * 1_000_000_000) >> n
                };
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    /// 0 = no limit.
    snaplen: u32,
    max_len: u32,
    scale: TsScale,
    /// `if_tsoffset`, in nanoseconds.
    offset_ns: i128,
}

impl Interface {
    #[inline]
    fn ts_ns(&self, hi: u32, lo: u32) -> u64 {
        let ns = self.scale.to_ns((u64::from(hi) << 32) | u64::from(lo));
        if self.offset_ns == 0 {
            ns
        } else {
            let t = i128::from(ns) + self.offset_ns;
            t.clamp(0, i128::from(u64::MAX)) as u64
        }
    }
}

/// Reader state: the current section's byte order and interfaces.
#[derive(Debug, Default)]
pub(crate) struct State {
    big: bool,
    interfaces: Vec<Interface>,
    /// Timestamp of the last packet, given to Simple Packet Blocks (which have none).
    last_ts: u64,
    /// Link type of the first interface seen, for [`super::CaptureReader::linktype`].
    pub(crate) first_linktype: Option<u32>,
}

/// Reads blocks until the next packet (or the end).
#[inline]
pub(crate) fn next(st: &mut State, input: &mut Input) -> Result<Step, Fault> {
    let offset = input.offset();
    let io = |e| Fault::io(e, offset);
    if !input.fill(12).map_err(io)? {
        return match input.available() {
            0 => Ok(Step::End),
            n => {
                let packet = n < 8 || is_packet_type(u32_at(input.peek(8), 0, st.big));
                Err(Fault::truncated(offset, packet, 12, n))
            }
        };
    }
    let head = input.peek(12);
    let mut btype = u32_at(head, 0, st.big);
    if btype == SHB {
        st.big = match [head[8], head[9], head[10], head[11]] {
            [0x1A, 0x2B, 0x3C, 0x4D] => true,
            [0x4D, 0x3C, 0x2B, 0x1A] => false,
            bom => {
                return Err(Fault::lost(
                    PcapErrorKind::BadByteOrderMagic {
                        magic: u32::from_be_bytes(bom),
                    },
                    offset,
                    false,
                ))
            }
        };
        btype = SHB;
    }
    let len = u32_at(head, 4, st.big);
    let packet = is_packet_type(btype);
    let min = match btype {
        SHB => 28,
        IDB => 20,
        EPB | PB => 32,
        SPB => 16,
        _ => 12,
    };
    if len & 3 != 0 || len < min || len > MAX_BLOCK_LEN {
        return Err(Fault::lost(
            PcapErrorKind::BadBlockLength {
                block_type: btype,
                len,
                min,
                max: MAX_BLOCK_LEN,
            },
            offset,
            packet,
        ));
    }
    let len_us = len as usize;
    match btype {
        EPB | PB | SPB | IDB => {
            if !input.fill(len_us).map_err(io)? {
                return Err(Fault::truncated(offset, packet, len_us, input.available()));
            }
            let block = input.peek(len_us);
            let trailer = u32_at(block, len_us - 4, st.big);
            if trailer != len {
                return Err(Fault::lost(
                    PcapErrorKind::TrailerMismatch { len, trailer },
                    offset,
                    packet,
                ));
            }
            let start = input.pos();
            let parsed = if btype == IDB {
                idb(st, block).map(|()| Step::Skip)
            } else {
                packet_block(st, btype, block, start).map(Step::Packet)
            };
            // The block is consumed whatever its contents: the framing is intact.
            input.consume(len_us);
            parsed.map_err(|kind| Fault {
                kind,
                offset,
                packet,
                framing_lost: false,
            })
        }
        SHB => {
            if !input.fill(16).map_err(io)? {
                return Err(Fault::truncated(offset, false, len_us, input.available()));
            }
            let version = input.peek(16);
            let (major, minor) = (u16_at(version, 12, st.big), u16_at(version, 14, st.big));
            if major != 1 {
                return Err(Fault::lost(
                    PcapErrorKind::UnsupportedVersion { major, minor },
                    offset,
                    false,
                ));
            }
            st.interfaces.clear();
            skip_block(st, input, len, offset)
        }
        _ => skip_block(st, input, len, offset),
    }
}

fn is_packet_type(btype: u32) -> bool {
    matches!(btype, EPB | PB | SPB)
}

/// Scans forward, a byte at a time, for a block of a known type whose length is possible and
/// whose trailing length agrees (a packet block must also name a described interface).
/// `Ok(true)` leaves the input at it; `Ok(false)` means the input ended first (all of it
/// consumed).
pub(crate) fn resync(st: &State, input: &mut Input) -> io::Result<bool> {
    loop {
        if !input.fill(12)? {
            input.consume(input.available());
            return Ok(false);
        }
        if let Some((len, big)) = candidate(st, input.peek(12)) {
            if input.fill(len)? {
                let block = input.peek(len);
                let btype = u32_at(block, 0, big);
                let n_if = st.interfaces.len();
                let iface_ok = match btype {
                    EPB => (u32_at(block, 8, big) as usize) < n_if,
                    PB => usize::from(u16_at(block, 8, big)) < n_if,
                    SPB => n_if > 0,
                    _ => true,
                };
                if iface_ok && u32_at(block, len - 4, big) as usize == len {
                    return Ok(true);
                }
            }
        }
        input.consume(1);
    }
}

/// The length and byte order of a block header that could start a real block.
fn candidate(st: &State, head: &[u8]) -> Option<(usize, bool)> {
    let big = if u32_at(head, 0, false) == SHB {
        match [head[8], head[9], head[10], head[11]] {
            [0x1A, 0x2B, 0x3C, 0x4D] => true,
            [0x4D, 0x3C, 0x2B, 0x1A] => false,
            _ => return None,
        }
    } else {
        st.big
    };
    let btype = u32_at(head, 0, big);
    let min = match btype {
        SHB => 28,
        IDB => 20,
        EPB | PB => 32,
        SPB => 16,
        // Name resolution, interface statistics, systemd journal, decryption secrets, custom.
        4 | 5 | 9 | 0x0A | 0x0BAD | 0x4000_0BAD => 12,
        _ => return None,
    };
    let len = u32_at(head, 4, big);
    (len & 3 == 0 && len >= min && len <= MAX_BLOCK_LEN).then_some((len as usize, big))
}

/// Skips a block by its length without buffering it, then checks the trailer.
fn skip_block(st: &State, input: &mut Input, len: u32, offset: u64) -> Result<Step, Fault> {
    let io = |e| Fault::io(e, offset);
    let body = u64::from(len) - 4;
    let skipped = input.skip(body).map_err(io)?;
    if skipped < body || !input.fill(4).map_err(io)? {
        let have = skipped as usize + input.available();
        return Err(Fault::truncated(offset, false, len as usize, have));
    }
    let trailer = u32_at(input.peek(4), 0, st.big);
    input.consume(4);
    if trailer != len {
        return Err(Fault::lost(
            PcapErrorKind::TrailerMismatch { len, trailer },
            offset,
            false,
        ));
    }
    Ok(Step::Skip)
}

/// Parses an Interface Description Block into a new interface of the current section.
fn idb(st: &mut State, block: &[u8]) -> Result<(), PcapErrorKind> {
    if st.interfaces.len() >= MAX_INTERFACES {
        return Err(PcapErrorKind::TooManyInterfaces {
            max: MAX_INTERFACES,
        });
    }
    let big = st.big;
    let linktype = u32::from(u16_at(block, 8, big));
    let snaplen = u32_at(block, 12, big);
    let mut scale = TsScale::Mul(1000);
    let mut offset_ns = 0i128;
    // Options: code, length, value padded to 4 bytes; a malformed tail is ignored rather than
    // dropping the interface, which would shift every later interface id.
    let opts = &block[16..block.len() - 4];
    let mut at = 0;
    while at + 4 <= opts.len() {
        let code = u16_at(opts, at, big);
        let olen = usize::from(u16_at(opts, at + 2, big));
        let val_at = at + 4;
        if code == 0 || val_at + olen > opts.len() {
            break;
        }
        let val = &opts[val_at..val_at + olen];
        match (code, olen) {
            (9, 1..) => scale = TsScale::from_tsresol(val[0]),
            (14, 8) => {
                let secs = if big {
                    i64::from_be_bytes([
                        val[0], val[1], val[2], val[3], val[4], val[5], val[6], val[7],
                    ])
                } else {
                    i64::from_le_bytes([
                        val[0], val[1], val[2], val[3], val[4], val[5], val[6], val[7],
                    ])
                };
                offset_ns = i128::from(secs) * 1_000_000_000;
            }
            _ => {}
        }
        at = val_at + olen.div_ceil(4) * 4;
    }
    let max_len = MAX_PACKET_LEN.max(snaplen.min(MAX_SNAPLEN));
    st.first_linktype.get_or_insert(linktype);
    st.interfaces.push(Interface {
        linktype,
        snaplen,
        max_len,
        scale,
        offset_ns,
    });
    Ok(())
}

/// Parses an EPB, SPB or PB whose whole `block` is in the window at index `start`.
#[inline]
fn packet_block(
    st: &mut State,
    btype: u32,
    block: &[u8],
    start: usize,
) -> Result<Found, PcapErrorKind> {
    let big = st.big;
    let room = block.len() - 4;
    let (iface_id, data_at, caplen, orig_len, ts) = match btype {
        EPB | PB => {
            let id = if btype == EPB {
                u32_at(block, 8, big)
            } else {
                u32::from(u16_at(block, 8, big))
            };
            let caplen = u32_at(block, 20, big);
            let orig = u32_at(block, 24, big);
            let ts = Some((u32_at(block, 12, big), u32_at(block, 16, big)));
            (id, 28, caplen, orig, ts)
        }
        _ => {
            // SPB: the captured length is implied by the block length and the snap length.
            let orig = u32_at(block, 8, big);
            let snap = match st.interfaces.first() {
                Some(i) if i.snaplen != 0 => i.snaplen,
                _ => u32::MAX,
            };
            let fits = (room - 12) as u32;
            (0, 12, orig.min(snap).min(fits), orig, None)
        }
    };
    let iface = match st.interfaces.get(iface_id as usize) {
        Some(i) => *i,
        None => {
            return Err(PcapErrorKind::UnknownInterface {
                id: iface_id,
                count: st.interfaces.len(),
            })
        }
    };
    if caplen > iface.max_len {
        return Err(PcapErrorKind::RecordTooLong {
            len: caplen,
            max: iface.max_len,
        });
    }
    if data_at + caplen as usize > room {
        return Err(PcapErrorKind::CaptureOverrunsBlock {
            caplen,
            len: block.len() as u32,
        });
    }
    let ts_ns = match ts {
        Some((hi, lo)) => iface.ts_ns(hi, lo),
        None => st.last_ts,
    };
    st.last_ts = ts_ns;
    Ok(Found {
        ts_ns,
        linktype: iface.linktype,
        orig_len,
        start: start + data_at,
        len: caplen as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(TsScale::from_tsresol(6).to_ns(1_500_000), 1_500_000_000);
        assert_eq!(TsScale::from_tsresol(9).to_ns(42), 42);
        assert_eq!(TsScale::from_tsresol(0).to_ns(3), 3_000_000_000);
        assert_eq!(TsScale::from_tsresol(12).to_ns(5_000), 5);
        assert_eq!(TsScale::from_tsresol(0x80 | 10).to_ns(1024), 1_000_000_000);
        assert_eq!(TsScale::from_tsresol(0x80 | 10).to_ns(1), 976_562);
        assert_eq!(
            TsScale::from_tsresol(0x80 | 30).to_ns(1 << 30),
            1_000_000_000
        );
        assert_eq!(TsScale::from_tsresol(0x7F).to_ns(u64::MAX), 0);
        assert_eq!(TsScale::from_tsresol(0).to_ns(u64::MAX), u64::MAX);
        assert_eq!(TsScale::from_tsresol(0x80).to_ns(u64::MAX), u64::MAX);
    }
}
