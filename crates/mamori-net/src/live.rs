//! Live capture from a network interface through libpcap.
//!
//! The capture filter is compiled by libpcap into BPF and runs in the kernel, so traffic the
//! detector does not want never reaches user space. Reads wake up at least every
//! [`READ_TIMEOUT_MS`] so that a stop flag (set from a signal handler or another thread) ends the
//! capture promptly even on an idle interface. libpcap's own read timeout cannot do that on Linux
//! (with TPACKET_V3 a read blocks until a packet arrives), so the capture is non-blocking and
//! waits in `poll(2)` with the timeout.
//!
//! Capturing needs `CAP_NET_RAW` (root, or `setcap cap_net_raw,cap_net_admin=eip` on the binary).

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mamori_ingest::pcap::RawPacket;

/// How long one read waits for packets before checking the stop flag.
pub const READ_TIMEOUT_MS: i32 = 100;

/// Why a live capture could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No interface of that name.
    #[error("no network interface `{interface}` (available: {available})")]
    NoSuchInterface {
        /// The name asked for.
        interface: String,
        /// The interfaces libpcap lists, comma-separated.
        available: String,
    },
    /// libpcap could not compile or install the filter.
    #[error("bad capture filter `{filter}`: {message}")]
    BadFilter {
        /// The filter expression.
        filter: String,
        /// libpcap's message.
        message: String,
    },
    /// The interface exists but capturing on it failed to start (often: not root).
    #[error("cannot capture on `{interface}`: {message}")]
    Open {
        /// The interface.
        interface: String,
        /// libpcap's message.
        message: String,
    },
    /// Reading from a running capture failed (e.g. the interface went away).
    #[error("capture on `{interface}` failed: {message}")]
    Read {
        /// The interface.
        interface: String,
        /// libpcap's message.
        message: String,
    },
}

/// Packet counters of a running capture, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets received by the filter (libpcap `ps_recv`).
    pub received: u64,
    /// Packets dropped because the kernel buffer was full: the reader was too slow.
    pub dropped_by_kernel: u64,
    /// Packets dropped by the interface or its driver.
    pub dropped_by_interface: u64,
}

/// A capture on one interface.
///
/// Each packet is copied once out of libpcap's ring into a reused buffer: that lets
/// [`PacketCapture::next_packet`] retry after a read timeout and still lend the packet out, at the
/// cost of a copy of at most the snap length.
pub struct PacketCapture {
    cap: pcap::Capture<pcap::Active>,
    interface: String,
    linktype: u32,
    stop: Arc<AtomicBool>,
    buf: Vec<u8>,
    number: u64,
}

fn message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}

impl PacketCapture {
    /// Starts capturing on `interface` (`any` for all, on Linux), keeping the first `snaplen`
    /// bytes of each packet that passes `filter` (tcpdump syntax).
    pub fn open(
        interface: &str,
        filter: Option<&str>,
        snaplen: u32,
        promisc: bool,
    ) -> Result<Self, LiveError> {
        let snaplen = i32::try_from(snaplen.max(64)).unwrap_or(i32::MAX);
        let opened = pcap::Capture::from_device(interface).and_then(|c| {
            c.snaplen(snaplen)
                .promisc(promisc)
                .timeout(READ_TIMEOUT_MS)
                .open()
        });
        let mut cap = match opened {
            Ok(cap) => cap,
            Err(e) => return Err(open_error(interface, &e)),
        };
        if let Some(filter) = filter {
            cap.filter(filter, true).map_err(|e| LiveError::BadFilter {
                filter: filter.to_string(),
                message: message(&e),
            })?;
        }
        let cap = cap.setnonblock().map_err(|e| LiveError::Open {
            interface: interface.to_string(),
            message: message(&e),
        })?;
        // DLT and LINKTYPE values agree for every link type the decoder knows, except raw IP,
        // whose DLT (12 or 14) the decoder also accepts.
        let linktype = u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX);
        Ok(PacketCapture {
            cap,
            interface: interface.to_string(),
            linktype,
            stop: Arc::new(AtomicBool::new(false)),
            buf: Vec::with_capacity(snaplen as usize),
            number: 0,
        })
    }

    /// The flag that ends the capture: once it is set, [`PacketCapture::next_packet`] returns
    /// `Ok(None)` within about [`READ_TIMEOUT_MS`].
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Uses `stop` (e.g. the process's shutdown flag) as this capture's stop flag.
    pub fn set_stop_flag(&mut self, stop: Arc<AtomicBool>) {
        self.stop = stop;
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface's link type.
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The next packet, waiting for one; `Ok(None)` once the stop flag is set.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, LiveError> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            match self.cap.next_packet() {
                Ok(p) => {
                    let h = p.header;
                    let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
                    let micros = u64::try_from(h.ts.tv_usec).unwrap_or(0);
                    let ts_ns = secs
                        .saturating_mul(1_000_000_000)
                        .saturating_add(micros.saturating_mul(1000));
                    let orig_len = h.len;
                    self.buf.clear();
                    self.buf.extend_from_slice(p.data);
                    self.number += 1;
                    return Ok(Some(RawPacket {
                        number: self.number,
                        ts_ns,
                        linktype: self.linktype,
                        orig_len,
                        data: &self.buf,
                    }));
                }
                Err(pcap::Error::TimeoutExpired) => self.wait_readable(),
                Err(e) => {
                    return Err(LiveError::Read {
                        interface: self.interface.clone(),
                        message: message(&e),
                    })
                }
            }
        }
    }

    /// Waits until the capture has packets or [`READ_TIMEOUT_MS`] passed (an interrupted or
    /// failed wait just returns: the caller reads and checks the stop flag again).
    fn wait_readable(&self) {
        let mut fds = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `fds` is one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut fds, 1, READ_TIMEOUT_MS) };
    }

    /// Counters since the capture started.
    pub fn stats(&mut self) -> Result<CaptureStats, LiveError> {
        let s = self.cap.stats().map_err(|e| LiveError::Read {
            interface: self.interface.clone(),
            message: message(&e),
        })?;
        Ok(CaptureStats {
            received: u64::from(s.received),
            dropped_by_kernel: u64::from(s.dropped),
            dropped_by_interface: u64::from(s.if_dropped),
        })
    }
}

impl std::fmt::Debug for PacketCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketCapture")
            .field("interface", &self.interface)
            .field("linktype", &self.linktype)
            .field("packets", &self.number)
            .finish_non_exhaustive()
    }
}

/// Tells a missing interface (listing the ones there are) from other failures to start.
fn open_error(interface: &str, e: &pcap::Error) -> LiveError {
    match pcap::Device::list() {
        Ok(devices) if !devices.iter().any(|d| d.name == interface) => {
            let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
            LiveError::NoSuchInterface {
                interface: interface.to_string(),
                available: if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
            }
        }
        _ => LiveError::Open {
            interface: interface.to_string(),
            message: message(e),
        },
    }
}
