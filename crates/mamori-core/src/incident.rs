//! An incident: what happened to one subject, the alerts that showed it, and what was done about
//! it. Recovery (restarting a container), root cause (a provenance graph) and log shipping add
//! their actions and evidence to this one record instead of inventing their own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Severity};
use crate::subject::Subject;

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Unique within one agent: subject name and opening time.
    pub id: String,
    /// Who it is about.
    pub subject: Subject,
    /// What kind: `anomaly`, `nonconformance`, `recovery`, `root-cause`, …
    pub kind: String,
    /// How urgent.
    pub severity: Severity,
    /// One sentence for people.
    pub summary: String,
    /// When it was opened (ns since the epoch).
    pub opened_ns: i64,
    /// When it was closed, once it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_ns: Option<i64>,
    /// The alerts that belong to it, oldest first.
    #[serde(default)]
    pub alerts: Vec<Alert>,
    /// What was done, in order, with timings.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Evidence collected, by name (`container_logs`, `inspect`, `root_cause`, …).
    #[serde(default)]
    pub evidence: BTreeMap<String, serde_json::Value>,
}

/// One thing done about an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// What (`collect-evidence`, `restart`, `pause`, `quarantine`, `trace-back`).
    pub action: String,
    /// Started and finished (ns since the epoch).
    pub started_ns: i64,
    /// See `started_ns`.
    pub finished_ns: i64,
    /// How it went.
    pub outcome: Outcome,
    /// Details for people (an error message, the new container state).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// How an action went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It did what it should.
    Succeeded,
    /// It failed (see the detail).
    Failed,
    /// Deliberately not done (a crash-loop guard, a dry run).
    Skipped,
}

impl Incident {
    /// A new, open incident.
    pub fn open(
        subject: Subject,
        kind: impl Into<String>,
        severity: Severity,
        summary: impl Into<String>,
        opened_ns: i64,
    ) -> Self {
        Incident {
            id: format!("{}@{opened_ns}", subject.name()),
            subject,
            kind: kind.into(),
            severity,
            summary: summary.into(),
            opened_ns,
            closed_ns: None,
            alerts: Vec::new(),
            actions: Vec::new(),
            evidence: BTreeMap::new(),
        }
    }

    /// Records an action.
    pub fn act(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// Seconds from opening to closing, once closed.
    pub fn duration_seconds(&self) -> Option<f64> {
        self.closed_ns.map(|c| (c - self.opened_ns) as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_json_with_actions_and_evidence() {
        let mut i = Incident::open(
            Subject::Container {
                name: "cam".into(),
                id: "abc".into(),
                image: "motion".into(),
            },
            "recovery",
            Severity::Critical,
            "cam stopped answering its Thing Description's properties",
            1_000,
        );
        i.act(Action {
            action: "restart".into(),
            started_ns: 1_000,
            finished_ns: 2_500_000_000,
            outcome: Outcome::Succeeded,
            detail: String::new(),
        });
        i.evidence
            .insert("logs".into(), serde_json::json!(["line 1"]));
        i.closed_ns = Some(3_000_000_000);
        let text = serde_json::to_string(&i).unwrap();
        assert!(text.contains("\"kind\":\"container\""));
        assert!(text.contains("\"outcome\":\"succeeded\""));
        let back: Incident = serde_json::from_str(&text).unwrap();
        assert_eq!(back, i);
        assert_eq!(i.id, "cam@1000");
        assert!((i.duration_seconds().unwrap() - 2.999_999).abs() < 1e-9);
    }
}
