//! Feature extraction: per-device time windows, bidirectional flows, per-interval aggregates.
//!
//! All three read the same [`PacketMeta`] stream through one [`Extractor`] and write
//! [`FeatureRow`]s whose columns are named by [`FeatureKind::names`].
//!
//! Extraction knows nothing of attack labels: a row is the entity, its time span, its packet
//! count and its values. Ground truth is applied by a separate pass
//! ([`LabelledExtractor`](crate::labels::LabelledExtractor)) that labels each packet on its way
//! in. The extractor hands each packet's mark, unread, to a [`RowTally`] of every row the packet
//! counts in (the labels' tally counts attack packets and keeps the first attack); it is generic
//! over the tally, so no feature can depend on a label. Without labels the tally is `()`.

pub mod device;
pub mod dist;
pub mod flow;

use crate::packet::PacketMeta;
use device::{DeviceConfig, DeviceWindows};
use flow::{FlowConfig, FlowOutput, FlowTable};

/// Which rows to extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// One row per device per window (what an overhearing monitor sees).
    Device,
    /// One row per finished bidirectional 5-tuple flow.
    Flow,
    /// One row per flow-initiating host per interval (flows aggregated).
    Interval,
}

impl FeatureKind {
    /// Column names of this kind's rows.
    pub fn names(self) -> Vec<String> {
        match self {
            FeatureKind::Device => device::feature_names(),
            FeatureKind::Flow => flow::flow_feature_names(),
            FeatureKind::Interval => flow::interval_feature_names(),
        }
    }

    /// What the row's entity is.
    pub fn entity_name(self) -> &'static str {
        match self {
            FeatureKind::Device => "device",
            FeatureKind::Flow => "flow",
            FeatureKind::Interval => "host",
        }
    }
}

impl std::str::FromStr for FeatureKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "device" => Ok(FeatureKind::Device),
            "flow" => Ok(FeatureKind::Flow),
            "interval" => Ok(FeatureKind::Interval),
            _ => Err(format!(
                "unknown feature kind `{s}` (device, flow or interval)"
            )),
        }
    }
}

/// Settings of every kind (a model file stores them, so scoring extracts the same features).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureConfig {
    /// The kind of rows.
    pub kind: FeatureKind,
    /// Device windows.
    pub device: DeviceConfig,
    /// Flows and intervals.
    pub flow: FlowConfig,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            kind: FeatureKind::Device,
            device: DeviceConfig::default(),
            flow: FlowConfig::default(),
        }
    }
}

/// One row of features: what was measured, and nothing about ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    /// The device, flow (`tcp 10.0.0.2:40000 > 10.0.0.9:80`) or host the row is about.
    pub entity: String,
    /// Start of the window, or the flow's first packet (ns since the epoch).
    pub start_ns: u64,
    /// End of the window, or the flow's last packet (ns).
    pub end_ns: u64,
    /// Packets counted in the row.
    pub packets: u64,
    /// Feature values, in the order of [`FeatureKind::names`].
    pub values: Vec<f64>,
}

/// What a row carries besides its features, folded from a per-packet mark the caller attaches
/// to each packet. The extractor only moves marks and tallies around; it never reads them.
pub trait RowTally: Default {
    /// What is attached to each packet.
    type Mark: Copy;

    /// Counts one packet of the row.
    fn add(&mut self, mark: Self::Mark);

    /// Adds the tally of a part of the row (an interval row sums its flows' shares), after the
    /// parts already merged.
    fn merge(&mut self, part: &Self);
}

/// No tally: extraction without labels.
impl RowTally for () {
    type Mark = ();

    #[inline]
    fn add(&mut self, _mark: ()) {}

    #[inline]
    fn merge(&mut self, _part: &()) {}
}

/// Where finished rows go, with their tallies.
pub trait RowSink<T> {
    /// Takes one finished row.
    fn put(&mut self, row: FeatureRow, tally: T);
}

/// Rows alone (the tally is dropped).
impl<T> RowSink<T> for Vec<FeatureRow> {
    #[inline]
    fn put(&mut self, row: FeatureRow, _tally: T) {
        self.push(row);
    }
}

/// Rows with their tallies.
impl<T> RowSink<T> for Vec<(FeatureRow, T)> {
    #[inline]
    fn put(&mut self, row: FeatureRow, tally: T) {
        self.push((row, tally));
    }
}

enum Inner<T: RowTally> {
    Device(DeviceWindows<T>),
    Flows(FlowTable<T>),
}

/// Packets in, feature rows out; `T` is what rows tally of their packets' marks (`()`: nothing).
///
/// ```
/// use mamori_net::features::{Extractor, FeatureConfig, FeatureRow};
///
/// let mut extractor: Extractor = Extractor::new(&FeatureConfig::default());
/// let mut rows: Vec<FeatureRow> = Vec::new();
/// // for each decoded packet: extractor.push(&packet, (), &mut rows);
/// extractor.finish(&mut rows);
/// assert!(rows.is_empty());
/// ```
pub struct Extractor<T: RowTally = ()> {
    inner: Inner<T>,
    packets: u64,
}

impl<T: RowTally> Extractor<T> {
    /// A new extractor.
    pub fn new(config: &FeatureConfig) -> Self {
        let inner = match config.kind {
            FeatureKind::Device => Inner::Device(DeviceWindows::new(config.device)),
            FeatureKind::Flow => Inner::Flows(FlowTable::new(config.flow, FlowOutput::Flows)),
            FeatureKind::Interval => {
                Inner::Flows(FlowTable::new(config.flow, FlowOutput::Intervals))
            }
        };
        Extractor { inner, packets: 0 }
    }

    /// Adds one packet, with its mark (`()` without a tally); completed rows go to `out`.
    #[inline]
    pub fn push(&mut self, p: &PacketMeta, mark: T::Mark, out: &mut impl RowSink<T>) {
        self.packets += 1;
        match &mut self.inner {
            Inner::Device(d) => d.push(p, mark, out),
            Inner::Flows(f) => f.push(p, mark, out),
        }
    }

    /// Ends the stream: the last rows go to `out`.
    pub fn finish(&mut self, out: &mut impl RowSink<T>) {
        match &mut self.inner {
            Inner::Device(d) => d.finish(out),
            Inner::Flows(f) => f.finish(out),
        }
    }

    /// Packets seen.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// What the memory caps cost so far ([`device::MAX_DEVICES`], [`flow::MAX_FLOWS`]).
    pub fn evictions(&self) -> Evictions {
        match &self.inner {
            Inner::Device(d) => {
                let e = d.evictions();
                Evictions {
                    devices: e.evicted,
                    untracked_packets: e.untracked_packets,
                    flows: 0,
                }
            }
            Inner::Flows(f) => Evictions {
                flows: f.evicted_flows(),
                ..Evictions::default()
            },
        }
    }

    /// Devices or open flows currently held in memory.
    pub fn tracked(&self) -> usize {
        match &self.inner {
            Inner::Device(d) => d.tracked_devices(),
            Inner::Flows(f) => f.open_flows(),
        }
    }

    /// Lowers the memory caps (tests; at least 1 each).
    pub fn set_caps(&mut self, max_devices: usize, max_flows: usize) {
        match &mut self.inner {
            Inner::Device(d) => d.set_max_devices(max_devices),
            Inner::Flows(f) => f.set_max_flows(max_flows),
        }
    }
}

/// State an [`Extractor`] dropped to bound its memory on hostile traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Evictions {
    /// Idle devices forgotten.
    pub devices: u64,
    /// Packets of new devices not counted in a window that already held twice the device cap.
    pub untracked_packets: u64,
    /// Flows ended early because the flow table was full.
    pub flows: u64,
}

impl Evictions {
    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        *self == Evictions::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::packet::{AppProto, PacketMeta, L3};

    /// A TCP packet from port 40000 to 80 (tests choose the direction by the addresses).
    pub fn tcp(ts_ns: u64, src: &str, dst: &str, flags: u8, len: u32) -> PacketMeta {
        let fwd = dst.ends_with(".9");
        PacketMeta {
            ts_ns,
            wire_len: len,
            src_mac: None,
            dst_mac: None,
            l3: L3::Ipv4,
            src_ip: src.parse().ok(),
            dst_ip: dst.parse().ok(),
            ip_proto: 6,
            src_port: if fwd { 40000 } else { 80 },
            dst_port: if fwd { 80 } else { 40000 },
            tcp_flags: flags,
            icmp_type: 0,
            payload_len: len.saturating_sub(54),
            app: AppProto::Http,
        }
    }

    /// A UDP packet.
    pub fn udp(ts_ns: u64, src: &str, dst: &str, sport: u16, dport: u16) -> PacketMeta {
        PacketMeta {
            ts_ns,
            wire_len: 80,
            src_mac: None,
            dst_mac: None,
            l3: L3::Ipv4,
            src_ip: src.parse().ok(),
            dst_ip: dst.parse().ok(),
            ip_proto: 17,
            src_port: sport,
            dst_port: dport,
            tcp_flags: 0,
            icmp_type: 0,
            payload_len: 38,
            app: AppProto::Dns,
        }
    }
}
