//! Streaming reader for packet captures: classic libpcap (`.pcap`) and pcapng.
//!
//! [`CaptureReader`] picks the format from the magic number, decompresses gzip on the fly, and
//! hands out one [`RawPacket`] at a time whose bytes borrow a single reused window over the input:
//! no allocation per packet and constant memory however long the capture, which is what lets the
//! network detector keep up with a gateway's traffic. The borrow is why [`CaptureReader`] is a
//! *lending* reader (`while let Some(p) = r.next_packet()?`) rather than an [`Iterator`].
//! The window is 1 MiB and grows only for a larger record, up to [`MAX_BLOCK_LEN`].
//!
//! pcapng: each section has its own byte order and interfaces; timestamps follow the interface's
//! `if_tsresol` (powers of 10 or 2; microseconds by default) and `if_tsoffset`. A Simple Packet
//! Block has no timestamp, so it gets the previous packet's (0 when it is the first). Blocks
//! other than section headers, interface descriptions and packets are skipped by their length.
//!
//! Damage is reported with the file, the 1-based packet number and the record's byte offset
//! ([`PcapError`]). In *lenient* mode damaged records are counted per reason instead
//! ([`CaptureReader::skipped`]): a capture cut mid-packet (tcpdump killed) ends normally with one
//! "truncated final packet"; a corrupt pcapng packet block whose framing is intact is skipped and
//! reading goes on. Where the next record can no longer be found from the damaged one (a classic
//! record length beyond the maximum, an impossible pcapng block length or trailer), lenient
//! reading *resynchronises*: it scans forward for the next plausible record header (classic: a
//! timestamp within a day of the previous packet's, a captured length within the snap length and
//! the wire length, and the record after it plausible too or the end of the file; pcapng: a known
//! block type whose leading and trailing lengths agree), and reports the abandoned byte range
//! ([`CaptureReader::abandoned`]). Packet numbers after a resynchronisation count the packets
//! found, not those that may have been lost in the abandoned bytes.
//!
//! Gzip input is recognised by its magic bytes, whatever the name. A gzip stream that is cut
//! short or corrupt ends the capture there: lenient reading keeps every record that decompressed
//! and counts the damage ("truncated gzip" or "corrupt gzip"); strict reading fails naming the
//! packet and byte offset where decompression stopped.
//!
//! ```
//! use mamori_ingest::pcap::CaptureReader;
//!
//! // A little-endian, microsecond pcap file (Ethernet) with one 4-byte packet.
//! let mut file = Vec::new();
//! for word in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
//!     file.extend_from_slice(&word.to_le_bytes());
//! }
//! for word in [1_600_000_000u32, 250_000, 4, 60] {
//!     file.extend_from_slice(&word.to_le_bytes());
//! }
//! file.extend_from_slice(b"\xde\xad\xbe\xef");
//!
//! let mut reader = CaptureReader::new(Box::new(std::io::Cursor::new(file)), "one.pcap", false)?;
//! let p = reader.next_packet()?.expect("one packet");
//! assert_eq!((p.number, p.ts_ns, p.linktype, p.orig_len), (1, 1_600_000_000_250_000_000, 1, 60));
//! assert_eq!(p.data, b"\xde\xad\xbe\xef");
//! assert!(reader.next_packet()?.is_none());
//! assert_eq!(reader.packets_read(), 1);
//! # Ok::<(), mamori_ingest::pcap::PcapError>(())
//! ```

mod classic;
mod gz;
mod input;
mod pcapng;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use gz::{DamageSlot, GzReader};
use input::Input;

use crate::{SkipAt, SkipUnit, Skipped};

/// Largest captured length accepted when the snap length is smaller: 256 KiB, above any real
/// link's frame (libpcap's own maximum snap length).
pub const MAX_PACKET_LEN: u32 = 262_144;
/// Snap lengths above this are not trusted to raise the per-record maximum (bounds memory).
pub const MAX_SNAPLEN: u32 = 16 << 20;
/// Largest pcapng block accepted.
pub const MAX_BLOCK_LEN: u32 = 32 << 20;

/// One captured packet. `data` borrows the reader's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPacket<'a> {
    /// 1-based packet number in the file (skipped damaged packets count too, so numbers match
    /// what Wireshark shows).
    pub number: u64,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Link type (`LINKTYPE_*`: 1 Ethernet, 113 Linux SLL, 101 raw IP, …).
    pub linktype: u32,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// The captured bytes (at most the snap length, so possibly fewer than `orig_len`).
    pub data: &'a [u8],
}

/// Which container format a [`CaptureReader`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap.
    Pcap {
        /// Nanosecond timestamps (magic `0xa1b23c4d`) rather than microseconds.
        nanos: bool,
        /// Big-endian file.
        big_endian: bool,
    },
    /// pcapng (byte order may change per section).
    Pcapng,
}

/// What is wrong with a capture; [`PcapError`] adds where.
#[derive(Debug)]
#[non_exhaustive]
pub enum PcapErrorKind {
    /// Reading failed (missing file, permissions, corrupt gzip…).
    Io(io::Error),
    /// The file has no bytes at all.
    Empty,
    /// The file is shorter than any magic number.
    TooShort {
        /// File length.
        len: usize,
    },
    /// The first four bytes are no pcap or pcapng magic.
    BadMagic {
        /// The first four bytes, read big-endian.
        magic: u32,
    },
    /// The classic file header is cut short.
    TruncatedHeader {
        /// Bytes present.
        have: usize,
    },
    /// The file ends inside a record.
    Truncated {
        /// Whether the cut record is a packet (else another pcapng block).
        packet: bool,
        /// Bytes the record needs.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A captured length above the maximum.
    RecordTooLong {
        /// The captured length found.
        len: u32,
        /// The maximum (256 KiB, or the snap length when larger).
        max: u32,
    },
    /// A pcapng block length that cannot be right.
    BadBlockLength {
        /// Block type.
        block_type: u32,
        /// Its length field.
        len: u32,
        /// Minimum for that type.
        min: u32,
        /// Maximum for any block.
        max: u32,
    },
    /// A pcapng block's trailing length differs from its leading one.
    TrailerMismatch {
        /// The leading length.
        len: u32,
        /// The trailing length.
        trailer: u32,
    },
    /// A pcapng Section Header Block with a byte-order magic that is neither order.
    BadByteOrderMagic {
        /// The four bytes, read big-endian.
        magic: u32,
    },
    /// A pcapng section of a major version other than 1.
    UnsupportedVersion {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// A packet block naming an interface the section has not described.
    UnknownInterface {
        /// The interface id.
        id: u32,
        /// Interfaces described so far in this section.
        count: usize,
    },
    /// A packet block whose captured length runs past the block's end.
    CaptureOverrunsBlock {
        /// The captured length.
        caplen: u32,
        /// The block length.
        len: u32,
    },
    /// More Interface Description Blocks in one section than accepted.
    TooManyInterfaces {
        /// The limit.
        max: usize,
    },
    /// The gzip stream is cut short or corrupt: nothing after this point decompresses.
    Gzip {
        /// Compressed bytes decoded before the failure.
        compressed_offset: u64,
        /// Whether the stream simply ends early (else its data is corrupt).
        truncated: bool,
        /// The decompressor's message.
        message: String,
        /// When the stream broke inside a record: the bytes the record needs and those that
        /// decompressed.
        cut: Option<(usize, usize)>,
    },
}

impl PcapErrorKind {
    /// A short category: the key under which lenient mode counts skipped packets.
    pub fn reason(&self) -> &'static str {
        match self {
            PcapErrorKind::Io(_) => "read error",
            PcapErrorKind::Empty
            | PcapErrorKind::TooShort { .. }
            | PcapErrorKind::BadMagic { .. } => "not a capture",
            PcapErrorKind::TruncatedHeader { .. } => "truncated file header",
            PcapErrorKind::Truncated { packet: true, .. } => "truncated final packet",
            PcapErrorKind::Truncated { packet: false, .. } => "truncated final block",
            PcapErrorKind::RecordTooLong { .. } => "record too long",
            PcapErrorKind::BadBlockLength { .. } => "bad block length",
            PcapErrorKind::TrailerMismatch { .. } => "block trailer mismatch",
            PcapErrorKind::BadByteOrderMagic { .. } => "bad byte-order magic",
            PcapErrorKind::UnsupportedVersion { .. } => "unsupported version",
            PcapErrorKind::UnknownInterface { .. } => "unknown interface",
            PcapErrorKind::CaptureOverrunsBlock { .. } => "captured length overruns block",
            PcapErrorKind::TooManyInterfaces { .. } => "too many interfaces",
            PcapErrorKind::Gzip {
                truncated: true, ..
            } => "truncated gzip",
            PcapErrorKind::Gzip { .. } => "corrupt gzip",
        }
    }
}

impl fmt::Display for PcapErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapErrorKind::Io(e) => write!(f, "cannot read: {e}"),
            PcapErrorKind::Empty => f.write_str("empty file: not a pcap or pcapng file"),
            PcapErrorKind::TooShort { len } => {
                write!(f, "not a pcap or pcapng file (only {len} bytes)")
            }
            PcapErrorKind::BadMagic { magic } => {
                write!(f, "not a pcap or pcapng file (magic 0x{magic:08x})")
            }
            PcapErrorKind::TruncatedHeader { have } => {
                write!(f, "truncated pcap file header ({have} of 24 bytes)")
            }
            PcapErrorKind::Truncated { packet, need, have } => write!(
                f,
                "truncated final {}: the record needs {need} bytes, the file ends after {have}",
                if *packet { "packet" } else { "block" }
            ),
            PcapErrorKind::RecordTooLong { len, max } => {
                write!(f, "record length {len} exceeds the maximum {max}")
            }
            PcapErrorKind::BadBlockLength {
                block_type,
                len,
                min,
                max,
            } => write!(
                f,
                "block of type 0x{block_type:08x} has length {len} (must be a multiple of 4 \
                 between {min} and {max})"
            ),
            PcapErrorKind::TrailerMismatch { len, trailer } => write!(
                f,
                "block length {len} does not match its trailing copy {trailer}"
            ),
            PcapErrorKind::BadByteOrderMagic { magic } => write!(
                f,
                "section header byte-order magic 0x{magic:08x} is not 0x1a2b3c4d in either order"
            ),
            PcapErrorKind::UnsupportedVersion { major, minor } => {
                write!(f, "unsupported pcapng version {major}.{minor}")
            }
            PcapErrorKind::UnknownInterface { id, count } => write!(
                f,
                "interface id {id} out of range ({count} interfaces described in this section)"
            ),
            PcapErrorKind::CaptureOverrunsBlock { caplen, len } => write!(
                f,
                "captured length {caplen} does not fit in a block of length {len}"
            ),
            PcapErrorKind::TooManyInterfaces { max } => {
                write!(f, "more than {max} interfaces in one section")
            }
            PcapErrorKind::Gzip {
                compressed_offset,
                truncated,
                message,
                cut,
            } => {
                let what = if *truncated {
                    "ends early"
                } else {
                    "is corrupt"
                };
                write!(
                    f,
                    "gzip stream {what} after {compressed_offset} compressed bytes ({message}); "
                )?;
                match cut {
                    Some((need, have)) => write!(
                        f,
                        "the record needs {need} bytes, {have} decompressed; nothing after it \
                         can be read"
                    ),
                    None => f.write_str("nothing after this offset can be read"),
                }
            }
        }
    }
}

/// Where in the file a [`PcapError`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The file header (or opening the file).
    FileHeader,
    /// A packet record, by its 1-based number.
    Packet(u64),
    /// A pcapng block that is not a packet, by the number the next packet would have.
    Block {
        /// 1-based number of the next packet.
        next_packet: u64,
    },
}

/// A capture that cannot be read, naming the file, the packet and the record's byte offset.
#[derive(Debug)]
pub struct PcapError {
    source_name: String,
    location: Location,
    offset: u64,
    kind: PcapErrorKind,
}

impl PcapError {
    fn header(source_name: &str, kind: PcapErrorKind) -> Self {
        PcapError {
            source_name: source_name.to_string(),
            location: Location::FileHeader,
            offset: 0,
            kind,
        }
    }

    /// The file (or source name) the error is about.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Where it was found.
    pub fn location(&self) -> Location {
        self.location
    }

    /// The 1-based packet number: the damaged packet's, or the next one's for another block;
    /// `None` for the file header.
    pub fn packet(&self) -> Option<u64> {
        match self.location {
            Location::FileHeader => None,
            Location::Packet(n) | Location::Block { next_packet: n } => Some(n),
        }
    }

    /// Byte offset of the record (of the decompressed stream, for gzip input).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What is wrong.
    pub fn kind(&self) -> &PcapErrorKind {
        &self.kind
    }
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, off, kind) = (&self.source_name, self.offset, &self.kind);
        match self.location {
            Location::FileHeader => write!(f, "{name}: {kind}"),
            Location::Packet(n) => write!(f, "{name}: packet {n} (byte offset {off}): {kind}"),
            Location::Block { next_packet } => write!(
                f,
                "{name}: block at byte offset {off} (before packet {next_packet}): {kind}"
            ),
        }
    }
}

impl std::error::Error for PcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            PcapErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A packet's place in the reader's window, so parsers return no borrow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub(crate) ts_ns: u64,
    pub(crate) linktype: u32,
    pub(crate) orig_len: u32,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// What one parser step produced.
pub(crate) enum Step {
    Packet(Found),
    /// A block that is not a packet was consumed.
    Skip,
    End,
}

/// A damaged record, as parsers report it.
pub(crate) struct Fault {
    pub(crate) kind: PcapErrorKind,
    pub(crate) offset: u64,
    /// Whether the record is a packet (it uses up a packet number).
    pub(crate) packet: bool,
    /// Whether the next record can no longer be located.
    pub(crate) framing_lost: bool,
}

impl Fault {
    fn io(e: io::Error, offset: u64) -> Fault {
        Fault {
            kind: PcapErrorKind::Io(e),
            offset,
            packet: false,
            framing_lost: true,
        }
    }

    fn truncated(offset: u64, packet: bool, need: usize, have: usize) -> Fault {
        Fault {
            kind: PcapErrorKind::Truncated { packet, need, have },
            offset,
            packet,
            framing_lost: true,
        }
    }

    fn lost(kind: PcapErrorKind, offset: u64, packet: bool) -> Fault {
        Fault {
            kind,
            offset,
            packet,
            framing_lost: true,
        }
    }
}

enum Format {
    Classic(classic::Header),
    Pcapng(pcapng::State),
}

/// How many [`Abandoned`] ranges a reader keeps (their total is always counted).
pub const ABANDONED_KEPT: usize = 16;

/// Bytes lenient reading gave up on: from a record whose length could not be trusted to the next
/// plausible record (or the end of the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned {
    /// Byte offset of the damaged record (of the decompressed stream, for gzip input).
    pub from: u64,
    /// Byte offset where reading resumed, or where the input ended.
    pub to: u64,
    /// Whether reading resumed at `to` (else no intact record followed).
    pub resumed: bool,
    /// Number the next packet found gets.
    pub next_packet: u64,
}

impl Abandoned {
    /// Bytes abandoned.
    pub fn bytes(&self) -> u64 {
        self.to - self.from
    }
}

/// Streams packets out of a classic pcap or pcapng capture (optionally gzip-compressed).
///
/// After an `Err` in strict mode, the next call goes on with the following record when the
/// damaged one could be stepped over (a corrupt pcapng packet block), else returns `Ok(None)`.
pub struct CaptureReader {
    input: Input,
    source: String,
    lenient: bool,
    format: Format,
    /// Packet records met so far, damaged ones included.
    number: u64,
    packets: u64,
    skipped: Skipped,
    done: bool,
    /// Where a gzip decoder notes damage (gzip input only).
    gz: Option<DamageSlot>,
    abandoned: Vec<Abandoned>,
    abandoned_count: u64,
    abandoned_bytes: u64,
}

/// The name standard input goes by in messages.
pub const STDIN_NAME: &str = "<stdin>";

impl CaptureReader {
    /// Opens a capture file, or standard input for `-`; gzip content (recognised by its magic,
    /// whatever the name) is decompressed on the fly. The input is read once, front to back, so
    /// pipes and FIFOs work.
    pub fn open(path: &Path, lenient: bool) -> Result<Self, PcapError> {
        if path.as_os_str() == "-" {
            return Self::new(Box::new(io::stdin()), STDIN_NAME, lenient);
        }
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| PcapError::header(&name, PcapErrorKind::Io(e)))?;
        Self::new(Box::new(file), &name, lenient)
    }

    /// Reads a capture from any reader (buffering is done here; gzip content is detected by its
    /// magic); `source_name` names it in messages.
    pub fn new(
        reader: Box<dyn Read + Send>,
        source_name: &str,
        lenient: bool,
    ) -> Result<Self, PcapError> {
        let name = source_name;
        let err = |kind| PcapError::header(name, kind);
        let mut input = Input::new(reader);
        input.fill(2).map_err(|e| err(PcapErrorKind::Io(e)))?;
        let mut gz = None;
        if input.available() >= 2 && input.peek(2) == [0x1f, 0x8b] {
            // The bytes already read go in front of the rest: a pipe cannot be read again.
            let (head, inner) = input.take_buffered_and_inner();
            let chained = io::Cursor::new(head).chain(inner);
            let slot: DamageSlot = Arc::new(Mutex::new(None));
            input.set_inner(Box::new(GzReader::new(
                Box::new(chained),
                Arc::clone(&slot),
            )));
            gz = Some(slot);
        }
        if !input.fill(4).map_err(|e| err(PcapErrorKind::Io(e)))? {
            let damage = gz.as_ref().and_then(take_damage);
            return Err(err(match (input.available(), damage) {
                (_, Some(d)) => PcapErrorKind::Gzip {
                    compressed_offset: d.compressed_offset,
                    truncated: d.truncated,
                    message: d.message,
                    cut: None,
                },
                (0, None) => PcapErrorKind::Empty,
                (len, None) => PcapErrorKind::TooShort { len },
            }));
        }
        let m = input.peek(4);
        let magic = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
        let format = if classic::Header::is_magic(magic) {
            if !input
                .fill(classic::FILE_HEADER)
                .map_err(|e| err(PcapErrorKind::Io(e)))?
            {
                return Err(err(PcapErrorKind::TruncatedHeader {
                    have: input.available(),
                }));
            }
            let header = classic::Header::parse(input.peek(classic::FILE_HEADER), magic);
            input.consume(classic::FILE_HEADER);
            Format::Classic(header)
        } else if magic == pcapng::SHB {
            Format::Pcapng(pcapng::State::default())
        } else {
            return Err(err(PcapErrorKind::BadMagic { magic }));
        };
        Ok(CaptureReader {
            input,
            source: name.to_string(),
            lenient,
            format,
            number: 0,
            packets: 0,
            skipped: Skipped::new(SkipUnit::Record),
            done: false,
            gz,
            abandoned: Vec::new(),
            abandoned_count: 0,
            abandoned_bytes: 0,
        })
    }

    /// The next packet; `Ok(None)` at the end of the capture.
    #[inline]
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, PcapError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let step = match &mut self.format {
                Format::Classic(h) => classic::next(h, &mut self.input),
                Format::Pcapng(st) => pcapng::next(st, &mut self.input),
            };
            match step {
                Ok(Step::Packet(found)) => {
                    self.number += 1;
                    self.packets += 1;
                    return Ok(Some(RawPacket {
                        number: self.number,
                        ts_ns: found.ts_ns,
                        linktype: found.linktype,
                        orig_len: found.orig_len,
                        data: self.input.slice(found.start, found.len),
                    }));
                }
                Ok(Step::Skip) => {}
                Ok(Step::End) => {
                    self.done = true;
                    if let Some(d) = self.gz.as_ref().and_then(take_damage) {
                        let fault = Fault::lost(gzip_kind(d, None), self.input.offset(), false);
                        if let Some(err) = self.fault(fault) {
                            return Err(err);
                        }
                    }
                }
                Err(mut fault) => {
                    // A record cut short because the gzip stream broke: say so.
                    if let PcapErrorKind::Truncated { need, have, .. } = fault.kind {
                        if let Some(d) = self.gz.as_ref().and_then(take_damage) {
                            fault.kind = gzip_kind(d, Some((need, have)));
                        }
                    }
                    if let Some(err) = self.fault(fault) {
                        return Err(err);
                    }
                }
            }
        }
    }

    /// Counts a damaged record (lenient) or turns it into an error (strict, or I/O failure).
    #[cold]
    fn fault(&mut self, fault: Fault) -> Option<PcapError> {
        let offset = fault.offset;
        let (location, at) = if fault.packet {
            self.number += 1;
            let number = self.number;
            (Location::Packet(number), SkipAt::Packet { number, offset })
        } else {
            let next_packet = self.number + 1;
            (
                Location::Block { next_packet },
                SkipAt::Block {
                    offset,
                    next_packet,
                },
            )
        };
        let is_io = matches!(fault.kind, PcapErrorKind::Io(_));
        if !self.lenient || is_io {
            if fault.framing_lost {
                self.done = true;
            }
            return Some(PcapError {
                source_name: self.source.clone(),
                location,
                offset: fault.offset,
                kind: fault.kind,
            });
        }
        let mut message = fault.kind.to_string();
        let input_ended = matches!(
            fault.kind,
            PcapErrorKind::Truncated { .. } | PcapErrorKind::Gzip { .. }
        );
        if matches!(fault.kind, PcapErrorKind::Gzip { .. }) {
            self.done = true;
            self.skipped.stop_at(offset);
        } else if input_ended {
            self.done = true;
        } else if fault.framing_lost {
            match self.resync(offset) {
                Ok(a) => {
                    use fmt::Write as _;
                    let _ = if a.resumed {
                        write!(
                            message,
                            "; bytes {}..{} abandoned ({} bytes), reading resumed at byte offset {}",
                            a.from,
                            a.to,
                            a.bytes(),
                            a.to
                        )
                    } else {
                        write!(
                            message,
                            "; no intact record after it: bytes {}..{} abandoned ({} bytes)",
                            a.from,
                            a.to,
                            a.bytes()
                        )
                    };
                }
                Err(e) => {
                    self.done = true;
                    return Some(PcapError {
                        source_name: self.source.clone(),
                        location,
                        offset: self.input.offset(),
                        kind: PcapErrorKind::Io(e),
                    });
                }
            }
        }
        self.skipped.record(at, fault.kind.reason(), message);
        if self.done && !input_ended {
            self.skipped.stop_at(offset);
            // The scan may have run into a broken gzip stream: report that too.
            if let Some(d) = self.gz.as_ref().and_then(take_damage) {
                let end = self.input.offset();
                let at = SkipAt::Block {
                    offset: end,
                    next_packet: self.number + 1,
                };
                let kind = gzip_kind(d, None);
                self.skipped.record(at, kind.reason(), kind.to_string());
            }
        }
        None
    }

    /// Lenient reading after a record whose length cannot be trusted: scans forward from just
    /// past `from` to the next plausible record and notes the abandoned bytes.
    #[cold]
    fn resync(&mut self, from: u64) -> io::Result<Abandoned> {
        let at = self.input.offset();
        if at <= from {
            self.input.skip(from + 1 - at)?;
        }
        let found = match &mut self.format {
            Format::Classic(h) => classic::resync(h, &mut self.input)?,
            Format::Pcapng(st) => pcapng::resync(st, &mut self.input)?,
        };
        let a = Abandoned {
            from,
            to: self.input.offset(),
            resumed: found,
            next_packet: self.number + 1,
        };
        if !found {
            self.done = true;
        }
        self.abandoned_count += 1;
        self.abandoned_bytes += a.bytes();
        if self.abandoned.len() < ABANDONED_KEPT {
            self.abandoned.push(a);
        }
        Ok(a)
    }

    /// Byte ranges lenient reading abandoned to resynchronise after damage (the first
    /// [`ABANDONED_KEPT`]; see [`CaptureReader::abandoned_total`] for all).
    pub fn abandoned(&self) -> &[Abandoned] {
        &self.abandoned
    }

    /// How many ranges were abandoned, and their bytes in all.
    pub fn abandoned_total(&self) -> (u64, u64) {
        (self.abandoned_count, self.abandoned_bytes)
    }

    /// Packets returned so far.
    pub fn packets_read(&self) -> u64 {
        self.packets
    }

    /// Damaged records skipped so far (lenient mode; always empty in strict mode).
    pub fn skipped(&self) -> &Skipped {
        &self.skipped
    }

    /// The name used in messages.
    pub fn source_name(&self) -> &str {
        &self.source
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        match &self.format {
            Format::Classic(h) => CaptureFormat::Pcap {
                nanos: h.frac_ns == 1,
                big_endian: h.big,
            },
            Format::Pcapng(_) => CaptureFormat::Pcapng,
        }
    }

    /// The link type of a classic file, or of the first pcapng interface described so far.
    pub fn linktype(&self) -> Option<u32> {
        match &self.format {
            Format::Classic(h) => Some(h.linktype),
            Format::Pcapng(st) => st.first_linktype,
        }
    }
}

/// Takes what a gzip decoder noted, if anything.
fn take_damage(slot: &DamageSlot) -> Option<gz::GzDamage> {
    slot.lock().ok().and_then(|mut d| d.take())
}

fn gzip_kind(d: gz::GzDamage, cut: Option<(usize, usize)>) -> PcapErrorKind {
    PcapErrorKind::Gzip {
        compressed_offset: d.compressed_offset,
        truncated: d.truncated,
        message: d.message,
        cut,
    }
}

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("source", &self.source)
            .field("format", &self.format())
            .field("packets_read", &self.packets)
            .field("offset", &self.input.offset())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
