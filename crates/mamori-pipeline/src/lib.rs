//! mamori's detection pipeline as a library, between the algorithms (`mamori-detect`) and the
//! programs that run them (the `mamori` CLI, the agent):
//!
//! - [`model`]: the registry of system-call models behind one serialisable type, their settings,
//!   and the model-file body (stored in `mamori_core::envelope`'s checksummed envelope);
//! - [`context`]: programs and requests seen in training, so a first-time one alerts on its own;
//! - [`recording`]: recordings on disk → class table → classified windows;
//! - [`train`]: the training and calibration policy (held-out tail, unlike-tail trimming,
//!   unreachable thresholds refused, STIDE's novel-call floor);
//! - [`labels`]: attack steps by time, for evaluation;
//! - [`operator`]: the agent's alert rule replayed over an evaluation's scored windows, counted
//!   strictly — what an operator on call would have seen;
//! - [`net_alerts`]: the same rule over network feature rows, per device;
//! - [`net_train`]: which rows a network detector trains and calibrates on (fair per capture);
//! - [`net_eval`]: a network detector's confusion matrix, rates and AUC on labelled captures;
//! - [`eval`]: datasets (ADFA-LD, labelled recordings, LID-DS) and their measurement: window and
//!   trace rates, ROC AUC, threshold sweeps, per-recording results and the operator view.
//!
//! Nothing here parses flags or prints: callers build the settings and show the results.
//!
//! ```
//! use mamori_core::AlertRule;
//! use mamori_pipeline::labels::AttackRange;
//! use mamori_pipeline::operator::{operator_view, steps_hit, ScoredWindow};
//!
//! let s = 1_000_000_000i64;
//! let steps = [AttackRange { from_ns: 40 * s, to_ns: 45 * s, name: "edit".into() }];
//! let windows: Vec<ScoredWindow> = (0..100)
//!     .map(|t| {
//!         let hit = steps_hit(&steps, &[t * s]);
//!         ScoredWindow {
//!             recording: 0,
//!             channel: 0,
//!             start_ns: t * s,
//!             end_ns: t * s,
//!             attack: !hit.is_empty(),
//!             steps: hit,
//!             score: if t == 42 || t == 70 { 1.0 } else { 0.0 },
//!         }
//!     })
//!     .collect();
//! let view = operator_view(&windows, &steps, 0.5, &AlertRule::default(), 2 * s);
//! assert_eq!(view.steps[0].latency_s, Some(2.0));
//! assert_eq!((view.true_alarms, view.false_alarms), (1, 1));
//! ```
#![deny(missing_docs)]

pub mod context;
pub mod declared;
pub mod eval;
pub mod labels;
pub mod model;
pub mod net_alerts;
pub mod net_eval;
pub mod net_train;
pub mod operator;
pub mod recording;
pub mod train;
