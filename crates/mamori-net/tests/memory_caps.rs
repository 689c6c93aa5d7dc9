//! Hostile traffic cannot grow the extractors' state without bound: spoofed sources fill the
//! device map, spoofed ports the flow table; both are capped, and what was dropped is counted.

use std::net::{IpAddr, Ipv4Addr};

use mamori_net::features::{Extractor, FeatureConfig, FeatureKind, FeatureRow};
use mamori_net::packet::{AppProto, PacketMeta, L3};

fn syn(ts_ns: u64, src: u32, sport: u16) -> PacketMeta {
    PacketMeta {
        ts_ns,
        wire_len: 60,
        l3: L3::Ipv4,
        src_ip: Some(IpAddr::V4(Ipv4Addr::from(
            0x0A00_0000 | (src & 0x00FF_FFFF),
        ))),
        dst_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1))),
        ip_proto: 6,
        src_port: sport,
        dst_port: 80,
        tcp_flags: 0x02,
        app: AppProto::Http,
        ..PacketMeta::default()
    }
}

fn config(kind: FeatureKind) -> FeatureConfig {
    FeatureConfig {
        kind,
        ..FeatureConfig::default()
    }
}

#[test]
fn spoofed_sources_do_not_grow_the_device_map() {
    let cap = 1000;
    let mut x: Extractor = Extractor::new(&config(FeatureKind::Device));
    x.set_caps(cap, 1);
    let mut rows: Vec<FeatureRow> = Vec::new();
    let window = 10_000_000_000u64;
    let mut src = 1u32;
    // 20 windows of 1500 new sources each: 30,000 devices seen, never more than the cap plus
    // one window's worth held.
    for w in 0..20u64 {
        for i in 0..1500u64 {
            x.push(&syn(w * window + i * 1000, src, 40000), (), &mut rows);
            src += 1;
        }
        assert!(x.tracked() <= cap + 1500 + 1, "window {w}: {}", x.tracked());
    }
    x.finish(&mut rows);
    let e = x.evictions();
    assert!(e.devices > 25_000, "{e:?}");
    assert_eq!(e.untracked_packets, 0, "{e:?}");
    // Every source still had its row (and the victim one per window).
    assert_eq!(rows.len(), 30_000);

    // One window with far more sources than twice the cap: the rest are counted, not kept.
    let mut x: Extractor = Extractor::new(&config(FeatureKind::Device));
    x.set_caps(cap, 1);
    let mut rows: Vec<FeatureRow> = Vec::new();
    for i in 0..10_000u32 {
        x.push(&syn(u64::from(i), i + 1, 40000), (), &mut rows);
    }
    assert!(x.tracked() <= 2 * cap, "{}", x.tracked());
    assert!(
        x.evictions().untracked_packets > 7000,
        "{:?}",
        x.evictions()
    );
}

#[test]
fn spoofed_ports_do_not_grow_the_flow_table() {
    for kind in [FeatureKind::Flow, FeatureKind::Interval] {
        let cap = 1000;
        let mut x: Extractor = Extractor::new(&config(kind));
        x.set_caps(1, cap);
        let mut rows: Vec<FeatureRow> = Vec::new();
        // 50,000 half-open flows within one second: no timeout helps.
        for i in 0..50_000u32 {
            x.push(
                &syn(u64::from(i) * 10_000, 7, (i % 60_000) as u16 + 1),
                (),
                &mut rows,
            );
            assert!(x.tracked() <= cap);
        }
        x.finish(&mut rows);
        assert!(x.evictions().flows >= 49_000, "{:?}", x.evictions());
        if kind == FeatureKind::Flow {
            // Evicted flows are written, not lost.
            assert_eq!(rows.len(), 50_000);
        }
    }
}
