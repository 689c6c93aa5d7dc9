//! What an operator sees, rather than window rates: the agent's alert rule replayed over the
//! scored windows of each recording, whether each attack step raised an alert and how soon, and
//! false alarms per hour of normal time.
//!
//! Counted strictly: an alert credits an attack step only when the window that fired it holds a
//! call made during the step, and it fires within the step or at most `grace` after it. Every
//! other alert — before an attack, long after it, or raised by windows of unrelated threads
//! while it runs — is a false alarm.

use std::collections::HashMap;

use mamori_core::rule::{AlertRule, AlertState, Decision};
use serde::Serialize;

use crate::labels::AttackRange;

/// One scored window of a timed recording, in the order the recording produced it.
#[derive(Debug, Clone)]
pub struct ScoredWindow {
    /// Which recording (each is one subject with its own rule state).
    pub recording: u32,
    /// Which signal: 0 for the window model; context signals (a new program, a new request)
    /// number their items from 1. Each signal of a recording keeps its own rule state, so a new
    /// program alerts even during the cooldown of a window alert.
    pub channel: u32,
    /// Time of the window's first call (ns).
    pub start_ns: i64,
    /// Time of its last call: the earliest moment it can be scored (ns).
    pub end_ns: i64,
    /// Labelled attack: holds calls of a step, or comes from a recording that is attack
    /// throughout.
    pub attack: bool,
    /// Indices of the steps during which at least one of its calls was made.
    pub steps: Vec<u32>,
    /// Its score.
    pub score: f64,
}

/// Whether one labelled attack step raised an alert.
#[derive(Debug, Clone, Serialize)]
pub struct StepAlert {
    /// The step's name from the labels file.
    pub name: String,
    /// Start and end of the step (ns).
    pub from_ns: i64,
    /// See `from_ns`.
    pub to_ns: i64,
    /// Seconds from the step's start until the first alert credited to it fired; `None` when
    /// none was.
    pub latency_s: Option<f64>,
}

/// Alerts over a whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    /// Alerts credited to no attack.
    pub false_alarms: usize,
    /// Alerts credited to an attack step (or fired by a recording that is attack throughout).
    pub true_alarms: usize,
    /// Flagged windows held back by the cooldown.
    pub suppressed: usize,
    /// Time covered by the recordings outside the labelled steps (hours).
    pub normal_hours: f64,
    /// `false_alarms / normal_hours`.
    pub false_alarms_per_hour: f64,
    /// One entry per labelled step that falls inside a recording.
    pub steps: Vec<StepAlert>,
    /// Every alert, in order, for reading what paged.
    pub alerts: Vec<FiredAlert>,
}

/// One alert of an operator view.
#[derive(Debug, Clone, Serialize)]
pub struct FiredAlert {
    /// Recording.
    pub recording: u32,
    /// Signal (see [`ScoredWindow::channel`]).
    pub channel: u32,
    /// When it fired (ns).
    pub at_ns: i64,
    /// The score that fired it.
    pub score: f64,
    /// Steps it was credited to; empty for a false alarm (or an attack-throughout recording).
    pub credited: Vec<u32>,
    /// Whether it counts as a false alarm.
    pub false_alarm: bool,
}

/// Indices of the steps during which one of `call_times` lies.
pub fn steps_hit(steps: &[AttackRange], call_times: &[i64]) -> Vec<u32> {
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| call_times.iter().any(|&t| s.from_ns <= t && t <= s.to_ns))
        .map(|(i, _)| i as u32)
        .collect()
}

/// Replays `rule` at `threshold` over each recording's windows (in the order given, which must
/// be the order they were scored) and counts its alerts strictly; see the module doc.
pub fn operator_view(
    windows: &[ScoredWindow],
    steps: &[AttackRange],
    threshold: f64,
    rule: &AlertRule,
    grace_ns: i64,
) -> OperatorView {
    let mut recordings: Vec<u32> = windows.iter().map(|w| w.recording).collect();
    recordings.sort_unstable();
    recordings.dedup();
    let (mut false_alarms, mut true_alarms, mut suppressed) = (0, 0, 0);
    let mut first_alert: Vec<Option<i64>> = vec![None; steps.len()];
    let mut normal_ns = 0i64;
    let mut spans = Vec::new();
    let mut alerts = Vec::new();
    for rec in recordings {
        let mut states: HashMap<u32, AlertState> = HashMap::new();
        let (mut start, mut end) = (i64::MAX, i64::MIN);
        // Each signal has its own state, so only the order within a signal matters. A context
        // item is one event, not a run of windows: it alerts at once.
        let single = rule.at_once();
        for w in windows.iter().filter(|w| w.recording == rec) {
            start = start.min(w.start_ns);
            end = end.max(w.end_ns);
            let state = states.entry(w.channel).or_default();
            let rule = if w.channel == 0 { rule } else { &single };
            match state.observe(rule, w.end_ns, w.score, threshold) {
                Decision::Fire { .. } => {}
                Decision::Suppressed { .. } => {
                    suppressed += 1;
                    continue;
                }
                _ => continue,
            }
            let fired = w.end_ns;
            let credited: Vec<u32> = w
                .steps
                .iter()
                .copied()
                .filter(|&i| {
                    let s = &steps[i as usize];
                    s.from_ns <= fired && fired <= s.to_ns.saturating_add(grace_ns)
                })
                .collect();
            for &i in &credited {
                let first = &mut first_alert[i as usize];
                *first = Some(first.map_or(fired, |f| f.min(fired)));
            }
            // A recording that is attack throughout has no steps: its alerts are true ones.
            let true_alarm = !credited.is_empty() || (w.attack && w.steps.is_empty());
            if true_alarm {
                true_alarms += 1;
            } else {
                false_alarms += 1;
            }
            alerts.push(FiredAlert {
                recording: rec,
                channel: w.channel,
                at_ns: fired,
                score: w.score,
                credited,
                false_alarm: !true_alarm,
            });
        }
        if start <= end {
            normal_ns += (end - start) - covered(steps, start, end);
            spans.push((start, end));
        }
    }
    let steps = steps
        .iter()
        .zip(&first_alert)
        .filter(|(s, _)| spans.iter().any(|&(a, b)| s.from_ns <= b && s.to_ns >= a))
        .map(|(s, first)| StepAlert {
            name: s.name.clone(),
            from_ns: s.from_ns,
            to_ns: s.to_ns,
            latency_s: first.map(|t| (t - s.from_ns) as f64 / 1e9),
        })
        .collect();
    let normal_hours = normal_ns.max(0) as f64 / 3.6e12;
    OperatorView {
        false_alarms,
        true_alarms,
        suppressed,
        normal_hours,
        false_alarms_per_hour: if normal_hours > 0.0 {
            false_alarms as f64 / normal_hours
        } else {
            0.0
        },
        steps,
        alerts,
    }
}

/// Nanoseconds of `[start, end]` covered by the union of the ranges.
fn covered(ranges: &[AttackRange], start: i64, end: i64) -> i64 {
    let mut parts: Vec<(i64, i64)> = ranges
        .iter()
        .map(|r| (r.from_ns.max(start), r.to_ns.min(end)))
        .filter(|(a, b)| a < b)
        .collect();
    parts.sort_unstable();
    let (mut total, mut reach) = (0i64, i64::MIN);
    for (a, b) in parts {
        let a = a.max(reach);
        if b > a {
            total += b - a;
            reach = b;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn step(from: i64, to: i64, name: &str) -> AttackRange {
        AttackRange {
            from_ns: from * S,
            to_ns: to * S,
            name: name.into(),
        }
    }

    /// A window of one call at `t` s (so it spans [t, t]), labelled by the steps.
    fn w(t: i64, score: f64, steps: &[AttackRange]) -> ScoredWindow {
        let hit = steps_hit(steps, &[t * S]);
        ScoredWindow {
            recording: 0,
            channel: 0,
            start_ns: t * S,
            end_ns: t * S,
            attack: !hit.is_empty(),
            steps: hit,
            score,
        }
    }

    fn rule(min: usize, cooldown_s: i64) -> AlertRule {
        AlertRule {
            min_flagged: min,
            gap_ns: 2 * S,
            cooldown_ns: cooldown_s * S,
        }
    }

    #[test]
    fn the_agents_rule_decides_what_pages_and_normal_time_excludes_steps() {
        // an hour, flags at 10, 11 (one run: 1 alert, then cooldown), 13 (in the cooldown),
        // 100 (a new alert)
        let ws: Vec<ScoredWindow> = (0..3600)
            .map(|t| {
                w(
                    t,
                    if [10, 11, 13, 100].contains(&t) {
                        1.0
                    } else {
                        0.0
                    },
                    &[],
                )
            })
            .collect();
        let v = operator_view(&ws, &[], 0.5, &rule(1, 10), 2 * S);
        assert_eq!((v.false_alarms, v.suppressed), (2, 2));
        // without a cooldown each run alerts: 10-11-13 is one run (gaps <= 2 s) but every
        // flagged window of it fires with no cooldown
        let v = operator_view(&ws, &[], 0.5, &rule(1, 0), 2 * S);
        assert_eq!(v.false_alarms, 4);
        assert!((v.normal_hours - 3599.0 / 3600.0).abs() < 1e-9);
    }

    #[test]
    fn a_step_is_credited_only_by_its_own_windows_within_the_grace() {
        let steps = [
            step(40, 45, "edit"),
            step(60, 61, "ps"),
            step(500, 501, "elsewhere"),
        ];
        let mut ws: Vec<ScoredWindow> = (0..100).map(|t| w(t, 0.0, &steps)).collect();
        ws[42].score = 1.0; // inside the first step
        ws[70].score = 1.0; // a false alarm
        let v = operator_view(&ws, &steps, 0.5, &rule(1, 10), 2 * S);
        assert_eq!(
            v.steps.len(),
            2,
            "a step outside every recording is left out"
        );
        assert_eq!(v.steps[0].latency_s, Some(2.0));
        assert_eq!(v.steps[1].latency_s, None);
        assert_eq!((v.true_alarms, v.false_alarms), (1, 1));
        let normal_s = v.normal_hours * 3600.0;
        assert!((normal_s - (99.0 - 5.0 - 1.0)).abs() < 1e-6, "{normal_s}");
    }

    #[test]
    fn a_long_window_that_merely_spans_a_step_does_not_credit_it() {
        // A launcher thread's window: calls at 10 s and 90 s, spanning the step at 40–45 s
        // without a call inside it. It fires at 90 s: a false alarm, and the step is missed.
        let steps = [step(40, 45, "edit")];
        let launcher = ScoredWindow {
            recording: 0,
            channel: 0,
            start_ns: 10 * S,
            end_ns: 90 * S,
            attack: false,
            steps: steps_hit(&steps, &[10 * S, 90 * S]),
            score: 1.0,
        };
        assert!(launcher.steps.is_empty());
        let v = operator_view(
            &[w(0, 0.0, &steps), launcher],
            &steps,
            0.5,
            &rule(1, 10),
            2 * S,
        );
        assert_eq!((v.true_alarms, v.false_alarms), (0, 1));
        assert_eq!(v.steps[0].latency_s, None);
    }

    #[test]
    fn alerts_long_after_a_step_are_false_alarms() {
        // the attacker's shell keeps running after the step: a window with a call at 44 s that
        // completes at 60 s fires 15 s after the step ended
        let steps = [step(40, 45, "shell")];
        let late = ScoredWindow {
            recording: 0,
            channel: 0,
            start_ns: 44 * S,
            end_ns: 60 * S,
            attack: true,
            steps: steps_hit(&steps, &[44 * S, 60 * S]),
            score: 1.0,
        };
        assert_eq!(late.steps, vec![0]);
        let v = operator_view(
            &[w(0, 0.0, &steps), late.clone()],
            &steps,
            0.5,
            &rule(1, 10),
            2 * S,
        );
        assert_eq!((v.true_alarms, v.false_alarms), (0, 1));
        let v = operator_view(
            &[w(0, 0.0, &steps), late],
            &steps,
            0.5,
            &rule(1, 10),
            20 * S,
        );
        assert_eq!(
            (v.true_alarms, v.false_alarms),
            (1, 0),
            "within a 20 s grace"
        );
        assert_eq!(v.steps[0].latency_s, Some(20.0));
    }

    #[test]
    fn min_windows_waits_for_the_kth_and_recordings_keep_their_own_state() {
        let steps = [step(40, 49, "download")];
        let mut ws: Vec<ScoredWindow> = (0..100).map(|t| w(t, 0.0, &steps)).collect();
        for t in [10, 11, 40, 41, 42, 43] {
            ws[t].score = 1.0;
        }
        let v = operator_view(&ws, &steps, 0.5, &rule(3, 10), 2 * S);
        assert_eq!(
            (v.true_alarms, v.false_alarms),
            (1, 0),
            "the 2-window burst is dropped"
        );
        assert_eq!(v.steps[0].latency_s, Some(2.0), "fires at window 42");
        let mut a = w(5, 1.0, &[]);
        let mut b = w(5, 1.0, &[]);
        a.recording = 0;
        b.recording = 1;
        let v = operator_view(&[a, b], &[], 0.5, &rule(1, 10), 2 * S);
        assert_eq!(v.false_alarms, 2);
    }
}
