//! When flagged units become an alert: the one rule the agent, `mamori score`, `mamori net
//! score` and the evaluation all apply.
//!
//! A unit (a window of calls, a row of traffic features) is *flagged* when its score is strictly
//! above the threshold. Flagged units of one subject no more than `gap` apart form a *run*; the
//! run fires an alert at its `min_flagged`-th unit. After an alert, flagged units within the
//! `cooldown` raise no new alert unless they score higher than the last alert did: one incident
//! pages once, but a mild alert cannot hide a worse one that follows.

use serde::{Deserialize, Serialize};

/// The alert rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRule {
    /// Flagged units in a run before an alert fires (at least 1).
    pub min_flagged: usize,
    /// Flagged units no more than this apart (ns) are one run.
    pub gap_ns: i64,
    /// After an alert, flagged units within this long (ns) alert again only with a higher score.
    pub cooldown_ns: i64,
}

impl Default for AlertRule {
    /// One flagged unit fires; runs join within 2 s; 10 s cooldown.
    fn default() -> Self {
        AlertRule {
            min_flagged: 1,
            gap_ns: 2_000_000_000,
            cooldown_ns: 10_000_000_000,
        }
    }
}

impl AlertRule {
    /// Flagged windows in a run before a system-call window model alerts, by default: a
    /// window model pages on sustained change (a daemon restarted or reconfigured, code running
    /// inside it), not on one odd window — normal daemons make those whenever a short-lived
    /// thread starts or ends. First-time actions (a new program, a new request) are the context
    /// signals' job, and those alert at once. Chosen on the motion evaluation (EVALUATION.md).
    pub const SYSCALL_MIN_FLAGGED: usize = 10;

    /// This rule for single events rather than runs of windows (a context signal's first-time
    /// program or request): the first flagged unit fires; gap and cooldown are kept.
    pub fn at_once(self) -> Self {
        AlertRule {
            min_flagged: 1,
            ..self
        }
    }

    /// The default rule for system-call windows: [`Self::SYSCALL_MIN_FLAGGED`] flagged windows
    /// within 2 s, 10 s cooldown.
    pub fn syscall_default() -> Self {
        AlertRule {
            min_flagged: Self::SYSCALL_MIN_FLAGGED,
            ..AlertRule::default()
        }
    }
}

/// A setting the rule cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// `min_flagged` of zero.
    #[error("the minimum number of flagged units must be at least 1")]
    ZeroMinFlagged,
    /// A negative, infinite or NaN duration.
    #[error("{name} must be a finite number of seconds >= 0, got {value}")]
    BadSeconds {
        /// Which setting.
        name: &'static str,
        /// What was given.
        value: f64,
    },
}

impl AlertRule {
    /// The rule from seconds, as configuration files and flags give it; checked.
    pub fn from_seconds(
        min_flagged: usize,
        gap_seconds: f64,
        cooldown_seconds: f64,
    ) -> Result<Self, RuleError> {
        if min_flagged == 0 {
            return Err(RuleError::ZeroMinFlagged);
        }
        let ns = |name: &'static str, value: f64| {
            if value.is_finite() && (0.0..9.0e9).contains(&value) {
                Ok((value * 1e9).round() as i64)
            } else {
                Err(RuleError::BadSeconds { name, value })
            }
        };
        Ok(AlertRule {
            min_flagged,
            gap_ns: ns("the alert gap", gap_seconds)?,
            cooldown_ns: ns("the alert cooldown", cooldown_seconds)?,
        })
    }
}

/// What the rule decided about one scored unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Not over the threshold.
    Below,
    /// Flagged, but the run is still shorter than `min_flagged`.
    Pending {
        /// Flagged units in the run so far.
        run_len: usize,
    },
    /// Flagged and the run is long enough, but inside the cooldown of an alert that scored at
    /// least as high: counted, not alerted.
    Suppressed {
        /// Flagged units in the run so far.
        run_len: usize,
    },
    /// Raise an alert.
    Fire {
        /// Flagged units in the run so far.
        run_len: usize,
        /// Time of the run's first flagged unit (ns).
        run_start_ns: i64,
    },
}

impl Decision {
    /// The unit was over the threshold.
    pub fn flagged(&self) -> bool {
        !matches!(self, Decision::Below)
    }
}

/// The rule's memory for one subject.
#[derive(Debug, Clone, Default)]
pub struct AlertState {
    run_len: usize,
    run_start_ns: i64,
    last_flag_ns: Option<i64>,
    last_alert_ns: Option<i64>,
    last_alert_score: f64,
}

impl AlertState {
    /// Feeds one unit that could be scored at `t_ns` with `score`; units must come in the order
    /// they were scored (times may step back a little: sources stamp calls when they start).
    pub fn observe(&mut self, rule: &AlertRule, t_ns: i64, score: f64, threshold: f64) -> Decision {
        // NaN is never flagged: a unit that could not be scored raises nothing.
        if score.is_nan() || score <= threshold {
            return Decision::Below;
        }
        let continues = self
            .last_flag_ns
            .is_some_and(|last| t_ns <= last.saturating_add(rule.gap_ns));
        if continues {
            self.run_len += 1;
        } else {
            self.run_len = 1;
            self.run_start_ns = t_ns;
        }
        self.last_flag_ns = Some(self.last_flag_ns.map_or(t_ns, |l| l.max(t_ns)));
        if self.run_len < rule.min_flagged.max(1) {
            return Decision::Pending {
                run_len: self.run_len,
            };
        }
        let cooling = self
            .last_alert_ns
            .is_some_and(|last| t_ns < last.saturating_add(rule.cooldown_ns));
        if cooling && score <= self.last_alert_score {
            return Decision::Suppressed {
                run_len: self.run_len,
            };
        }
        self.last_alert_ns = Some(t_ns);
        self.last_alert_score = score;
        Decision::Fire {
            run_len: self.run_len,
            run_start_ns: self.run_start_ns,
        }
    }
}

/// Counts of what the rule decided, for metrics and summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCounts {
    /// Units scored.
    pub scored: u64,
    /// Units over the threshold.
    pub flagged: u64,
    /// Alerts fired.
    pub alerts: u64,
    /// Flagged units that raised no alert because of the cooldown.
    pub suppressed: u64,
}

impl RuleCounts {
    /// Adds one decision.
    pub fn add(&mut self, d: &Decision) {
        self.scored += 1;
        match d {
            Decision::Below => {}
            Decision::Pending { .. } => self.flagged += 1,
            Decision::Suppressed { .. } => {
                self.flagged += 1;
                self.suppressed += 1;
            }
            Decision::Fire { .. } => {
                self.flagged += 1;
                self.alerts += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn rule(min: usize) -> AlertRule {
        AlertRule {
            min_flagged: min,
            gap_ns: 2 * S,
            cooldown_ns: 10 * S,
        }
    }

    #[test]
    fn a_run_fires_at_its_kth_flagged_unit_and_a_gap_restarts_it() {
        let r = rule(3);
        let mut s = AlertState::default();
        assert_eq!(s.observe(&r, 0, 1.0, 0.5), Decision::Pending { run_len: 1 });
        assert_eq!(
            s.observe(&r, S, 0.1, 0.5),
            Decision::Below,
            "unflagged units do not break a run"
        );
        assert_eq!(
            s.observe(&r, 2 * S, 1.0, 0.5),
            Decision::Pending { run_len: 2 }
        );
        // 5 s later: a new run
        assert_eq!(
            s.observe(&r, 7 * S, 1.0, 0.5),
            Decision::Pending { run_len: 1 }
        );
        assert_eq!(
            s.observe(&r, 8 * S, 1.0, 0.5),
            Decision::Pending { run_len: 2 }
        );
        assert_eq!(
            s.observe(&r, 9 * S, 1.0, 0.5),
            Decision::Fire {
                run_len: 3,
                run_start_ns: 7 * S
            }
        );
    }

    #[test]
    fn the_cooldown_holds_back_equal_scores_but_not_worse_ones() {
        let r = rule(1);
        let mut s = AlertState::default();
        assert!(matches!(s.observe(&r, 0, 0.6, 0.5), Decision::Fire { .. }));
        assert_eq!(
            s.observe(&r, S, 0.6, 0.5),
            Decision::Suppressed { run_len: 2 }
        );
        assert!(
            matches!(s.observe(&r, 2 * S, 0.9, 0.5), Decision::Fire { .. }),
            "worse"
        );
        assert_eq!(
            s.observe(&r, 3 * S, 0.7, 0.5),
            Decision::Suppressed { run_len: 4 }
        );
        // the cooldown counts from the last alert (2 s): at 12 s it is over
        assert!(matches!(
            s.observe(&r, 12 * S, 0.7, 0.5),
            Decision::Fire { .. }
        ));
    }

    #[test]
    fn strictly_above_the_threshold_and_nan_is_never_flagged() {
        let r = rule(1);
        let mut s = AlertState::default();
        assert_eq!(s.observe(&r, 0, 0.5, 0.5), Decision::Below);
        assert_eq!(s.observe(&r, 0, f64::NAN, 0.5), Decision::Below);
        let mut c = RuleCounts::default();
        c.add(&s.observe(&r, 0, 0.7, 0.5));
        c.add(&s.observe(&r, 0, 0.7, 0.5));
        c.add(&s.observe(&r, 0, 0.1, 0.5));
        assert_eq!(
            c,
            RuleCounts {
                scored: 3,
                flagged: 2,
                alerts: 1,
                suppressed: 1
            }
        );
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(
            AlertRule::from_seconds(0, 1.0, 1.0),
            Err(RuleError::ZeroMinFlagged)
        );
        assert!(AlertRule::from_seconds(1, f64::NAN, 1.0).is_err());
        assert!(AlertRule::from_seconds(1, 1.0, -1.0).is_err());
        assert!(AlertRule::from_seconds(1, 1.0, f64::INFINITY).is_err());
        assert_eq!(
            AlertRule::from_seconds(1, 2.0, 10.0),
            Ok(AlertRule::default())
        );
    }
}
