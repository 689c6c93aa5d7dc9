//! Hand-built frames for every link type and header variant [`decode`] handles.

use super::*;
use proptest::prelude::*;

const MAC_A: Mac = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: Mac = [0x02, 0, 0, 0, 0, 0x0b];
const IP_A: [u8; 4] = [192, 168, 1, 10];
const IP_B: [u8; 4] = [52, 89, 250, 177];

fn ip6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[15] = last;
    a
}

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header (no options unless `ihl_words` > 5) followed by `payload`.
fn ipv4(proto: u8, frag: u16, ihl_words: u8, payload: &[u8]) -> Vec<u8> {
    let ihl = usize::from(ihl_words) * 4;
    let total = (ihl + payload.len()) as u16;
    let mut h = vec![0x40 | ihl_words, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&IP_A);
    h.extend_from_slice(&IP_B);
    h.resize(ihl, 1); // options: NOPs
    h.extend_from_slice(payload);
    h
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&ip6(1));
    h.extend_from_slice(&ip6(2));
    h.extend_from_slice(payload);
    h
}

fn tcp(sport: u16, dport: u16, flags: u8, payload_len: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&[0x80, flags]); // data offset 8 words: 12 bytes of options
    h.extend_from_slice(&[0; 6]);
    h.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.resize(32 + payload_len, 0xaa);
    h
}

fn udp(sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.resize(8 + payload_len, 0xbb);
    h
}

fn dec(linktype: u32, frame: &[u8]) -> PacketMeta {
    decode(linktype, 42, frame.len() as u32, frame).unwrap()
}

fn v4(a: [u8; 4]) -> Option<IpAddr> {
    Some(IpAddr::from(a))
}

fn v6(a: [u8; 16]) -> Option<IpAddr> {
    Some(IpAddr::from(a))
}

#[test]
fn ethernet_ipv4_tcp() {
    let frame = ethernet(0x0800, &ipv4(6, 0x4000, 5, &tcp(51464, 8883, 0x18, 1445)));
    let m = dec(linktype::ETHERNET, &frame);
    let want = PacketMeta {
        ts_ns: 42,
        wire_len: frame.len() as u32,
        src_mac: Some(MAC_A),
        dst_mac: Some(MAC_B),
        l3: L3::Ipv4,
        src_ip: v4(IP_A),
        dst_ip: v4(IP_B),
        ip_proto: 6,
        src_port: 51464,
        dst_port: 8883,
        tcp_flags: 0x18,
        icmp_type: 0,
        payload_len: 1445,
        app: AppProto::Mqtt,
    };
    assert_eq!(m, want);
    // IPv4 options move the transport header.
    let frame = ethernet(0x0800, &ipv4(6, 0, 7, &tcp(80, 40000, 0x12, 0)));
    let m = dec(linktype::ETHERNET, &frame);
    assert_eq!((m.src_port, m.tcp_flags, m.payload_len), (80, 0x12, 0));
    assert_eq!(m.app, AppProto::Http);
}

#[test]
fn snaplen_cut_keeps_lengths_from_headers() {
    let full = ethernet(0x0800, &ipv4(6, 0, 5, &tcp(443, 50000, 0x10, 1000)));
    let wire = full.len() as u32;
    // 58 bytes, as the IoT captures keep: all of IPv4 + the first 24 bytes of TCP.
    let m = decode(linktype::ETHERNET, 1, wire, &full[..58]).unwrap();
    assert_eq!((m.wire_len, m.payload_len, m.tcp_flags), (wire, 1000, 0x10));
    assert_eq!(m.app, AppProto::Https);
    // Cut inside TCP: ports yes, flags no, payload still from the IP length (20-byte header
    // assumed when the data offset is missing).
    let m = decode(linktype::ETHERNET, 1, wire, &full[..14 + 20 + 6]).unwrap();
    assert_eq!((m.src_port, m.dst_port, m.tcp_flags), (443, 50000, 0));
    assert_eq!(m.payload_len, 1012);
    // Cut inside IPv4: protocol and source, no destination.
    let m = decode(linktype::ETHERNET, 1, wire, &full[..14 + 16]).unwrap();
    assert_eq!(
        (m.l3, m.ip_proto, m.src_ip, m.dst_ip),
        (L3::Ipv4, 6, v4(IP_A), None)
    );
    // Only the Ethernet header: the network layer is known, nothing else.
    let m = decode(linktype::ETHERNET, 1, wire, &full[..14]).unwrap();
    assert_eq!((m.l3, m.ip_proto, m.src_mac), (L3::Ipv4, 0, Some(MAC_A)));
    // Not even that.
    let m = decode(linktype::ETHERNET, 1, wire, &full[..13]).unwrap();
    assert_eq!(
        (m.l3, m.dst_mac, m.src_mac),
        (L3::Other, Some(MAC_B), Some(MAC_A))
    );
    assert_eq!(decode(linktype::ETHERNET, 1, 0, &[]).unwrap().l3, L3::Other);
}

#[test]
fn ip_length_zero_falls_back_to_wire_length() {
    // Segmentation offload: the kernel hands tcpdump a super-packet with total length 0.
    let mut frame = ethernet(0x0800, &ipv4(6, 0, 5, &tcp(1, 2, 0x10, 3000)));
    frame[16] = 0;
    frame[17] = 0;
    assert_eq!(dec(linktype::ETHERNET, &frame).payload_len, 3000);
}

#[test]
fn vlan_tags_single_and_stacked() {
    let inner = ipv4(17, 0, 5, &udp(5353, 5353, 30));
    let mut tagged = vec![0x00, 0x0a]; // VLAN 10
    tagged.extend_from_slice(&0x0800u16.to_be_bytes());
    tagged.extend_from_slice(&inner);
    let m = dec(linktype::ETHERNET, &ethernet(0x8100, &tagged));
    assert_eq!((m.l3, m.app, m.payload_len), (L3::Ipv4, AppProto::Mdns, 30));
    // 802.1ad outer tag, 802.1Q inner tag.
    let mut stacked = vec![0x00, 0x64];
    stacked.extend_from_slice(&0x8100u16.to_be_bytes());
    stacked.extend_from_slice(&tagged);
    let m = dec(linktype::ETHERNET, &ethernet(0x88a8, &stacked));
    assert_eq!((m.l3, m.src_port, m.src_ip), (L3::Ipv4, 5353, v4(IP_A)));
    // A tag cut short.
    let m = dec(linktype::ETHERNET, &ethernet(0x8100, &[0x00]));
    assert_eq!(m.l3, L3::Other);
}

#[test]
fn linux_cooked_v1_and_v2() {
    let l3 = ipv6(17, &udp(40000, 53, 20));
    // SLL: packet type, ARPHRD_ETHER, address length 6, address padded to 8, protocol.
    let mut sll = vec![0, 0, 0, 1, 0, 6];
    sll.extend_from_slice(&MAC_A);
    sll.extend_from_slice(&[0, 0, 0x86, 0xdd]);
    sll.extend_from_slice(&l3);
    let m = dec(linktype::LINUX_SLL, &sll);
    assert_eq!((m.l3, m.src_mac, m.dst_mac), (L3::Ipv6, Some(MAC_A), None));
    assert_eq!((m.src_ip, m.dst_ip), (v6(ip6(1)), v6(ip6(2))));
    assert_eq!(
        (m.ip_proto, m.dst_port, m.app, m.payload_len),
        (17, 53, AppProto::Dns, 20)
    );
    // SLL2: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, address length, address.
    let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6];
    sll2.extend_from_slice(&MAC_A);
    sll2.extend_from_slice(&[0, 0]);
    sll2.extend_from_slice(&l3);
    let m2 = dec(linktype::LINUX_SLL2, &sll2);
    assert_eq!(
        PacketMeta {
            wire_len: m.wire_len,
            ..m2
        },
        m
    );
    // A loopback (ARPHRD_LOOPBACK) interface has no MAC.
    sll[3] = 0x04;
    sll[2] = 0x03;
    assert_eq!(dec(linktype::LINUX_SLL, &sll).src_mac, None);
}

#[test]
fn raw_ip_link_types() {
    let v4_pkt = ipv4(1, 0, 5, &[8, 0, 0, 0, 0, 1, 0, 1]);
    let v6_pkt = ipv6(58, &[128, 0, 0, 0, 0, 1, 0, 1]);
    for lt in [linktype::RAW, linktype::RAW_BSD_12, linktype::RAW_BSD_14] {
        let m = dec(lt, &v4_pkt);
        assert_eq!((m.l3, m.icmp_type, m.payload_len), (L3::Ipv4, 8, 8));
        assert_eq!(m.src_mac, None);
        let m = dec(lt, &v6_pkt);
        assert_eq!((m.l3, m.ip_proto, m.icmp_type), (L3::Ipv6, 58, 128));
        assert_eq!(dec(lt, &[0x50, 0, 0]).l3, L3::Other);
    }
    assert_eq!(dec(linktype::IPV4, &v4_pkt).icmp_type, 8);
    assert_eq!(dec(linktype::IPV6, &v6_pkt).icmp_type, 128);
}

#[test]
fn bsd_loopback_either_byte_order() {
    let v4_pkt = ipv4(17, 0, 5, &udp(123, 123, 48));
    let v6_pkt = ipv6(6, &tcp(1, 23, 2, 0));
    for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        let mut f = family.to_vec();
        f.extend_from_slice(&v4_pkt);
        let m = dec(linktype::NULL, &f);
        assert_eq!((m.l3, m.app, m.payload_len), (L3::Ipv4, AppProto::Ntp, 48));
    }
    for af in [10u32, 24, 28, 30] {
        for family in [af.to_le_bytes(), af.to_be_bytes()] {
            let mut f = family.to_vec();
            f.extend_from_slice(&v6_pkt);
            let m = dec(linktype::NULL, &f);
            assert_eq!(
                (m.l3, m.app, m.tcp_flags),
                (L3::Ipv6, AppProto::Telnet, 2),
                "{af}"
            );
        }
    }
    let mut f = 24u32.to_be_bytes().to_vec();
    f.extend_from_slice(&v6_pkt);
    assert_eq!(dec(linktype::LOOP, &f).l3, L3::Ipv6);
    assert_eq!(dec(linktype::NULL, &[7, 0, 0, 0, 1]).l3, L3::Other);
    assert_eq!(dec(linktype::NULL, &[2, 0]).l3, L3::Other);
}

#[test]
fn arp_addresses() {
    let mut arp = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
    arp.extend_from_slice(&MAC_A);
    arp.extend_from_slice(&IP_A);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[192, 168, 1, 1]);
    let m = dec(linktype::ETHERNET, &ethernet(0x0806, &arp));
    assert_eq!(m.l3, L3::Arp);
    assert_eq!((m.src_ip, m.dst_ip), (v4(IP_A), v4([192, 168, 1, 1])));
    assert_eq!((m.ip_proto, m.payload_len), (0, 0));
    // Cut before the target address.
    let m = dec(linktype::ETHERNET, &ethernet(0x0806, &arp[..20]));
    assert_eq!((m.l3, m.src_ip, m.dst_ip), (L3::Arp, v4(IP_A), None));
}

#[test]
fn ipv6_extension_headers() {
    let t = tcp(50000, 443, 0x02, 10);
    // Hop-by-hop (8 bytes) → routing (16 bytes) → destination options (8 bytes) → TCP.
    let mut ext = vec![43, 0, 5, 2, 0, 0, 1, 0];
    ext.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0]);
    ext.extend_from_slice(&[0; 8]);
    ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    let mut payload = ext.clone();
    payload.extend_from_slice(&t);
    let m = dec(linktype::ETHERNET, &ethernet(0x86dd, &ipv6(0, &payload)));
    assert_eq!(
        (m.ip_proto, m.src_port, m.dst_port, m.tcp_flags),
        (6, 50000, 443, 2)
    );
    assert_eq!((m.payload_len, m.app), (10, AppProto::Https));
    // Authentication header: length in 4-octet units minus 2 (here 16 bytes).
    let mut ah = vec![17, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
    ah.extend_from_slice(&udp(1900, 1900, 100));
    let m = dec(linktype::ETHERNET, &ethernet(0x86dd, &ipv6(51, &ah)));
    assert_eq!(
        (m.ip_proto, m.app, m.payload_len),
        (17, AppProto::Ssdp, 100)
    );
    // Cut inside the extension headers: the protocol is the header not reached.
    let frame = ethernet(0x86dd, &ipv6(0, &payload));
    let m = decode(linktype::ETHERNET, 0, frame.len() as u32, &frame[..54 + 9]).unwrap();
    assert_eq!((m.ip_proto, m.src_port), (43, 0));
    // No next header.
    let m = dec(linktype::ETHERNET, &ethernet(0x86dd, &ipv6(59, &[0; 8])));
    assert_eq!((m.ip_proto, m.payload_len), (59, 8));
}

#[test]
fn fragments() {
    // IPv4: the first fragment (MF set, offset 0) has ports; later ones do not.
    let first = ethernet(0x0800, &ipv4(17, 0x2000, 5, &udp(5000, 53, 100)));
    let m = dec(linktype::ETHERNET, &first);
    assert_eq!((m.src_port, m.dst_port, m.app), (5000, 53, AppProto::Dns));
    let later = ethernet(0x0800, &ipv4(17, 0x0010, 5, &[0xcc; 64]));
    let m = dec(linktype::ETHERNET, &later);
    assert_eq!((m.ip_proto, m.src_port, m.dst_port), (17, 0, 0));
    assert_eq!((m.payload_len, m.app), (64, AppProto::Unknown));
    // IPv6 fragment header: offset in the top 13 bits of bytes 2-3.
    let mut frag = vec![17, 0, 0x00, 0x01, 0, 0, 0, 7];
    frag.extend_from_slice(&udp(5000, 53, 100));
    let m = dec(linktype::ETHERNET, &ethernet(0x86dd, &ipv6(44, &frag)));
    assert_eq!((m.ip_proto, m.src_port, m.app), (17, 5000, AppProto::Dns));
    let mut frag = vec![17, 0, 0x00, 0x08, 0, 0, 0, 7];
    frag.extend_from_slice(&[0xcc; 64]);
    let m = dec(linktype::ETHERNET, &ethernet(0x86dd, &ipv6(44, &frag)));
    assert_eq!((m.ip_proto, m.src_port, m.payload_len), (17, 0, 64));
}

#[test]
fn malformed_ipv4_header_length() {
    let mut pkt = ipv4(6, 0, 5, &tcp(1, 2, 2, 0));
    pkt[0] = 0x43; // IHL 3 words: impossible
    let m = dec(linktype::RAW, &pkt);
    assert_eq!(
        (m.l3, m.ip_proto, m.src_ip, m.dst_ip),
        (L3::Ipv4, 6, v4(IP_A), v4(IP_B))
    );
    assert_eq!((m.src_port, m.payload_len), (0, 0));
    pkt[0] = 0x4f; // 60-byte header, longer than the packet
    let m = dec(linktype::RAW, &pkt);
    assert_eq!((m.src_port, m.payload_len), (0, 0));
}

#[test]
fn icmp_types() {
    let m = dec(
        linktype::ETHERNET,
        &ethernet(0x0800, &ipv4(1, 0, 5, &[3, 3, 0, 0, 0, 0, 0, 0])),
    );
    assert_eq!((m.ip_proto, m.icmp_type, m.app), (1, 3, AppProto::Unknown));
    let m = dec(
        linktype::ETHERNET,
        &ethernet(0x86dd, &ipv6(58, &[135, 0, 0, 0])),
    );
    assert_eq!((m.ip_proto, m.icmp_type), (58, 135));
}

#[test]
fn application_by_port() {
    assert_eq!(app_for_ports(17, 5353, 53), AppProto::Dns);
    assert_eq!(app_for_ports(17, 53, 5353), AppProto::Dns);
    assert_eq!(app_for_ports(6, 8080, 443), AppProto::Https);
    assert_eq!(app_for_ports(6, 51000, 2323), AppProto::Telnet);
    assert_eq!(app_for_ports(6, 1883, 40000), AppProto::Mqtt);
    assert_eq!(app_for_ports(17, 68, 67), AppProto::Dhcp);
    assert_eq!(app_for_ports(17, 443, 50000), AppProto::Https);
    assert_eq!(app_for_ports(6, 1900, 40000), AppProto::Unknown);
    assert_eq!(app_for_ports(17, 80, 40000), AppProto::Unknown);
    assert_eq!(app_for_ports(1, 53, 53), AppProto::Unknown);
    assert_eq!(app_for_ports(6, 0, 0), AppProto::Unknown);
}

#[test]
fn unsupported_link_type() {
    let err = decode(147, 0, 0, &[1, 2, 3]).unwrap_err();
    assert_eq!(err, DecodeError { linktype: 147 });
    assert_eq!(err.to_string(), "unsupported link type 147");
}

#[test]
fn every_prefix_of_every_frame_decodes() {
    let mut ext = vec![44, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 1];
    ext.extend_from_slice(&tcp(1, 2, 3, 4));
    let frames = [
        (
            linktype::ETHERNET,
            ethernet(0x0800, &ipv4(6, 0, 6, &tcp(1, 2, 3, 4))),
        ),
        (linktype::ETHERNET, ethernet(0x86dd, &ipv6(0, &ext))),
        (
            linktype::ETHERNET,
            ethernet(0x8100, &[0, 1, 8, 6, 0, 1, 8, 0, 6, 4]),
        ),
        (
            linktype::LINUX_SLL2,
            [&[0x08, 0][..], &[0; 18], &ipv4(17, 0, 5, &udp(1, 2, 3))].concat(),
        ),
        (
            linktype::NULL,
            [
                &[30, 0, 0, 0][..],
                &ipv6(51, &[17, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
            ]
            .concat(),
        ),
    ];
    for (lt, frame) in frames {
        let full = decode(lt, 0, frame.len() as u32, &frame).unwrap();
        for cut in 0..frame.len() {
            let m = decode(lt, 0, frame.len() as u32, &frame[..cut]).unwrap();
            assert_eq!(m.wire_len, full.wire_len);
            // A prefix never reveals a different network layer than the whole frame.
            assert!(m.l3 == full.l3 || m.l3 == L3::Other, "{lt} cut {cut}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// No input makes `decode` panic, whatever the link type and claimed length.
    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..120),
                    lt in prop_oneof![Just(0u32), Just(1), Just(12), Just(14), Just(101),
                                      Just(108), Just(113), Just(228), Just(229), Just(276)],
                    orig_len in any::<u32>()) {
        let m = decode(lt, 1, orig_len, &data).unwrap();
        prop_assert_eq!(m.wire_len, orig_len);
    }

    /// Random bytes behind valid link and IP headers reach the deeper decoders.
    #[test]
    fn never_panics_behind_headers(tail in proptest::collection::vec(any::<u8>(), 0..80),
                                   proto in prop_oneof![Just(0u8), Just(6), Just(17), Just(44),
                                                        Just(51), Just(58), Just(60), Just(43)],
                                   v6 in any::<bool>()) {
        let frame = if v6 { ethernet(0x86dd, &ipv6(proto, &tail)) }
                    else { ethernet(0x0800, &ipv4(proto, 0, 5, &tail)) };
        let m = decode(linktype::ETHERNET, 0, frame.len() as u32, &frame).unwrap();
        prop_assert!(m.payload_len as usize <= 65_535);
    }
}
