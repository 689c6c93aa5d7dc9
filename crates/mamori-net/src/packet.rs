//! Link/network/transport header decoding into [`PacketMeta`].
//!
//! [`decode`] reads only headers and never allocates, so it keeps up with the capture reader.
//! Captures made with a small snap length (the IoT data sets keep 58 bytes) cut headers short:
//! each field is filled when its bytes are there and left at its default otherwise, and lengths
//! come from the IP/UDP length fields, not from how much was captured. No input makes it panic.
//!
//! ```
//! use mamori_net::packet::{decode, linktype, AppProto, L3};
//!
//! // Ethernet + IPv4 + UDP to port 53, captured whole.
//! let mut frame = vec![0xff; 6];
//! frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
//! frame.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0, 192, 168, 1, 10, 8, 8, 8, 8]);
//! frame.extend_from_slice(&[0xc3, 0x50, 0, 53, 0, 20, 0, 0]);
//! frame.extend_from_slice(&[0; 12]);
//! let m = decode(linktype::ETHERNET, 7, frame.len() as u32, &frame).unwrap();
//! assert_eq!((m.l3, m.ip_proto, m.src_port, m.dst_port), (L3::Ipv4, 17, 50000, 53));
//! assert_eq!((m.payload_len, m.app), (12, AppProto::Dns));
//! assert_eq!(m.src_ip, Some("192.168.1.10".parse().unwrap()));
//! assert_eq!(m.src_mac, Some([2, 0, 0, 0, 0, 1]));
//! assert_eq!(decode(147, 0, 0, &[]).unwrap_err().to_string(), "unsupported link type 147");
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The packet types are defined in `mamori-core` (every component shares them); decoding is here.
pub use mamori_core::packet::{AppProto, Mac, PacketMeta, L3};

/// Link types [`decode`] understands (the `LINKTYPE_*` values of pcap files).
pub mod linktype {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet (with 802.1Q / 802.1ad VLAN tags).
    pub const ETHERNET: u32 = 1;
    /// Raw IP (some BSDs).
    pub const RAW_BSD_12: u32 = 12;
    /// Raw IP (some BSDs).
    pub const RAW_BSD_14: u32 = 14;
    /// Raw IP, version from the first nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: like [`NULL`] but the family is always big-endian.
    pub const LOOP: u32 = 108;
    /// Linux "cooked" capture (`tcpdump -i any`).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux "cooked" capture v2 (`tcpdump -i any` since libpcap 1.10).
    pub const LINUX_SLL2: u32 = 276;
}

/// A link type [`decode`] does not understand; the only way decoding fails, because a packet's
/// link type is fixed per file or interface and nothing in it can be read without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported link type {linktype}")]
pub struct DecodeError {
    /// The link type.
    pub linktype: u32,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

/// Decodes one captured packet's headers.
///
/// `orig_len` is the length on the wire (it becomes [`PacketMeta::wire_len`]); `data` the
/// captured bytes, possibly fewer. Truncated or malformed headers decode as far as their bytes
/// go; only an unknown `linktype` is an error.
///
/// Lengths: `payload_len` is the TCP/UDP payload (TCP: IP length minus IP and TCP headers; UDP:
/// the UDP length minus 8), or for other IP protocols and non-first fragments everything after
/// the IP headers; 0 without IP. When an IP length field is 0 (segmentation offload, IPv6
/// jumbograms) the wire length stands in.
///
/// IPv6 extension headers (hop-by-hop, routing, fragment, destination options, AH, mobility,
/// HIP, shim6) are walked to the transport header; `ip_proto` is the protocol found after them.
/// A fragment other than the first carries no ports.
#[inline]
pub fn decode(
    linktype: u32,
    ts_ns: u64,
    orig_len: u32,
    data: &[u8],
) -> Result<PacketMeta, DecodeError> {
    let mut m = PacketMeta {
        ts_ns,
        wire_len: orig_len,
        ..PacketMeta::default()
    };
    match linktype {
        linktype::ETHERNET => ethernet(&mut m, data),
        linktype::LINUX_SLL => sll(&mut m, data),
        linktype::LINUX_SLL2 => sll2(&mut m, data),
        linktype::RAW | linktype::RAW_BSD_12 | linktype::RAW_BSD_14 => raw_ip(&mut m, data, 0),
        linktype::NULL | linktype::LOOP => loopback(&mut m, data, linktype == linktype::LOOP),
        linktype::IPV4 => ipv4(&mut m, data, orig_len),
        linktype::IPV6 => ipv6(&mut m, data, orig_len),
        _ => return Err(DecodeError { linktype }),
    }
    Ok(m)
}

#[inline]
fn be16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

#[inline]
fn mac_at(d: &[u8], at: usize) -> Option<Mac> {
    let b = d.get(at..at + 6)?;
    Some([b[0], b[1], b[2], b[3], b[4], b[5]])
}

#[inline]
fn ipv4_at(d: &[u8], at: usize) -> Option<IpAddr> {
    let b = d.get(at..at + 4)?;
    Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
}

#[inline]
fn ipv6_at(d: &[u8], at: usize) -> Option<IpAddr> {
    let b: [u8; 16] = d.get(at..at + 16)?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(b)))
}

/// Bytes of the packet on the wire from offset `at` on.
#[inline]
fn wire_after(m: &PacketMeta, at: usize) -> u32 {
    m.wire_len
        .saturating_sub(u32::try_from(at).unwrap_or(u32::MAX))
}

#[inline]
fn ethernet(m: &mut PacketMeta, d: &[u8]) {
    m.dst_mac = mac_at(d, 0);
    m.src_mac = mac_at(d, 6);
    if let Some(ethertype) = be16(d, 12) {
        ether_payload(m, ethertype, d, 14);
    }
}

/// Dispatches on an EtherType whose payload starts at `at`, stepping over VLAN tags.
#[inline]
fn ether_payload(m: &mut PacketMeta, mut ethertype: u16, d: &[u8], mut at: usize) {
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        match be16(d, at + 2) {
            Some(inner) => ethertype = inner,
            None => return,
        }
        at += 4;
    }
    let rest = d.get(at..).unwrap_or(&[]);
    let wire = wire_after(m, at);
    match ethertype {
        ETHERTYPE_IPV4 => ipv4(m, rest, wire),
        ETHERTYPE_IPV6 => ipv6(m, rest, wire),
        ETHERTYPE_ARP => arp(m, rest),
        _ => {}
    }
}

/// Linux cooked capture v1: packet type, ARPHRD type, address length, 8 address bytes, protocol.
fn sll(m: &mut PacketMeta, d: &[u8]) {
    if be16(d, 2) == Some(1) && be16(d, 4) == Some(6) {
        m.src_mac = mac_at(d, 6);
    }
    if let Some(proto) = be16(d, 14) {
        ether_payload(m, proto, d, 16);
    }
}

/// Linux cooked capture v2: protocol, reserved, ifindex, ARPHRD type, packet type, address
/// length, 8 address bytes.
fn sll2(m: &mut PacketMeta, d: &[u8]) {
    if be16(d, 8) == Some(1) && d.get(11) == Some(&6) {
        m.src_mac = mac_at(d, 12);
    }
    if let Some(proto) = be16(d, 0) {
        ether_payload(m, proto, d, 20);
    }
}

fn raw_ip(m: &mut PacketMeta, d: &[u8], at: usize) {
    let rest = d.get(at..).unwrap_or(&[]);
    let wire = wire_after(m, at);
    match rest.first().map(|b| b >> 4) {
        Some(4) => ipv4(m, rest, wire),
        Some(6) => ipv6(m, rest, wire),
        _ => {}
    }
}

/// BSD loopback: the address family is in the capturing host's byte order, so a value that does
/// not fit in 16 bits was written in the other order.
fn loopback(m: &mut PacketMeta, d: &[u8], big_endian: bool) {
    let Some(b) = d.get(..4) else { return };
    let bytes = [b[0], b[1], b[2], b[3]];
    let mut family = if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    };
    if family > 0xFFFF {
        family = family.swap_bytes();
    }
    let rest = &d[4..];
    let wire = wire_after(m, 4);
    match family {
        2 => ipv4(m, rest, wire),
        // AF_INET6: Linux 10, Windows 23, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30.
        10 | 23 | 24 | 28 | 30 => ipv6(m, rest, wire),
        _ => {}
    }
}

fn arp(m: &mut PacketMeta, d: &[u8]) {
    m.l3 = L3::Arp;
    let (Some(ptype), Some(&hlen), Some(&plen)) = (be16(d, 2), d.get(4), d.get(5)) else {
        return;
    };
    if ptype == ETHERTYPE_IPV4 && plen == 4 {
        let hlen = usize::from(hlen);
        m.src_ip = ipv4_at(d, 8 + hlen);
        m.dst_ip = ipv4_at(d, 8 + 2 * hlen + 4);
    }
}

/// IPv4 at the start of `d`; `wire` is the packet's length on the wire from here.
#[inline]
fn ipv4(m: &mut PacketMeta, d: &[u8], wire: u32) {
    m.l3 = L3::Ipv4;
    if d.len() < 20 {
        m.ip_proto = d.get(9).copied().unwrap_or(0);
        m.src_ip = ipv4_at(d, 12);
        return;
    }
    m.ip_proto = d[9];
    m.src_ip = ipv4_at(d, 12);
    m.dst_ip = ipv4_at(d, 16);
    let ihl = usize::from(d[0] & 0x0F) * 4;
    if ihl < 20 {
        return;
    }
    let total = u32::from(u16::from_be_bytes([d[2], d[3]]));
    let ip_len = if total == 0 { wire } else { total };
    let l4_len = ip_len.saturating_sub(ihl as u32);
    let frag_offset = u16::from_be_bytes([d[6], d[7]]) & 0x1FFF;
    if frag_offset != 0 {
        m.payload_len = l4_len;
        return;
    }
    transport(m, d.get(ihl..).unwrap_or(&[]), l4_len);
}

/// IPv6 at the start of `d`, walking extension headers; `wire` is the length from here.
#[inline]
fn ipv6(m: &mut PacketMeta, d: &[u8], wire: u32) {
    m.l3 = L3::Ipv6;
    m.src_ip = ipv6_at(d, 8);
    m.dst_ip = ipv6_at(d, 24);
    if d.len() < 40 {
        m.ip_proto = d.get(6).copied().unwrap_or(0);
        return;
    }
    let plen = u32::from(u16::from_be_bytes([d[4], d[5]]));
    let mut left = if plen == 0 {
        wire.saturating_sub(40)
    } else {
        plen
    };
    let mut next = d[6];
    let mut at = 40;
    // Each extension header is at least 8 bytes, so this ends; the bound is for clarity.
    for _ in 0..32 {
        let len = match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: 8-octet units.
            0 | 43 | 60 | 135 | 139 | 140 => match d.get(at + 1) {
                Some(&l) => (usize::from(l) + 1) * 8,
                None => break,
            },
            // Authentication header: 4-octet units, minus 2.
            51 => match d.get(at + 1) {
                Some(&l) => (usize::from(l) + 2) * 4,
                None => break,
            },
            44 => {
                let Some(offset) = be16(d, at + 2) else { break };
                if offset >> 3 != 0 {
                    // Not the first fragment: the transport header is in an earlier one.
                    m.ip_proto = d[at];
                    m.payload_len = left.saturating_sub(8);
                    return;
                }
                8
            }
            _ => {
                m.ip_proto = next;
                transport(m, d.get(at..).unwrap_or(&[]), left);
                return;
            }
        };
        next = d[at];
        at += len;
        left = left.saturating_sub(len as u32);
    }
    // Cut short inside the extension headers: the protocol is the header not reached.
    m.ip_proto = next;
    m.payload_len = left;
}

/// The transport header at the start of `d`; `l4_len` is its length (header included) as sent.
#[inline]
fn transport(m: &mut PacketMeta, d: &[u8], l4_len: u32) {
    match m.ip_proto {
        PROTO_TCP => {
            if let (Some(sport), Some(dport)) = (be16(d, 0), be16(d, 2)) {
                m.src_port = sport;
                m.dst_port = dport;
            }
            m.tcp_flags = d.get(13).copied().unwrap_or(0);
            let header = match d.get(12) {
                Some(&off) => (u32::from(off >> 4) * 4).max(20),
                None => 20,
            };
            m.payload_len = l4_len.saturating_sub(header);
        }
        PROTO_UDP => {
            if let (Some(sport), Some(dport)) = (be16(d, 0), be16(d, 2)) {
                m.src_port = sport;
                m.dst_port = dport;
            }
            m.payload_len = match be16(d, 4) {
                Some(ulen) if ulen >= 8 => u32::from(ulen) - 8,
                _ => l4_len.saturating_sub(8),
            };
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            m.icmp_type = d.first().copied().unwrap_or(0);
            m.payload_len = l4_len;
        }
        _ => m.payload_len = l4_len,
    }
    if m.src_port != 0 || m.dst_port != 0 {
        m.app = app_for_ports(m.ip_proto, m.src_port, m.dst_port);
    }
}

/// The application protocol of one well-known port for a transport protocol.
///
/// Protocols that only run over one transport are matched on it alone (SSDP, mDNS, NTP, DHCP over
/// UDP; Telnet, MQTT, HTTP over TCP); DNS and HTTPS (QUIC) on either.
#[inline]
pub fn app_for_port(ip_proto: u8, port: u16) -> AppProto {
    let udp = ip_proto == PROTO_UDP;
    let tcp = ip_proto == PROTO_TCP;
    match port {
        53 if tcp || udp => AppProto::Dns,
        5353 if udp => AppProto::Mdns,
        1900 if udp => AppProto::Ssdp,
        23 | 2323 if tcp => AppProto::Telnet,
        1883 | 8883 if tcp => AppProto::Mqtt,
        80 | 8080 if tcp => AppProto::Http,
        443 if tcp || udp => AppProto::Https,
        123 if udp => AppProto::Ntp,
        67 | 68 if udp => AppProto::Dhcp,
        _ => AppProto::Unknown,
    }
}

/// The application protocol of a packet by its ports: when both ports are known ones, the lower
/// port wins (a client's ephemeral port can collide with a service port, the lower is the
/// service more often).
#[inline]
pub fn app_for_ports(ip_proto: u8, src_port: u16, dst_port: u16) -> AppProto {
    let (low, high) = if src_port <= dst_port {
        (src_port, dst_port)
    } else {
        (dst_port, src_port)
    };
    match app_for_port(ip_proto, low) {
        AppProto::Unknown => app_for_port(ip_proto, high),
        app => app,
    }
}

#[cfg(test)]
mod tests;
