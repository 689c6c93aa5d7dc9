//! When to restart a failed Thing's container: at once the first time, then with exponential
//! backoff while it keeps failing, and never more than `max_restarts` times within `window`:
//! past that the Thing is quarantined (a crash loop is not fixed by restarting it faster).

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoveryPolicy {
    /// Restart the mapped container on failure (else only report).
    pub enabled: bool,
    /// Restarts allowed within `window_seconds` before the Thing is quarantined.
    pub max_restarts: u32,
    /// The crash-loop window.
    pub window_seconds: f64,
    /// Wait before the second restart in a row; doubled for each further one.
    pub backoff_initial_seconds: f64,
    /// The longest wait.
    pub backoff_max_seconds: f64,
    /// A restarted Thing not healthy within this long has failed again.
    pub healthy_timeout_seconds: f64,
    /// Seconds Docker waits after SIGTERM before SIGKILL on restart.
    pub stop_timeout_seconds: u32,
    /// Lines of the container's log kept as evidence.
    pub logs_tail: usize,
}

impl Default for RecoveryPolicy {
    fn default() -> Self {
        RecoveryPolicy {
            enabled: true,
            max_restarts: 3,
            window_seconds: 600.0,
            backoff_initial_seconds: 1.0,
            backoff_max_seconds: 60.0,
            healthy_timeout_seconds: 20.0,
            stop_timeout_seconds: 2,
            logs_tail: 50,
        }
    }
}

impl RecoveryPolicy {
    /// Values that parse but cannot work, named by their key.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("window_seconds", self.window_seconds),
            ("backoff_initial_seconds", self.backoff_initial_seconds),
            ("backoff_max_seconds", self.backoff_max_seconds),
            ("healthy_timeout_seconds", self.healthy_timeout_seconds),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "recovery.{key} must be a positive number of seconds, got {v}"
                ));
            }
        }
        if self.max_restarts == 0 {
            return Err(
                "recovery.max_restarts must be at least 1 (set enabled = false to never restart)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Restart after waiting `delay`; `attempt` counts restarts in a row (1 = first).
    Restart {
        /// The backoff wait.
        delay: Duration,
        /// Restarts in a row, this one included.
        attempt: u32,
    },
    /// Too many restarts within the window: stop restarting.
    Quarantine {
        /// Restarts within the window.
        restarts: usize,
    },
}

/// The crash-loop guard and backoff state of one container.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    restarts_ns: VecDeque<i64>,
    in_a_row: u32,
}

impl Guard {
    /// What to do about a failure at `now_ns`.
    pub fn decide(&mut self, policy: &RecoveryPolicy, now_ns: i64) -> Decision {
        let window_ns = (policy.window_seconds * 1e9) as i64;
        while self
            .restarts_ns
            .front()
            .is_some_and(|&t| now_ns - t > window_ns)
        {
            self.restarts_ns.pop_front();
        }
        if self.restarts_ns.len() >= policy.max_restarts as usize {
            return Decision::Quarantine {
                restarts: self.restarts_ns.len(),
            };
        }
        let delay = match self.in_a_row {
            0 => Duration::ZERO,
            n => {
                let secs = policy.backoff_initial_seconds * 2f64.powi(n as i32 - 1);
                Duration::from_secs_f64(secs.min(policy.backoff_max_seconds))
            }
        };
        Decision::Restart {
            delay,
            attempt: self.in_a_row + 1,
        }
    }

    /// A restart was made at `now_ns`.
    pub fn restarted(&mut self, now_ns: i64) {
        self.restarts_ns.push_back(now_ns);
        self.in_a_row += 1;
    }

    /// The Thing is healthy again: the next failure restarts at once (the window still counts).
    pub fn healthy(&mut self) {
        self.in_a_row = 0;
    }

    /// Restarts within the window as last pruned.
    pub fn recent_restarts(&self) -> usize {
        self.restarts_ns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn backoff_doubles_then_the_guard_quarantines() {
        let policy = RecoveryPolicy {
            max_restarts: 3,
            window_seconds: 60.0,
            backoff_initial_seconds: 1.0,
            backoff_max_seconds: 1.5,
            ..RecoveryPolicy::default()
        };
        let mut g = Guard::default();
        let mut delays = Vec::new();
        for i in 0..3 {
            match g.decide(&policy, i * 10 * S) {
                Decision::Restart { delay, .. } => delays.push(delay.as_secs_f64()),
                d => panic!("restart expected, got {d:?}"),
            }
            g.restarted(i * 10 * S);
        }
        assert_eq!(delays, vec![0.0, 1.0, 1.5]);
        assert_eq!(
            g.decide(&policy, 30 * S),
            Decision::Quarantine { restarts: 3 }
        );
        // a minute after the first restart, one slot is free again
        assert!(matches!(
            g.decide(&policy, 61 * S),
            Decision::Restart { attempt: 4, .. }
        ));
    }

    #[test]
    fn health_resets_the_backoff_but_not_the_window() {
        let policy = RecoveryPolicy::default();
        let mut g = Guard::default();
        g.restarted(0);
        g.healthy();
        assert_eq!(
            g.decide(&policy, S),
            Decision::Restart {
                delay: Duration::ZERO,
                attempt: 1
            }
        );
        assert_eq!(g.recent_restarts(), 1);
        assert!(RecoveryPolicy {
            max_restarts: 0,
            ..policy
        }
        .check()
        .is_err());
        assert!(RecoveryPolicy {
            window_seconds: f64::NAN,
            ..policy
        }
        .check()
        .is_err());
    }
}
