//! What an operator sees, rather than window rates: alerts made of consecutive flagged windows,
//! whether each attack step raised one and how soon, and false alarms per hour of normal time.

use serde::Serialize;

use crate::labels::AttackRange;

/// One scored window of a timed recording, in the order the recording produced it.
#[derive(Debug, Clone, Copy)]
pub struct TimedWindow {
    /// Which recording (windows of different recordings never merge).
    pub recording: u32,
    /// Time of the window's first call (ns).
    pub start_ns: i64,
    /// Time of its last call: the earliest moment it can be scored (ns).
    pub end_ns: i64,
    /// Overlaps a labelled attack step.
    pub attack: bool,
    /// Its score is over the threshold.
    pub flagged: bool,
}

/// Whether one labelled attack step raised an alert.
#[derive(Debug, Clone, Serialize)]
pub struct StepAlert {
    /// The step's name from the labels file.
    pub name: String,
    /// Start and end of the step (ns).
    pub from_ns: i64,
    pub to_ns: i64,
    /// Seconds from the step's start until an alert overlapping it fires (the end of the
    /// alert's `min_windows`-th window); `None` when no alert overlaps it.
    pub latency_s: Option<f64>,
}

/// Alerts over a whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    /// Alerts that touch no attack step.
    pub false_alarms: usize,
    /// Alerts that overlap an attack step.
    pub true_alarms: usize,
    /// Time covered by the recordings outside the labelled steps (hours).
    pub normal_hours: f64,
    /// `false_alarms / normal_hours`.
    pub false_alarms_per_hour: f64,
    /// One entry per labelled step that falls inside a recording.
    pub steps: Vec<StepAlert>,
}

/// Merges flagged windows into alerts and measures them. Consecutive flagged windows make one
/// alert, and alerts less than `merge_gap_ns` apart are one alert too (an operator is paged
/// once for a burst, not once per window). Normal and attack windows never share an alert, so
/// a detector that flags everything cannot hide its false alarms inside one long true one.
/// An alert fires only once it holds `min_windows` flagged windows; shorter bursts are dropped.
pub fn operator_view(
    windows: &[TimedWindow],
    steps: &[AttackRange],
    merge_gap_ns: i64,
    min_windows: usize,
) -> OperatorView {
    let min_windows = min_windows.max(1);
    let mut recordings: Vec<u32> = windows.iter().map(|w| w.recording).collect();
    recordings.sort_unstable();
    recordings.dedup();
    let (mut false_alarms, mut true_alarms) = (0, 0);
    let mut normal_ns = 0i64;
    let mut spans = Vec::new();
    let mut fired: Vec<Alarm> = Vec::new();
    for rec in recordings {
        let ws: Vec<&TimedWindow> = windows.iter().filter(|w| w.recording == rec).collect();
        let alarms: Vec<Alarm> = merge(&runs_of_flagged(&ws), merge_gap_ns)
            .into_iter()
            .filter(|a| a.ends.len() >= min_windows)
            .collect();
        false_alarms += alarms.iter().filter(|a| !a.attack).count();
        true_alarms += alarms.iter().filter(|a| a.attack).count();
        let start = ws.iter().map(|w| w.start_ns).min().unwrap_or(0);
        let end = ws.iter().map(|w| w.end_ns).max().unwrap_or(0);
        normal_ns += (end - start) - covered(steps, start, end);
        spans.push((start, end));
        fired.extend(alarms.into_iter().filter(|a| a.attack));
    }
    let steps = steps
        .iter()
        .filter(|s| spans.iter().any(|&(a, b)| s.from_ns <= b && s.to_ns >= a))
        .map(|s| StepAlert {
            name: s.name.clone(),
            from_ns: s.from_ns,
            to_ns: s.to_ns,
            latency_s: fired
                .iter()
                .filter(|a| a.start_ns <= s.to_ns && a.end_ns >= s.from_ns)
                .map(|a| a.fires_at(min_windows))
                .min()
                .map(|t| (t - s.from_ns).max(0) as f64 / 1e9),
        })
        .collect();
    let normal_hours = normal_ns.max(0) as f64 / 3.6e12;
    OperatorView {
        false_alarms,
        true_alarms,
        normal_hours,
        false_alarms_per_hour: if normal_hours > 0.0 {
            false_alarms as f64 / normal_hours
        } else {
            0.0
        },
        steps,
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Alarm {
    start_ns: i64,
    end_ns: i64,
    attack: bool,
    /// End times of its windows: when each could be scored.
    ends: Vec<i64>,
}

impl Alarm {
    /// When the alarm holds `k` windows.
    fn fires_at(&self, k: usize) -> i64 {
        let mut ends = self.ends.clone();
        ends.sort_unstable();
        ends[(k - 1).min(ends.len() - 1)]
    }
}

/// Runs of consecutive flagged windows with the same label, in recording order.
fn runs_of_flagged(ws: &[&TimedWindow]) -> Vec<Alarm> {
    let mut out: Vec<Alarm> = Vec::new();
    let mut open = false;
    for w in ws {
        if !w.flagged {
            open = false;
            continue;
        }
        match out.last_mut() {
            Some(a) if open && a.attack == w.attack => {
                a.start_ns = a.start_ns.min(w.start_ns);
                a.end_ns = a.end_ns.max(w.end_ns);
                a.ends.push(w.end_ns);
            }
            _ => out.push(Alarm {
                start_ns: w.start_ns,
                end_ns: w.end_ns,
                attack: w.attack,
                ends: vec![w.end_ns],
            }),
        }
        open = true;
    }
    out
}

/// Joins alarms with the same label that overlap or lie less than `gap_ns` apart.
fn merge(alarms: &[Alarm], gap_ns: i64) -> Vec<Alarm> {
    let mut out: Vec<Alarm> = Vec::new();
    for attack in [false, true] {
        let mut same: Vec<Alarm> = alarms
            .iter()
            .filter(|a| a.attack == attack)
            .cloned()
            .collect();
        same.sort_by_key(|a| a.start_ns);
        let first = out.len();
        for a in same {
            match out[first..].last_mut() {
                Some(last) if a.start_ns <= last.end_ns.saturating_add(gap_ns) => {
                    last.end_ns = last.end_ns.max(a.end_ns);
                    last.ends.extend(a.ends);
                }
                _ => out.push(a),
            }
        }
    }
    out
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

    fn w(t: i64, attack: bool, flagged: bool) -> TimedWindow {
        TimedWindow {
            recording: 0,
            start_ns: t * S,
            end_ns: t * S + S / 2,
            attack,
            flagged,
        }
    }

    fn step(from: i64, to: i64, name: &str) -> AttackRange {
        AttackRange {
            from_ns: from * S,
            to_ns: to * S,
            name: name.into(),
        }
    }

    #[test]
    fn consecutive_flags_are_one_alarm_and_gaps_split_them() {
        // Flags at 10,11 (one run), 13 (1.5 s after the run ends: its own alarm with a 1 s gap),
        // 100; the hour-long recording has no attack.
        let mut ws: Vec<TimedWindow> = (0..3600).map(|t| w(t, false, false)).collect();
        for t in [10, 11, 13, 100] {
            ws[t as usize].flagged = true;
        }
        let v = operator_view(&ws, &[], S, 1);
        assert_eq!(v.false_alarms, 3);
        let v = operator_view(&ws, &[], 2 * S, 1);
        assert_eq!(v.false_alarms, 2, "13 joins the run at 10–11.5 within 2 s");
        assert!((v.normal_hours - (3599.5 / 3600.0)).abs() < 1e-9);
    }

    #[test]
    fn steps_get_their_latency_and_attack_time_is_not_normal_time() {
        let mut ws: Vec<TimedWindow> = (0..100)
            .map(|t| w(t, (40..=45).contains(&t), false))
            .collect();
        ws[42].flagged = true; // inside the first step, ends at 42.5 s
        ws[70].flagged = true; // a false alarm
        let steps = [
            step(40, 45, "edit"),
            step(60, 61, "ps"),
            step(500, 501, "elsewhere"),
        ];
        let v = operator_view(&ws, &steps, S, 1);
        assert_eq!(
            v.steps.len(),
            2,
            "a step outside every recording is left out"
        );
        assert_eq!(v.steps[0].latency_s, Some(2.5));
        assert_eq!(v.steps[1].latency_s, None);
        assert_eq!((v.true_alarms, v.false_alarms), (1, 1));
        let normal_s = v.normal_hours * 3600.0;
        assert!((normal_s - (99.5 - 5.0 - 1.0)).abs() < 1e-6, "{normal_s}");
    }

    #[test]
    fn a_detector_that_flags_everything_has_false_alarms() {
        let ws: Vec<TimedWindow> = (0..100)
            .map(|t| w(t, (40..=45).contains(&t), true))
            .collect();
        let v = operator_view(&ws, &[step(40, 45, "edit")], S, 1);
        assert_eq!(
            (v.true_alarms, v.false_alarms),
            (1, 2),
            "before and after the step"
        );
        assert_eq!(
            v.steps[0].latency_s,
            Some(0.5),
            "a window ending before the step cannot fire for it"
        );
    }

    #[test]
    fn short_bursts_do_not_page_and_long_ones_fire_on_their_kth_window() {
        let mut ws: Vec<TimedWindow> = (0..100)
            .map(|t| w(t, (40..=49).contains(&t), false))
            .collect();
        for t in [10, 11, 40, 41, 42, 43] {
            ws[t].flagged = true;
        }
        let steps = [step(40, 49, "download")];
        let v = operator_view(&ws, &steps, S / 10, 3);
        assert_eq!(
            (v.true_alarms, v.false_alarms),
            (1, 0),
            "the 2-window burst is dropped"
        );
        assert_eq!(v.steps[0].latency_s, Some(2.5), "fires when window 42 ends");
        assert_eq!(
            operator_view(&ws, &steps, S / 10, 5).steps[0].latency_s,
            None
        );
    }

    #[test]
    fn recordings_do_not_merge() {
        let mut a = w(5, false, true);
        let mut b = w(5, false, true);
        a.recording = 0;
        b.recording = 1;
        assert_eq!(operator_view(&[a, b], &[], S, 1).false_alarms, 2);
    }
}
