//! The types every mamori component shares, and nothing else: what an event is, who it is about,
//! when flagged scores become an alert, what an alert and an incident look like, where they go,
//! and how a trained model is stored.
//!
//! Every detector — system calls, network traffic, device conformance, root cause — ends in the
//! same place: scores go through one [`rule::AlertState`] per subject, the alerts it fires are
//! [`alert::Alert`]s, and they reach the operator through [`sink::AlertSink`]s. Keeping these
//! here, below the algorithms and readers, is what lets the agent, `mamori score`, `mamori net
//! score` and the evaluation apply the *same* rule, so the evaluation's false alarms per hour are
//! the agent's.
//!
//! ```
//! use mamori_core::rule::{AlertRule, AlertState, Decision};
//!
//! let rule = AlertRule { min_flagged: 2, gap_ns: 1_000, cooldown_ns: 10_000 };
//! let mut state = AlertState::default();
//! // (time, score) with a threshold of 0.5: two flagged windows close together fire once
//! assert_eq!(state.observe(&rule, 0, 0.9, 0.5), Decision::Pending { run_len: 1 });
//! assert!(matches!(state.observe(&rule, 500, 0.9, 0.5), Decision::Fire { run_len: 2, .. }));
//! assert_eq!(state.observe(&rule, 900, 0.2, 0.5), Decision::Below);
//! assert!(matches!(state.observe(&rule, 1_200, 0.9, 0.5), Decision::Suppressed { .. }));
//! ```
#![deny(missing_docs)]

pub mod alert;
pub mod envelope;
pub mod error;
pub mod event;
pub mod incident;
pub mod output;
pub mod packet;
pub mod procfs;
pub mod rule;
pub mod sink;
pub mod subject;
pub mod time;

pub use alert::{Alert, Evidence};
pub use event::{Record, SyscallEvent};
pub use incident::Incident;
pub use packet::PacketMeta;
pub use rule::{AlertRule, AlertState, Decision};
pub use sink::AlertSink;
pub use subject::Subject;
