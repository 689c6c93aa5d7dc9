//! One alert, whatever raised it.

use serde::{Deserialize, Serialize};

use crate::subject::Subject;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A detector's score crossed its threshold.
    Warning,
    /// Something needs a person now (a device quarantined, a recovery that failed).
    Critical,
}

/// One alert, as every sink writes it (one JSON object per line).
///
/// The envelope is the same for every detector; what made the unit unusual is in
/// [`Evidence`], tagged by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// When the alerting unit ended (the earliest moment it could be scored), RFC 3339.
    pub time: String,
    /// The same in ns since the epoch (the recording's clock when replayed offline).
    pub time_ns: i64,
    /// Who it is about.
    pub subject: Subject,
    /// The detector family: `syscalls`, `network`, `things`.
    pub source: String,
    /// The model kind (`stide`, `ae-bosc`, `svm`, `isolation-forest`, …).
    pub detector: String,
    /// The model file it came from (empty when none).
    pub model_path: String,
    /// Score of the unit that fired the alert.
    pub score: f64,
    /// The threshold it exceeded.
    pub threshold: f64,
    /// Flagged units (windows, rows) in the run that fired it.
    pub flagged_units: usize,
    /// When the run's first flagged unit ended (ns).
    pub run_start_ns: i64,
    /// How urgent.
    pub severity: Severity,
    /// Why: the syscall classes and processes, or the traffic entity and its packets.
    pub evidence: Evidence,
}

/// The numbers of a fired alert: when, how high, and the run that fired it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fired {
    /// When the alerting unit could be scored (ns).
    pub time_ns: i64,
    /// Its score.
    pub score: f64,
    /// The threshold it exceeded.
    pub threshold: f64,
    /// Flagged units in the run ([`crate::Decision::Fire`]).
    pub run_len: usize,
    /// When the run's first flagged unit ended (ns).
    pub run_start_ns: i64,
}

impl Alert {
    /// A warning from a detector: `source` (`syscalls`, `network`), the model `detector` read
    /// from `model_path`, the rule's numbers and the evidence.
    pub fn warning(
        subject: Subject,
        source: &str,
        detector: &str,
        model_path: &str,
        fired: Fired,
        evidence: Evidence,
    ) -> Alert {
        Alert {
            time: crate::time::rfc3339(fired.time_ns),
            time_ns: fired.time_ns,
            subject,
            source: source.to_string(),
            detector: detector.to_string(),
            model_path: model_path.to_string(),
            score: fired.score,
            threshold: fired.threshold,
            flagged_units: fired.run_len,
            run_start_ns: fired.run_start_ns,
            severity: Severity::Warning,
            evidence,
        }
    }
}

/// What made the alerting unit unusual.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Evidence {
    /// A window of system calls.
    Syscalls {
        /// Index of the window among the subject's scored windows.
        window: u64,
        /// Stream (thread or process id, 0 when interleaved) the window came from.
        stream: u64,
        /// First and last call time of the window (ns).
        start_ns: i64,
        /// See `start_ns`.
        end_ns: i64,
        /// The classes that made the window unusual, most unusual first.
        top_classes: Vec<ClassReason>,
        /// Processes whose calls are in the window.
        processes: Vec<ProcessSeen>,
    },
    /// A row of traffic features.
    Traffic {
        /// What a row describes: `device`, `flow` or `host`.
        entity_kind: String,
        /// The device address, flow 5-tuple or host.
        entity: String,
        /// The capture file or interface.
        input: String,
        /// Start and end of the row's time span (ns).
        start_ns: i64,
        /// See `start_ns`.
        end_ns: i64,
        /// Packets in the row.
        packets: u64,
    },
    /// Anything else a detector wants to show (device conformance, recovery), as JSON.
    Detail {
        /// One sentence for people.
        message: String,
        /// Machine-readable details.
        #[serde(default)]
        data: serde_json::Value,
    },
}

/// A class and how unusual its share of the window was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReason {
    /// The class label (`open:/etc/shadow`, `execve`).
    pub class: String,
    /// Calls of this class in the window.
    pub count: u32,
    /// Its share of the window.
    pub window_share: f64,
    /// Its share of the training calls (0: never seen in training).
    pub training_share: f64,
}

/// A process seen in the window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcessSeen {
    /// Process id (host pid namespace).
    pub pid: u32,
    /// Command name.
    pub name: String,
}
