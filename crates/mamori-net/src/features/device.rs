//! Per-device time windows: what a monitor that only overhears traffic can measure (seed 001 §3-1).
//!
//! Each device (a MAC address, or an IP address) gets one row per window in which it sent at
//! least one packet. The seed's four features are there with their distributions: packet
//! inter-arrival time and packet size (airtime) as mean/std/min/max/p50/p90, packets per second
//! and the maximum packets in any one slot (per second by default). Added are what the IoT
//! literature shows separates attacks: how many hosts and ports a device talks to, TCP flag
//! ratios (SYN floods, scans answered by RST), and counts of DNS, telnet (Mirai), SSDP and more.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::dist::{Dist, STAT_NAMES};
use super::{FeatureRow, RowSink, RowTally};
use crate::packet::{AppProto, Mac, PacketMeta, L3};

/// How devices are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKey {
    /// Ethernet address (falls back to the IP address on links without one).
    Mac,
    /// IP address.
    Ip,
}

/// Window settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeviceConfig {
    /// Device identity.
    pub key: DeviceKey,
    /// Window length (ns); windows are aligned to multiples of it since the epoch.
    pub window_ns: u64,
    /// Slot for "maximum packets per unit time" (ns).
    pub slot_ns: u64,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            key: DeviceKey::Ip,
            window_ns: 10_000_000_000,
            slot_ns: 1_000_000_000,
        }
    }
}

/// A device's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum DeviceId {
    Mac(Mac),
    Ip(IpAddr),
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceId::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            DeviceId::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Application counters, in the order of [`APP_NAMES`].
const APPS: [AppProto; 7] = [
    AppProto::Dns,
    AppProto::Telnet,
    AppProto::Ssdp,
    AppProto::Mqtt,
    AppProto::Http,
    AppProto::Ntp,
    AppProto::Mdns,
];
const APP_NAMES: [&str; 7] = ["dns", "telnet", "ssdp", "mqtt", "http", "ntp", "mdns"];

/// The column names of device rows.
pub fn feature_names() -> Vec<String> {
    let mut names: Vec<String> = [
        "pkts_out",
        "pkts_in",
        "bytes_out",
        "bytes_in",
        "pps_out",
        "max_pps_out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for prefix in ["size_out", "iat_out"] {
        names.extend(STAT_NAMES.iter().map(|s| format!("{prefix}_{s}")));
    }
    names.extend(
        [
            "size_in_mean",
            "dst_hosts",
            "dst_ports",
            "src_hosts_in",
            "tcp_share_out",
            "udp_share_out",
            "icmp_share_out",
            "arp_out",
            "syn_ratio_out",
            "synack_ratio_out",
            "rst_ratio_out",
            "fin_ratio_out",
            "syn_in",
            "rst_in",
            "icmp_in",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    names.extend(APP_NAMES.iter().map(|s| format!("{s}_pkts")));
    names
}

/// One device's counters for the current window.
#[derive(Default)]
struct DeviceState<T> {
    pkts_out: u64,
    pkts_in: u64,
    bytes_out: u64,
    bytes_in: u64,
    size_out: Dist,
    iat_out: Dist,
    last_out_ns: Option<u64>,
    slot: u64,
    slot_pkts: u64,
    max_slot_pkts: u64,
    dst_hosts: HashSet<IpAddr>,
    dst_ports: HashSet<u16>,
    src_hosts_in: HashSet<IpAddr>,
    tcp_out: u64,
    udp_out: u64,
    icmp_out: u64,
    arp_out: u64,
    syn_out: u64,
    synack_out: u64,
    rst_out: u64,
    fin_out: u64,
    syn_in: u64,
    rst_in: u64,
    icmp_in: u64,
    apps: [u64; APPS.len()],
    /// The marks of the window's packets, either way.
    tally: T,
    /// Packets in this window either way (a row is written only if it sent any).
    touched: bool,
    /// The last window with packets of this device (for evicting idle devices).
    last_window: u64,
}

impl<T: RowTally> DeviceState<T> {
    fn reset_window(&mut self) {
        let last_out_ns = self.last_out_ns;
        let (mut a, mut b) = (
            std::mem::take(&mut self.size_out),
            std::mem::take(&mut self.iat_out),
        );
        let (mut h, mut p, mut s) = (
            std::mem::take(&mut self.dst_hosts),
            std::mem::take(&mut self.dst_ports),
            std::mem::take(&mut self.src_hosts_in),
        );
        a.reset();
        b.reset();
        h.clear();
        p.clear();
        s.clear();
        *self = DeviceState {
            size_out: a,
            iat_out: b,
            dst_hosts: h,
            dst_ports: p,
            src_hosts_in: s,
            last_out_ns,
            last_window: self.last_window,
            ..DeviceState::default()
        };
    }

    fn sent(&mut self, p: &PacketMeta, slot_ns: u64) {
        self.pkts_out += 1;
        self.bytes_out += u64::from(p.wire_len);
        self.size_out.add(f64::from(p.wire_len));
        if let Some(last) = self.last_out_ns {
            self.iat_out.add(p.ts_ns.saturating_sub(last) as f64 * 1e-9);
        }
        self.last_out_ns = Some(p.ts_ns);
        let slot = p.ts_ns / slot_ns;
        if slot != self.slot || self.slot_pkts == 0 {
            self.slot = slot;
            self.slot_pkts = 0;
        }
        self.slot_pkts += 1;
        self.max_slot_pkts = self.max_slot_pkts.max(self.slot_pkts);
        if let Some(dst) = p.dst_ip {
            self.dst_hosts.insert(dst);
        }
        match p.ip_proto {
            6 => {
                self.tcp_out += 1;
                self.dst_ports.insert(p.dst_port);
                let f = p.tcp_flags;
                if f & 0x02 != 0 {
                    if f & 0x10 != 0 {
                        self.synack_out += 1;
                    } else {
                        self.syn_out += 1;
                    }
                }
                if f & 0x04 != 0 {
                    self.rst_out += 1;
                }
                if f & 0x01 != 0 {
                    self.fin_out += 1;
                }
            }
            17 => {
                self.udp_out += 1;
                self.dst_ports.insert(p.dst_port);
            }
            1 | 58 => self.icmp_out += 1,
            _ => {}
        }
        if p.l3 == L3::Arp {
            self.arp_out += 1;
        }
    }

    fn received(&mut self, p: &PacketMeta) {
        self.pkts_in += 1;
        self.bytes_in += u64::from(p.wire_len);
        if let Some(src) = p.src_ip {
            self.src_hosts_in.insert(src);
        }
        match p.ip_proto {
            6 => {
                if p.tcp_flags & 0x12 == 0x02 {
                    self.syn_in += 1;
                }
                if p.tcp_flags & 0x04 != 0 {
                    self.rst_in += 1;
                }
            }
            1 | 58 => self.icmp_in += 1,
            _ => {}
        }
    }

    fn either(&mut self, p: &PacketMeta, mark: T::Mark) {
        self.touched = true;
        if let Some(i) = APPS.iter().position(|&a| a == p.app) {
            self.apps[i] += 1;
        }
        self.tally.add(mark);
    }

    fn values(&self, window_s: f64, slot_s: f64, out: &mut Vec<f64>) {
        let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        out.extend_from_slice(&[
            self.pkts_out as f64,
            self.pkts_in as f64,
            self.bytes_out as f64,
            self.bytes_in as f64,
            self.pkts_out as f64 / window_s,
            self.max_slot_pkts as f64 / slot_s,
        ]);
        self.size_out.write_stats(out);
        self.iat_out.write_stats(out);
        out.extend_from_slice(&[
            ratio(self.bytes_in, self.pkts_in),
            self.dst_hosts.len() as f64,
            self.dst_ports.len() as f64,
            self.src_hosts_in.len() as f64,
            ratio(self.tcp_out, self.pkts_out),
            ratio(self.udp_out, self.pkts_out),
            ratio(self.icmp_out, self.pkts_out),
            self.arp_out as f64,
            ratio(self.syn_out, self.tcp_out),
            ratio(self.synack_out, self.tcp_out),
            ratio(self.rst_out, self.tcp_out),
            ratio(self.fin_out, self.tcp_out),
            self.syn_in as f64,
            self.rst_in as f64,
            self.icmp_in as f64,
        ]);
        out.extend(self.apps.iter().map(|&n| n as f64));
    }
}

/// Devices remembered by default (see [`DeviceWindows::set_max_devices`]).
pub const MAX_DEVICES: usize = 65_536;

/// What the device memory cap cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceEvictions {
    /// Idle devices forgotten at a window's end (their next packet starts without the
    /// inter-arrival time from their last one).
    pub evicted: u64,
    /// Packets of new devices not counted because a single window already held twice the cap.
    pub untracked_packets: u64,
}

/// Turns packets into per-device window rows; `T` tallies the marks of each row's packets.
///
/// Memory is bounded: beyond [`MAX_DEVICES`] devices (spoofed sources, a scan), the devices idle
/// longest are forgotten at the end of a window; within one window at most twice that many are
/// tracked, further new devices' packets are counted as untracked ([`DeviceWindows::evictions`]).
pub struct DeviceWindows<T: RowTally = ()> {
    config: DeviceConfig,
    devices: HashMap<DeviceId, DeviceState<T>>,
    /// Devices with packets in the current window (so a flush does not walk every device).
    touched: Vec<DeviceId>,
    window: Option<u64>,
    n_features: usize,
    max_devices: usize,
    evictions: DeviceEvictions,
    /// A window in which the map was full of devices active in it.
    nothing_idle_in: Option<u64>,
}

impl<T: RowTally> DeviceWindows<T> {
    /// A new extractor.
    pub fn new(config: DeviceConfig) -> Self {
        DeviceWindows {
            config: DeviceConfig {
                window_ns: config.window_ns.max(1),
                slot_ns: config.slot_ns.clamp(1, config.window_ns.max(1)),
                ..config
            },
            devices: HashMap::new(),
            touched: Vec::new(),
            window: None,
            n_features: feature_names().len(),
            max_devices: MAX_DEVICES,
            evictions: DeviceEvictions::default(),
            nothing_idle_in: None,
        }
    }

    /// Changes the device cap (at least 1).
    pub fn set_max_devices(&mut self, max: usize) {
        self.max_devices = max.max(1);
    }

    /// Devices currently remembered.
    pub fn tracked_devices(&self) -> usize {
        self.devices.len()
    }

    /// What the memory cap cost so far.
    pub fn evictions(&self) -> DeviceEvictions {
        self.evictions
    }

    /// Adds a packet (with its mark, tallied by the rows of its sender and receiver); rows of
    /// windows it closes go to `out`.
    ///
    /// A packet older than the current window (captures merged from several interfaces are not
    /// perfectly ordered) is counted in the current window.
    pub fn push(&mut self, p: &PacketMeta, mark: T::Mark, out: &mut impl RowSink<T>) {
        let w = p.ts_ns / self.config.window_ns;
        match self.window {
            Some(cur) if w > cur => {
                self.flush(out);
                self.window = Some(w);
            }
            None => self.window = Some(w),
            _ => {}
        }
        let (src, dst) = self.ids(p);
        if let Some(id) = src {
            let slot_ns = self.config.slot_ns;
            if let Some(d) = self.state(id) {
                d.sent(p, slot_ns);
                d.either(p, mark);
            }
        }
        if let Some(id) = dst {
            if Some(id) != src {
                if let Some(d) = self.state(id) {
                    d.received(p);
                    d.either(p, mark);
                }
            }
        }
    }

    /// Writes the rows of the last, partial window.
    pub fn finish(&mut self, out: &mut impl RowSink<T>) {
        self.flush(out);
        self.window = None;
    }

    fn state(&mut self, id: DeviceId) -> Option<&mut DeviceState<T>> {
        let hard = self.max_devices.saturating_mul(2);
        if self.devices.len() >= hard && !self.devices.contains_key(&id) {
            let w = self.window.unwrap_or(0);
            // Idle devices go first; once none is left, the rest of the window is untracked
            // (without looking again at every packet).
            if self.nothing_idle_in != Some(w) {
                self.evict_idle(w);
                if self.devices.len() >= hard {
                    self.nothing_idle_in = Some(w);
                }
            }
            if self.devices.len() >= hard {
                self.evictions.untracked_packets += 1;
                return None;
            }
        }
        let d = self.devices.entry(id).or_default();
        if !d.touched {
            self.touched.push(id);
        }
        d.last_window = self.window.unwrap_or(0);
        Some(d)
    }

    /// Forgets the devices idle longest until at most 7/8 of the cap remain (in batches, so the
    /// sort is paid rarely). Devices of the window just written are kept.
    fn evict_idle(&mut self, current: u64) {
        let keep = self.max_devices - self.max_devices / 8;
        let mut idle: Vec<(u64, String, DeviceId)> = self
            .devices
            .iter()
            .filter(|(_, d)| d.last_window < current)
            .map(|(id, d)| (d.last_window, id.to_string(), *id))
            .collect();
        // Oldest first; ties by name so the result does not depend on hash order.
        idle.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let excess = self.devices.len().saturating_sub(keep).min(idle.len());
        for (_, _, id) in idle.into_iter().take(excess) {
            self.devices.remove(&id);
            self.evictions.evicted += 1;
        }
    }

    fn ids(&self, p: &PacketMeta) -> (Option<DeviceId>, Option<DeviceId>) {
        let by_ip = |ip: Option<IpAddr>| ip.filter(is_unicast).map(DeviceId::Ip);
        match self.config.key {
            DeviceKey::Ip => (by_ip(p.src_ip), by_ip(p.dst_ip)),
            DeviceKey::Mac => {
                let by_mac = |mac: Option<Mac>, ip| match mac {
                    Some(m) if m[0] & 1 == 0 => Some(DeviceId::Mac(m)),
                    Some(_) => None,
                    None => by_ip(ip),
                };
                (by_mac(p.src_mac, p.src_ip), by_mac(p.dst_mac, p.dst_ip))
            }
        }
    }

    fn flush(&mut self, out: &mut impl RowSink<T>) {
        let Some(w) = self.window else { return };
        let start_ns = w * self.config.window_ns;
        let window_s = self.config.window_ns as f64 * 1e-9;
        let slot_s = self.config.slot_ns as f64 * 1e-9;
        // Sorted so output does not depend on hash order.
        self.touched.sort_by_key(|id| id.to_string());
        for id in self.touched.drain(..) {
            let Some(d) = self.devices.get_mut(&id) else {
                continue;
            };
            if d.pkts_out > 0 {
                let mut values = Vec::with_capacity(self.n_features);
                d.values(window_s, slot_s, &mut values);
                let row = FeatureRow {
                    entity: id.to_string(),
                    start_ns,
                    end_ns: start_ns + self.config.window_ns,
                    packets: d.pkts_out + d.pkts_in,
                    values,
                };
                out.put(row, std::mem::take(&mut d.tally));
            }
            d.reset_window();
        }
        if self.devices.len() > self.max_devices {
            self.evict_idle(w);
        }
    }
}

/// Broadcast, multicast and unspecified addresses are not devices.
fn is_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified()),
        IpAddr::V6(v6) => !(v6.is_multicast() || v6.is_unspecified()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::tests::tcp;
    use crate::labels::RowLabel;

    #[test]
    fn seed_features_of_a_known_stream() {
        let mut dw = DeviceWindows::<RowLabel>::new(DeviceConfig::default());
        let mut rows: Vec<(FeatureRow, RowLabel)> = Vec::new();
        // 10.0.0.2 sends 5 packets of 100 bytes, 0.5 s apart, starting at t=10 s; one reply.
        for i in 0..5u64 {
            let p = tcp(
                10_000_000_000 + i * 500_000_000,
                "10.0.0.2",
                "10.0.0.9",
                0x02,
                100,
            );
            dw.push(&p, None, &mut rows);
        }
        dw.push(
            &tcp(12_100_000_000, "10.0.0.9", "10.0.0.2", 0x04, 60),
            Some(0),
            &mut rows,
        );
        assert!(rows.is_empty(), "window still open");
        dw.finish(&mut rows);
        assert_eq!(rows.len(), 2);
        let names = feature_names();
        let get = |r: &FeatureRow, n: &str| r.values[names.iter().position(|x| x == n).unwrap()];
        let (r, label) = rows.iter().find(|r| r.0.entity == "10.0.0.2").unwrap();
        assert_eq!(r.start_ns, 10_000_000_000);
        assert_eq!(get(r, "pkts_out"), 5.0);
        assert_eq!(get(r, "pkts_in"), 1.0);
        assert_eq!(get(r, "pps_out"), 0.5);
        assert_eq!(get(r, "max_pps_out"), 2.0);
        assert_eq!(get(r, "size_out_mean"), 100.0);
        assert_eq!(get(r, "size_out_std"), 0.0);
        assert!((get(r, "iat_out_mean") - 0.5).abs() < 1e-9);
        assert_eq!(get(r, "syn_ratio_out"), 1.0);
        assert_eq!(get(r, "rst_in"), 1.0);
        assert_eq!(get(r, "dst_ports"), 1.0);
        assert_eq!(get(r, "http_pkts"), 6.0);
        assert_eq!(label.attack_packets, 1);
        assert_eq!(label.attack, Some(0));
        assert_eq!(names.len(), r.values.len());
    }

    #[test]
    fn windows_close_when_time_moves_on_and_silent_devices_write_nothing() {
        let mut dw: DeviceWindows = DeviceWindows::new(DeviceConfig::default());
        let mut rows: Vec<FeatureRow> = Vec::new();
        dw.push(
            &tcp(1_000_000_000, "10.0.0.2", "10.0.0.9", 0x10, 60),
            (),
            &mut rows,
        );
        dw.push(
            &tcp(25_000_000_000, "10.0.0.2", "10.0.0.9", 0x10, 60),
            (),
            &mut rows,
        );
        assert_eq!(rows.len(), 1, "only the sender has a row: {rows:?}");
        assert_eq!(rows[0].entity, "10.0.0.2");
        assert_eq!(rows[0].end_ns, 10_000_000_000);
        dw.finish(&mut rows);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].start_ns, 20_000_000_000);
        // iat spans the silent window: the device's real inter-arrival time.
        let iat = feature_names()
            .iter()
            .position(|n| n == "iat_out_mean")
            .unwrap();
        assert!((rows[1].values[iat] - 24.0).abs() < 1e-9);
    }
}
