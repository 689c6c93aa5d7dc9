//! What one captured packet tells a detector: headers only, no payload bytes. Decoding lives in
//! `mamori-net` (`mamori_net::packet::decode`); the type is here because every component that
//! handles traffic — features, labels, the agent — shares it.

use std::net::IpAddr;

/// A MAC address.
pub type Mac = [u8; 6];

/// What one captured packet tells the detector: headers only, no payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketMeta {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire (the original length, not the captured length): the packet's airtime.
    pub wire_len: u32,
    /// Ethernet source, when the link layer has one.
    pub src_mac: Option<Mac>,
    /// Ethernet destination, when the link layer has one.
    pub dst_mac: Option<Mac>,
    /// Network layer.
    pub l3: L3,
    /// IP source (also ARP's sender protocol address).
    pub src_ip: Option<IpAddr>,
    /// IP destination (also ARP's target protocol address).
    pub dst_ip: Option<IpAddr>,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6); 0 when not IP.
    pub ip_proto: u8,
    /// Transport source port (0 when none).
    pub src_port: u16,
    /// Transport destination port (0 when none).
    pub dst_port: u16,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20); 0 otherwise.
    pub tcp_flags: u8,
    /// ICMP/ICMPv6 type (0 otherwise).
    pub icmp_type: u8,
    /// Transport payload length as sent (from the IP/UDP lengths, so also right when truncated).
    pub payload_len: u32,
    /// Application protocol guessed from well-known ports on either side.
    pub app: AppProto,
}

/// Network layer of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L3 {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// ARP.
    Arp,
    /// Anything else (the EtherType), or no network layer decoded.
    #[default]
    Other,
}

/// Application protocols the features count (by well-known port, either direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum AppProto {
    /// None recognised.
    #[default]
    Unknown,
    /// DNS (53).
    Dns,
    /// mDNS (5353).
    Mdns,
    /// SSDP (UDP 1900).
    Ssdp,
    /// Telnet (23, 2323: the ports Mirai scans).
    Telnet,
    /// MQTT (1883) and MQTT over TLS (8883).
    Mqtt,
    /// HTTP (80, 8080).
    Http,
    /// HTTPS (443).
    Https,
    /// NTP (123).
    Ntp,
    /// DHCP (67, 68).
    Dhcp,
}
