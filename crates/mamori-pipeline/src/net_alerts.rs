//! Network rows → alerts: the shared alert rule applied per traffic entity (device, flow
//! initiator), used by `mamori net score` and by the agent's network section alike.

use std::collections::HashMap;

use mamori_core::alert::Fired;
use mamori_core::rule::{AlertRule, AlertState, Decision, RuleCounts};
use mamori_core::{Alert, Evidence, Subject};

/// One scored row, as the rule needs it.
pub struct ScoredRow<'a> {
    /// Capture file or interface the row came from.
    pub input: &'a str,
    /// The device, flow or host.
    pub entity: &'a str,
    /// Row time span (ns).
    pub start_ns: u64,
    /// See `start_ns`; the row could be scored from here on.
    pub end_ns: u64,
    /// Packets in the row.
    pub packets: u64,
    /// The detector's score.
    pub score: f64,
}

/// The rule's state for every entity of one detector.
pub struct NetAlerter {
    rule: AlertRule,
    threshold: f64,
    detector: String,
    model_path: String,
    entity_kind: &'static str,
    states: HashMap<(String, String), AlertState>,
    /// What the rule decided so far.
    pub counts: RuleCounts,
}

/// Entities remembered before the oldest state is forgotten (a scan touches many hosts).
const MAX_ENTITIES: usize = 100_000;

impl NetAlerter {
    /// A rule for rows of `entity_kind` (`device`, `flow`, `host`) scored by `detector`.
    pub fn new(
        rule: AlertRule,
        threshold: f64,
        detector: impl Into<String>,
        model_path: impl Into<String>,
        entity_kind: &'static str,
    ) -> Self {
        NetAlerter {
            rule,
            threshold,
            detector: detector.into(),
            model_path: model_path.into(),
            entity_kind,
            states: HashMap::new(),
            counts: RuleCounts::default(),
        }
    }

    /// Feeds one row; returns the rule's decision and, when it fires, the alert.
    pub fn observe(&mut self, row: &ScoredRow<'_>) -> (Decision, Option<Alert>) {
        self.observe_against(row, self.threshold)
    }

    /// [`NetAlerter::observe`] with the row's own threshold (a per-device baseline; infinite
    /// for a row of a device's warm-up, which is never flagged).
    pub fn observe_against(
        &mut self,
        row: &ScoredRow<'_>,
        threshold: f64,
    ) -> (Decision, Option<Alert>) {
        let key = (row.input.to_string(), row.entity.to_string());
        if !self.states.contains_key(&key) && self.states.len() >= MAX_ENTITIES {
            // Bounded memory: forgetting every state only risks one extra alert per entity.
            self.states.clear();
        }
        let t = i64::try_from(row.end_ns).unwrap_or(i64::MAX);
        let decision = self
            .states
            .entry(key)
            .or_default()
            .observe(&self.rule, t, row.score, threshold);
        self.counts.add(&decision);
        let Decision::Fire {
            run_len,
            run_start_ns,
        } = decision
        else {
            return (decision, None);
        };
        let fired = Fired {
            time_ns: t,
            score: row.score,
            threshold,
            run_len,
            run_start_ns,
        };
        let evidence = Evidence::Traffic {
            entity_kind: self.entity_kind.to_string(),
            entity: row.entity.to_string(),
            input: row.input.to_string(),
            start_ns: i64::try_from(row.start_ns).unwrap_or(i64::MAX),
            end_ns: t,
            packets: row.packets,
        };
        let subject = Subject::Device {
            address: row.entity.to_string(),
        };
        let alert = Alert::warning(
            subject,
            "network",
            &self.detector,
            &self.model_path,
            fired,
            evidence,
        );
        (decision, Some(alert))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn row<'a>(entity: &'a str, t: u64, score: f64) -> ScoredRow<'a> {
        ScoredRow {
            input: "lab.pcap",
            entity,
            start_ns: t - 10 * S,
            end_ns: t,
            packets: 100,
            score,
        }
    }

    #[test]
    fn each_entity_has_its_own_run_and_cooldown() {
        let mut a = NetAlerter::new(AlertRule::default(), 0.0, "svm", "svm.model", "device");
        let (_, first) = a.observe(&row("10.0.0.7", 100 * S, 1.0));
        let first = first.expect("fires");
        assert_eq!(first.subject.name(), "10.0.0.7");
        assert!(matches!(
            first.evidence,
            Evidence::Traffic { packets: 100, .. }
        ));
        // the same device 1 s later is in its cooldown; another device is not
        assert!(a.observe(&row("10.0.0.7", 101 * S, 1.0)).1.is_none());
        assert!(a.observe(&row("10.0.0.9", 101 * S, 1.0)).1.is_some());
        assert!(a.observe(&row("10.0.0.9", 102 * S, -1.0)).1.is_none());
        assert_eq!(
            (
                a.counts.scored,
                a.counts.flagged,
                a.counts.alerts,
                a.counts.suppressed
            ),
            (4, 3, 2, 1)
        );
        // a row judged against its device's own, higher threshold is not flagged; its alert
        // records the threshold it was judged against
        let (d, none) = a.observe_against(&row("10.0.0.5", 103 * S, 1.0), 2.0);
        assert!(!d.flagged() && none.is_none());
        let (_, fired) = a.observe_against(&row("10.0.0.5", 104 * S, 3.0), 2.0);
        assert_eq!(fired.expect("fires").threshold, 2.0);
    }
}
