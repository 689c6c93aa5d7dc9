//! What the monitor knows now, for `/metrics`, the JSON API and `mamori things status`: one
//! [`ThingStatus`] per Thing and the recent incidents, on a shared [`Board`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use mamori_core::Incident;
use serde::{Deserialize, Serialize};

use crate::health::{State, Transition};

/// Upper bounds (seconds) of the probe-latency histogram's buckets.
/// A read on loopback or a LAN takes a few hundred microseconds, so the buckets start there.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A cumulative latency histogram (Prometheus style: counts per upper bound, sum, count).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The upper bounds (seconds): [`LATENCY_BUCKETS`].
    pub le: Vec<f64>,
    /// Observations ≤ each bound.
    pub buckets: Vec<u64>,
    /// Sum of the observations (seconds).
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Adds one observation.
    pub fn observe(&mut self, seconds: f64) {
        if self.buckets.len() != LATENCY_BUCKETS.len() {
            self.le = LATENCY_BUCKETS.to_vec();
            self.buckets = vec![0; LATENCY_BUCKETS.len()];
        }
        for (bound, n) in LATENCY_BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if seconds <= *bound {
                *n += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// The last reading of one property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyStatus {
    /// The property.
    pub name: String,
    /// Whether its last read conformed.
    pub ok: bool,
    /// Its last latency (seconds).
    pub latency_seconds: f64,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One Thing, now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThingStatus {
    /// Its name.
    pub name: String,
    /// Where its TD came from.
    pub td: String,
    /// The container it maps to (empty: none).
    pub container: String,
    /// Its state.
    pub state: Option<State>,
    /// Since when (RFC 3339).
    pub since: String,
    /// Why it is in that state.
    pub reason: String,
    /// Whether its last round conformed.
    pub up: bool,
    /// What was wrong in the last round (empty when it conformed).
    pub problem: String,
    /// Probe rounds so far.
    pub rounds: u64,
    /// Rounds that did not conform.
    pub bad_rounds: u64,
    /// When the last round ended (RFC 3339).
    pub last_round: String,
    /// Each probed property's last reading.
    pub properties: Vec<PropertyStatus>,
    /// Affordances that cannot be probed, and why.
    pub not_probed: Vec<(String, String)>,
    /// Schema violations so far, by kind.
    pub violations: BTreeMap<String, u64>,
    /// Failed reads so far, by error (`timeout`, `connect`, `too-large`, …).
    pub read_errors: BTreeMap<String, u64>,
    /// Events and observed values received.
    pub events_received: u64,
    /// Container restarts made.
    pub restarts: u64,
    /// Times it was quarantined.
    pub quarantines: u64,
    /// Probe latencies.
    pub latency: Histogram,
    /// The last transitions, oldest first.
    pub transitions: Vec<Transition>,
    /// The open incident, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_incident: Option<String>,
}

/// Closed incidents kept for the API.
const KEPT_INCIDENTS: usize = 200;

/// The monitor's shared state.
#[derive(Debug, Default)]
pub struct Board {
    things: Mutex<BTreeMap<String, ThingStatus>>,
    incidents: Mutex<VecDeque<Incident>>,
}

impl Board {
    /// Changes one Thing's status (creating it).
    pub fn update(&self, name: &str, f: impl FnOnce(&mut ThingStatus)) {
        let mut things = self.things.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = things
            .entry(name.to_string())
            .or_insert_with(|| ThingStatus {
                name: name.to_string(),
                ..ThingStatus::default()
            });
        f(entry);
    }

    /// Whether a Thing of this name is known.
    pub fn contains(&self, name: &str) -> bool {
        let things = self.things.lock().unwrap_or_else(PoisonError::into_inner);
        things.contains_key(name)
    }

    /// Every Thing, by name.
    pub fn things(&self) -> Vec<ThingStatus> {
        let things = self.things.lock().unwrap_or_else(PoisonError::into_inner);
        things.values().cloned().collect()
    }

    /// Records an incident (replacing an earlier record with the same id, as an open incident
    /// is updated until it closes).
    pub fn incident(&self, incident: &Incident) {
        let mut list = self
            .incidents
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = list.iter_mut().find(|i| i.id == incident.id) {
            *old = incident.clone();
            return;
        }
        if list.len() == KEPT_INCIDENTS {
            list.pop_front();
        }
        list.push_back(incident.clone());
    }

    /// The recent incidents, oldest first.
    pub fn incidents(&self) -> Vec<Incident> {
        let list = self
            .incidents
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        list.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.003);
        h.observe(0.2);
        h.observe(9.0);
        assert_eq!(h.count, 3);
        let at = |bound: f64| h.buckets[h.le.iter().position(|&b| b == bound).unwrap()];
        assert_eq!(at(0.0025), 0, "≤ 2.5 ms");
        assert_eq!(at(0.005), 1, "≤ 5 ms");
        assert_eq!(at(0.25), 2, "≤ 250 ms");
        assert_eq!(*h.buckets.last().unwrap(), 2, "9 s is above every bound");
        assert!((h.sum - 9.203).abs() < 1e-9);
    }
}
