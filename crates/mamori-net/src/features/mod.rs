//! Feature extraction: per-device time windows, bidirectional flows, per-interval aggregates.
//!
//! All three read the same [`PacketMeta`] stream through one [`Extractor`], which also applies
//! the attack labels, and write [`FeatureRow`]s whose columns are named by [`FeatureKind::names`].

pub mod device;
pub mod dist;
pub mod flow;

use crate::labels::Labels;
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

/// One row of features.
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
    /// Of those, packets that the labels mark as attack traffic.
    pub attack_packets: u64,
    /// Index (into the labels) of the first attack seen in the row.
    pub attack: Option<usize>,
    /// Feature values, in the order of [`FeatureKind::names`].
    pub values: Vec<f64>,
}

impl FeatureRow {
    /// Labelled as attack: at least one attack packet.
    pub fn is_attack(&self) -> bool {
        self.attack_packets > 0
    }
}

enum Inner {
    Device(DeviceWindows),
    Flows(FlowTable),
}

/// Packets in, feature rows out.
pub struct Extractor {
    inner: Inner,
    labels: Labels,
    packets: u64,
    attack_packets: u64,
}

impl Extractor {
    /// A new extractor; `labels` may be empty.
    pub fn new(config: &FeatureConfig, labels: Labels) -> Self {
        let inner = match config.kind {
            FeatureKind::Device => Inner::Device(DeviceWindows::new(config.device)),
            FeatureKind::Flow => Inner::Flows(FlowTable::new(config.flow, FlowOutput::Flows)),
            FeatureKind::Interval => {
                Inner::Flows(FlowTable::new(config.flow, FlowOutput::Intervals))
            }
        };
        Extractor {
            inner,
            labels,
            packets: 0,
            attack_packets: 0,
        }
    }

    /// Adds one packet; completed rows are appended to `out`.
    #[inline]
    pub fn push(&mut self, p: &PacketMeta, out: &mut Vec<FeatureRow>) {
        let attack = self.labels.attack_of(p);
        self.packets += 1;
        self.attack_packets += u64::from(attack.is_some());
        match &mut self.inner {
            Inner::Device(d) => d.push(p, attack, out),
            Inner::Flows(f) => f.push(p, attack, out),
        }
    }

    /// Ends the stream: the last rows are appended to `out`.
    pub fn finish(&mut self, out: &mut Vec<FeatureRow>) {
        match &mut self.inner {
            Inner::Device(d) => d.finish(out),
            Inner::Flows(f) => f.finish(out),
        }
    }

    /// Packets seen, and of those labelled as attack.
    pub fn packet_counts(&self) -> (u64, u64) {
        (self.packets, self.attack_packets)
    }

    /// The labels in use.
    pub fn labels(&self) -> &Labels {
        &self.labels
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
