//! Bidirectional 5-tuple flows and their per-interval aggregates (seed 001 §3-1, the monitor
//! inside the network).
//!
//! A flow is the traffic between two endpoints (protocol, address, port) in both directions; the
//! side that sent its first packet is the initiator ("forward"). A flow ends after
//! `idle_timeout` without packets, after `active_timeout` in all (so a camera's endless stream
//! still yields records), on a TCP RST, or once both sides have sent FIN. Every `interval`, the
//! flows each initiating host had traffic in are summarised into one row (how many flows, to how
//! many hosts and ports, how many got no answer): scans and floods stand out there even when
//! each of their flows is a single packet.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::dist::Dist;
use super::{FeatureRow, RowSink, RowTally};
use crate::packet::{AppProto, PacketMeta};

/// Flow settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlowConfig {
    /// A flow ends after this long without packets (ns).
    pub idle_timeout_ns: u64,
    /// A flow is cut after this long in all (ns).
    pub active_timeout_ns: u64,
    /// Length of the per-interval aggregates (ns), aligned to multiples of it since the epoch.
    pub interval_ns: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout_ns: 30_000_000_000,
            active_timeout_ns: 120_000_000_000,
            interval_ns: 10_000_000_000,
        }
    }
}

/// A flow's key, initiator first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// IP protocol.
    pub proto: u8,
    /// Initiator address.
    pub src: IpAddr,
    /// Initiator port.
    pub sport: u16,
    /// Responder address.
    pub dst: IpAddr,
    /// Responder port.
    pub dport: u16,
}

impl FlowKey {
    fn reversed(&self) -> FlowKey {
        FlowKey {
            proto: self.proto,
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }
}

impl std::fmt::Display for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.proto {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            1 => "icmp".to_string(),
            58 => "icmp6".to_string(),
            n => format!("ip{n}"),
        };
        let ep = |ip: &IpAddr, port: u16| match ip {
            IpAddr::V4(_) => format!("{ip}:{port}"),
            IpAddr::V6(_) => format!("[{ip}]:{port}"),
        };
        write!(
            f,
            "{proto} {} > {}",
            ep(&self.src, self.sport),
            ep(&self.dst, self.dport)
        )
    }
}

/// The column names of flow rows.
pub fn flow_feature_names() -> Vec<String> {
    [
        "duration",
        "pkts_fwd",
        "pkts_bwd",
        "bytes_fwd",
        "bytes_bwd",
        "size_mean",
        "size_std",
        "size_min",
        "size_max",
        "iat_mean",
        "iat_std",
        "iat_max",
        "pps",
        "bps",
        "syn",
        "synack",
        "fin",
        "rst",
        "psh",
        "tcp",
        "udp",
        "icmp",
        "dport_wellknown",
        "bwd_fwd_ratio",
        "payload_fwd",
        "payload_bwd",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The column names of per-interval rows.
pub fn interval_feature_names() -> Vec<String> {
    [
        "flows",
        "flows_new",
        "dst_hosts",
        "dst_ports",
        "pkts_fwd",
        "pkts_bwd",
        "bytes_fwd",
        "bytes_bwd",
        "unanswered_share",
        "half_open_share",
        "rst_flows",
        "tcp_share",
        "udp_share",
        "icmp_share",
        "max_flow_pkts",
        "mean_flow_pkts",
        "telnet_flows",
        "dns_flows",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

struct Flow<T> {
    key: FlowKey,
    start_ns: u64,
    last_ns: u64,
    pkts: [u64; 2],
    bytes: [u64; 2],
    payload: [u64; 2],
    sizes: Dist,
    iats: Dist,
    syn: u64,
    synack: u64,
    fin: [bool; 2],
    fin_count: u64,
    rst: u64,
    psh: u64,
    app: AppProto,
    /// The marks of all the flow's packets.
    tally: T,
    /// Traffic in the current interval, for the aggregates.
    interval_pkts: [u64; 2],
    interval_bytes: [u64; 2],
    /// The marks of the flow's packets in the current interval (a long flow can span several
    /// intervals, and carry different marks in each).
    interval_tally: T,
    in_interval: bool,
    new_in_interval: bool,
}

impl<T> Flow<T> {
    fn values(&self, out: &mut Vec<f64>) {
        let duration = (self.last_ns - self.start_ns) as f64 * 1e-9;
        let pkts = (self.pkts[0] + self.pkts[1]) as f64;
        let bytes = (self.bytes[0] + self.bytes[1]) as f64;
        let per_s = |n: f64| if duration > 0.0 { n / duration } else { 0.0 };
        let is = |p: u8| f64::from(u8::from(self.key.proto == p));
        out.extend_from_slice(&[
            duration,
            self.pkts[0] as f64,
            self.pkts[1] as f64,
            self.bytes[0] as f64,
            self.bytes[1] as f64,
            self.sizes.mean(),
            self.sizes.std(),
            self.sizes.min(),
            self.sizes.max(),
            self.iats.mean(),
            self.iats.std(),
            self.iats.max(),
            per_s(pkts),
            per_s(bytes),
            self.syn as f64,
            self.synack as f64,
            self.fin_count as f64,
            self.rst as f64,
            self.psh as f64,
            is(6),
            is(17),
            f64::from(u8::from(self.key.proto == 1 || self.key.proto == 58)),
            f64::from(u8::from(self.key.dport != 0 && self.key.dport < 1024)),
            self.pkts[1] as f64 / self.pkts[0].max(1) as f64,
            self.payload[0] as f64,
            self.payload[1] as f64,
        ]);
    }

    fn row(&self) -> FeatureRow {
        let mut values = Vec::with_capacity(26);
        self.values(&mut values);
        FeatureRow {
            entity: self.key.to_string(),
            start_ns: self.start_ns,
            end_ns: self.last_ns,
            packets: self.pkts[0] + self.pkts[1],
            values,
        }
    }
}

/// What the flow table writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowOutput {
    /// One row per finished flow.
    Flows,
    /// One row per initiating host per interval.
    Intervals,
}

/// Per-host interval counters.
#[derive(Default)]
struct HostInterval<T> {
    flows: u64,
    flows_new: u64,
    dst_hosts: HashSet<IpAddr>,
    dst_ports: HashSet<u16>,
    pkts: [u64; 2],
    bytes: [u64; 2],
    unanswered: u64,
    half_open: u64,
    rst_flows: u64,
    tcp: u64,
    udp: u64,
    icmp: u64,
    max_flow_pkts: u64,
    telnet: u64,
    dns: u64,
    /// The host's flows' interval tallies, merged.
    tally: T,
}

/// Flows open at once by default (see [`FlowTable::set_max_flows`]).
pub const MAX_FLOWS: usize = 65_536;

/// Tracks flows and writes flow rows or interval rows; `T` tallies the marks of each row's
/// packets.
///
/// Memory is bounded: flows end after the idle and active timeouts, and when [`MAX_FLOWS`] are
/// open (a flood of spoofed sources or ports), opening another first ends the eighth of them
/// idle longest, as if they had timed out; [`FlowTable::evicted_flows`] counts them.
pub struct FlowTable<T: RowTally = ()> {
    config: FlowConfig,
    output: FlowOutput,
    index: HashMap<FlowKey, usize>,
    flows: Vec<Option<Flow<T>>>,
    free: Vec<usize>,
    /// Flows with traffic in the current interval.
    touched: Vec<usize>,
    /// Flows that ended during the current interval: still summarised at its end.
    ended: Vec<Flow<T>>,
    interval: Option<u64>,
    next_sweep_ns: u64,
    max_flows: usize,
    evicted: u64,
}

impl<T: RowTally> FlowTable<T> {
    /// A new, empty table.
    pub fn new(config: FlowConfig, output: FlowOutput) -> Self {
        FlowTable {
            config: FlowConfig {
                interval_ns: config.interval_ns.max(1),
                idle_timeout_ns: config.idle_timeout_ns.max(1),
                active_timeout_ns: config.active_timeout_ns.max(1),
            },
            output,
            index: HashMap::new(),
            flows: Vec::new(),
            free: Vec::new(),
            touched: Vec::new(),
            ended: Vec::new(),
            interval: None,
            next_sweep_ns: 0,
            max_flows: MAX_FLOWS,
            evicted: 0,
        }
    }

    /// Changes the cap on open flows (at least 1).
    pub fn set_max_flows(&mut self, max: usize) {
        self.max_flows = max.max(1);
    }

    /// Flows ended early because the table was full.
    pub fn evicted_flows(&self) -> u64 {
        self.evicted
    }

    /// Flows currently open.
    pub fn open_flows(&self) -> usize {
        self.index.len()
    }

    /// Adds a packet with its mark (tallied by its flow's row, or its initiator's interval row);
    /// rows it completes go to `out`. Packets without IP addresses are ignored.
    pub fn push(&mut self, p: &PacketMeta, mark: T::Mark, out: &mut impl RowSink<T>) {
        let (Some(src), Some(dst)) = (p.src_ip, p.dst_ip) else {
            return;
        };
        if p.ip_proto == 0 {
            return;
        }
        let now = p.ts_ns;
        let iv = now / self.config.interval_ns;
        match self.interval {
            Some(cur) if iv > cur => {
                self.close_interval(cur, out);
                self.interval = Some(iv);
            }
            None => self.interval = Some(iv),
            _ => {}
        }
        if now >= self.next_sweep_ns {
            self.sweep(now, out);
            self.next_sweep_ns = now + 1_000_000_000;
        }
        let key = FlowKey {
            proto: p.ip_proto,
            src,
            sport: p.src_port,
            dst,
            dport: p.dst_port,
        };
        let (slot, dir) = if let Some(&i) = self.index.get(&key) {
            (i, 0)
        } else if let Some(&i) = self.index.get(&key.reversed()) {
            (i, 1)
        } else {
            if self.index.len() >= self.max_flows {
                self.evict_idle(out);
            }
            (self.open(key, now, p.app), 0)
        };
        let Some(f) = self.flows[slot].as_mut() else {
            return;
        };
        let len = u64::from(p.wire_len);
        if f.pkts[0] + f.pkts[1] > 0 {
            f.iats.add(now.saturating_sub(f.last_ns) as f64 * 1e-9);
        }
        f.last_ns = f.last_ns.max(now);
        f.pkts[dir] += 1;
        f.bytes[dir] += len;
        f.payload[dir] += u64::from(p.payload_len);
        f.sizes.add(len as f64);
        if !f.in_interval {
            f.in_interval = true;
            self.touched.push(slot);
        }
        f.interval_pkts[dir] += 1;
        f.interval_bytes[dir] += len;
        f.tally.add(mark);
        f.interval_tally.add(mark);
        let mut closed = false;
        if p.ip_proto == 6 {
            let flags = p.tcp_flags;
            if flags & 0x02 != 0 {
                if flags & 0x10 != 0 {
                    f.synack += 1;
                } else {
                    f.syn += 1;
                }
            }
            if flags & 0x08 != 0 {
                f.psh += 1;
            }
            if flags & 0x01 != 0 {
                f.fin[dir] = true;
                f.fin_count += 1;
            }
            if flags & 0x04 != 0 {
                f.rst += 1;
                closed = true;
            }
            closed |= f.fin[0] && f.fin[1];
        }
        if closed {
            self.end(slot, out);
        }
    }

    /// Ends every flow and writes the last rows.
    pub fn finish(&mut self, out: &mut impl RowSink<T>) {
        let open: Vec<usize> = self.index.values().copied().collect();
        let mut open = open;
        open.sort_unstable();
        for slot in open {
            self.end(slot, out);
        }
        if let Some(cur) = self.interval.take() {
            self.close_interval(cur, out);
        }
    }

    fn open(&mut self, key: FlowKey, now: u64, app: AppProto) -> usize {
        let flow = Flow {
            key,
            start_ns: now,
            last_ns: now,
            pkts: [0; 2],
            bytes: [0; 2],
            payload: [0; 2],
            sizes: Dist::default(),
            iats: Dist::default(),
            syn: 0,
            synack: 0,
            fin: [false; 2],
            fin_count: 0,
            rst: 0,
            psh: 0,
            app,
            tally: T::default(),
            interval_pkts: [0; 2],
            interval_bytes: [0; 2],
            interval_tally: T::default(),
            in_interval: false,
            new_in_interval: true,
        };
        let slot = match self.free.pop() {
            Some(i) => {
                self.flows[i] = Some(flow);
                i
            }
            None => {
                self.flows.push(Some(flow));
                self.flows.len() - 1
            }
        };
        self.index.insert(key, slot);
        slot
    }

    /// Ends a flow: its row is written now; its interval share is kept until the interval ends.
    fn end(&mut self, slot: usize, out: &mut impl RowSink<T>) {
        let Some(f) = self.flows[slot].take() else {
            return;
        };
        self.index.remove(&f.key);
        self.free.push(slot);
        match self.output {
            FlowOutput::Flows => {
                let row = f.row();
                out.put(row, f.tally);
            }
            FlowOutput::Intervals => {
                if f.in_interval {
                    self.ended.push(f);
                }
            }
        }
    }

    /// Ends the eighth of the open flows idle longest (at least one).
    fn evict_idle(&mut self, out: &mut impl RowSink<T>) {
        let mut open: Vec<(u64, usize)> = self
            .index
            .values()
            .filter_map(|&i| self.flows[i].as_ref().map(|f| (f.last_ns, i)))
            .collect();
        let k = (open.len() / 8).max(1).min(open.len());
        if k == 0 {
            return;
        }
        if k < open.len() {
            open.select_nth_unstable(k - 1);
        }
        let mut oldest: Vec<usize> = open[..k].iter().map(|&(_, i)| i).collect();
        oldest.sort_unstable();
        for slot in oldest {
            self.end(slot, out);
            self.evicted += 1;
        }
    }

    fn sweep(&mut self, now: u64, out: &mut impl RowSink<T>) {
        let (idle, active) = (self.config.idle_timeout_ns, self.config.active_timeout_ns);
        let mut expired: Vec<usize> = self
            .index
            .values()
            .copied()
            .filter(|&i| {
                self.flows[i].as_ref().is_some_and(|f| {
                    now.saturating_sub(f.last_ns) > idle || now.saturating_sub(f.start_ns) > active
                })
            })
            .collect();
        expired.sort_unstable();
        for slot in expired {
            self.end(slot, out);
        }
    }

    fn close_interval(&mut self, interval: u64, out: &mut impl RowSink<T>) {
        let mut hosts: HashMap<IpAddr, HostInterval<T>> = HashMap::new();
        let touched = std::mem::take(&mut self.touched);
        let ended = std::mem::take(&mut self.ended);
        let summarise = |f: &Flow<T>, hosts: &mut HashMap<IpAddr, HostInterval<T>>| {
            let h = hosts.entry(f.key.src).or_default();
            h.flows += 1;
            h.flows_new += u64::from(f.new_in_interval);
            h.dst_hosts.insert(f.key.dst);
            h.dst_ports.insert(f.key.dport);
            for d in 0..2 {
                h.pkts[d] += f.interval_pkts[d];
                h.bytes[d] += f.interval_bytes[d];
            }
            if f.new_in_interval && f.pkts[1] == 0 {
                h.unanswered += 1;
            }
            if f.new_in_interval && f.key.proto == 6 && f.syn > 0 && f.synack == 0 {
                h.half_open += 1;
            }
            h.rst_flows += u64::from(f.rst > 0);
            match f.key.proto {
                6 => h.tcp += 1,
                17 => h.udp += 1,
                1 | 58 => h.icmp += 1,
                _ => {}
            }
            h.max_flow_pkts = h.max_flow_pkts.max(f.interval_pkts[0] + f.interval_pkts[1]);
            h.telnet += u64::from(f.app == AppProto::Telnet);
            h.dns += u64::from(f.app == AppProto::Dns);
            h.tally.merge(&f.interval_tally);
        };
        for &slot in &touched {
            // A slot freed and reused within the interval is listed twice; its flow counts once.
            if let Some(f) = self.flows[slot].as_mut().filter(|f| f.in_interval) {
                summarise(f, &mut hosts);
                f.in_interval = false;
                f.new_in_interval = false;
                f.interval_pkts = [0; 2];
                f.interval_bytes = [0; 2];
                f.interval_tally = T::default();
            }
        }
        for f in &ended {
            summarise(f, &mut hosts);
        }
        if self.output != FlowOutput::Intervals {
            return;
        }
        let start_ns = interval * self.config.interval_ns;
        let mut hosts: Vec<(IpAddr, HostInterval<T>)> = hosts.into_iter().collect();
        hosts.sort_by_key(|(ip, _)| *ip);
        for (ip, h) in hosts {
            let share = |n: u64| n as f64 / h.flows.max(1) as f64;
            let new_share = |n: u64| n as f64 / h.flows_new.max(1) as f64;
            let pkts = h.pkts[0] + h.pkts[1];
            let row = FeatureRow {
                entity: ip.to_string(),
                start_ns,
                end_ns: start_ns + self.config.interval_ns,
                packets: pkts,
                values: vec![
                    h.flows as f64,
                    h.flows_new as f64,
                    h.dst_hosts.len() as f64,
                    h.dst_ports.len() as f64,
                    h.pkts[0] as f64,
                    h.pkts[1] as f64,
                    h.bytes[0] as f64,
                    h.bytes[1] as f64,
                    new_share(h.unanswered),
                    new_share(h.half_open),
                    h.rst_flows as f64,
                    share(h.tcp),
                    share(h.udp),
                    share(h.icmp),
                    h.max_flow_pkts as f64,
                    pkts as f64 / h.flows.max(1) as f64,
                    h.telnet as f64,
                    h.dns as f64,
                ],
            };
            out.put(row, h.tally);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::tests::{tcp, udp};
    use crate::labels::RowLabel;

    fn names_get(names: &[String], r: &FeatureRow, n: &str) -> f64 {
        r.values[names.iter().position(|x| x == n).unwrap()]
    }

    #[test]
    fn a_tcp_handshake_is_one_flow_both_ways_ended_by_fins() {
        let mut t = FlowTable::<RowLabel>::new(FlowConfig::default(), FlowOutput::Flows);
        let mut rows: Vec<FeatureRow> = Vec::new();
        let s = 1_000_000_000;
        t.push(&tcp(s, "10.0.0.2", "10.0.0.9", 0x02, 60), None, &mut rows);
        t.push(
            &tcp(s + 1_000_000, "10.0.0.9", "10.0.0.2", 0x12, 60),
            None,
            &mut rows,
        );
        t.push(
            &tcp(s + 2_000_000, "10.0.0.2", "10.0.0.9", 0x18, 200),
            None,
            &mut rows,
        );
        t.push(
            &tcp(s + 3_000_000, "10.0.0.2", "10.0.0.9", 0x11, 60),
            None,
            &mut rows,
        );
        assert!(rows.is_empty());
        t.push(
            &tcp(s + 4_000_000, "10.0.0.9", "10.0.0.2", 0x11, 60),
            None,
            &mut rows,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(t.open_flows(), 0);
        let r = &rows[0];
        let n = flow_feature_names();
        assert_eq!(r.entity, "tcp 10.0.0.2:40000 > 10.0.0.9:80");
        assert_eq!(names_get(&n, r, "pkts_fwd"), 3.0);
        assert_eq!(names_get(&n, r, "pkts_bwd"), 2.0);
        assert_eq!(names_get(&n, r, "bytes_fwd"), 320.0);
        assert_eq!(names_get(&n, r, "syn"), 1.0);
        assert_eq!(names_get(&n, r, "synack"), 1.0);
        assert_eq!(names_get(&n, r, "fin"), 2.0);
        assert!((names_get(&n, r, "duration") - 0.004).abs() < 1e-12);
        assert_eq!(names_get(&n, r, "dport_wellknown"), 1.0);
        assert_eq!(n.len(), r.values.len());
    }

    #[test]
    fn idle_flows_time_out_and_finish_flushes_the_rest() {
        let cfg = FlowConfig {
            idle_timeout_ns: 5_000_000_000,
            ..FlowConfig::default()
        };
        let mut t = FlowTable::<RowLabel>::new(cfg, FlowOutput::Flows);
        let mut rows: Vec<FeatureRow> = Vec::new();
        t.push(
            &udp(1_000_000_000, "10.0.0.2", "10.0.0.1", 5000, 53),
            None,
            &mut rows,
        );
        t.push(
            &udp(1_100_000_000, "10.0.0.1", "10.0.0.2", 53, 5000),
            None,
            &mut rows,
        );
        t.push(
            &udp(9_000_000_000, "10.0.0.3", "10.0.0.1", 5001, 53),
            None,
            &mut rows,
        );
        assert_eq!(rows.len(), 1, "the first flow was idle 7.9 s > 5 s");
        assert_eq!(rows[0].packets, 2);
        t.finish(&mut rows);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn a_scan_shows_in_the_interval_aggregate() {
        let mut t = FlowTable::<RowLabel>::new(FlowConfig::default(), FlowOutput::Intervals);
        let mut rows: Vec<(FeatureRow, RowLabel)> = Vec::new();
        let s = 20_000_000_000;
        for port in 1..=100u16 {
            let mut p = tcp(
                s + u64::from(port) * 1_000_000,
                "10.0.0.3",
                "10.0.0.9",
                0x02,
                60,
            );
            p.dst_port = port;
            t.push(&p, Some(0), &mut rows);
            if port % 2 == 0 {
                let mut r = tcp(
                    s + u64::from(port) * 1_000_000 + 1,
                    "10.0.0.9",
                    "10.0.0.3",
                    0x14,
                    60,
                );
                r.src_port = port;
                t.push(&r, Some(0), &mut rows);
            }
        }
        t.push(
            &udp(31_000_000_000, "10.0.0.2", "10.0.0.1", 5000, 53),
            None,
            &mut rows,
        );
        let n = interval_feature_names();
        let (r, label) = rows
            .iter()
            .find(|r| r.0.entity == "10.0.0.3")
            .expect("scanner row");
        assert_eq!(r.start_ns, 20_000_000_000);
        assert_eq!(names_get(&n, r, "flows_new"), 100.0);
        assert_eq!(names_get(&n, r, "dst_ports"), 100.0);
        assert_eq!(names_get(&n, r, "dst_hosts"), 1.0);
        assert_eq!(names_get(&n, r, "unanswered_share"), 0.5);
        assert_eq!(names_get(&n, r, "half_open_share"), 1.0);
        assert_eq!(names_get(&n, r, "rst_flows"), 50.0);
        assert_eq!(label.attack_packets, 150);
        assert_eq!(rows.len(), 1, "the responder initiated nothing");
    }

    #[test]
    fn an_interval_names_the_attack_seen_in_it_not_the_flows_first() {
        let mut t = FlowTable::<RowLabel>::new(FlowConfig::default(), FlowOutput::Intervals);
        let mut rows: Vec<(FeatureRow, RowLabel)> = Vec::new();
        // One long-lived flow: its packets belong to attack 0, then (next interval) to attack 1.
        t.push(
            &tcp(1_000_000_000, "10.0.0.3", "10.0.0.9", 0x18, 100),
            Some(0),
            &mut rows,
        );
        t.push(
            &tcp(12_000_000_000, "10.0.0.3", "10.0.0.9", 0x18, 100),
            Some(1),
            &mut rows,
        );
        t.push(
            &tcp(13_000_000_000, "10.0.0.3", "10.0.0.9", 0x18, 100),
            None,
            &mut rows,
        );
        t.finish(&mut rows);
        let attacks: Vec<Option<usize>> = rows.iter().map(|r| r.1.attack).collect();
        assert_eq!(attacks, [Some(0), Some(1)]);
        assert_eq!(rows[1].1.attack_packets, 1);
    }
}
