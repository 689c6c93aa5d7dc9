//! One interface over capture files and live interfaces, so feature extraction and scoring run
//! the same code on a recorded `.pcap` and on a gateway's traffic.
//!
//! ```no_run
//! use mamori_net::packet::decode;
//! use mamori_net::source::{PacketSource, SourceError};
//!
//! fn count_tcp(source: &mut dyn PacketSource) -> Result<u64, SourceError> {
//!     let mut n = 0;
//!     while let Some(p) = source.next_packet()? {
//!         if decode(p.linktype, p.ts_ns, p.orig_len, p.data).is_ok_and(|m| m.ip_proto == 6) {
//!             n += 1;
//!         }
//!     }
//!     Ok(n)
//! }
//! let mut file = mamori_ingest::pcap::CaptureReader::open("cap.pcap".as_ref(), true)?;
//! println!("{} TCP packets in {}", count_tcp(&mut file)?, file.source_name());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use mamori_ingest::pcap::{CaptureReader, PcapError, RawPacket};

use crate::live::{LiveError, PacketCapture};

/// Why a [`PacketSource`] could not deliver a packet.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A capture file is damaged or unreadable.
    #[error(transparent)]
    File(#[from] PcapError),
    /// A live capture failed.
    #[error(transparent)]
    Live(#[from] LiveError),
}

/// Something packets come from, one at a time.
pub trait PacketSource {
    /// The next packet; `None` at the end of a file, or once a live capture is stopped. The
    /// packet borrows the source until the next call.
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, SourceError>;

    /// The file or interface name, for messages.
    fn name(&self) -> &str;
}

impl PacketSource for CaptureReader {
    #[inline]
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, SourceError> {
        Ok(CaptureReader::next_packet(self)?)
    }

    fn name(&self) -> &str {
        self.source_name()
    }
}

impl PacketSource for PacketCapture {
    #[inline]
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, SourceError> {
        Ok(PacketCapture::next_packet(self)?)
    }

    fn name(&self) -> &str {
        self.interface()
    }
}
