//! A Thing's health from its probe rounds: healthy → suspect → failed with hysteresis, so one
//! slow reply is only a suspicion and a device must pass several rounds to be trusted again.
//! Every transition keeps its reason.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Where a Thing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not probed yet (its TD is loading).
    Unknown,
    /// Its last rounds conformed.
    Healthy,
    /// A bad round, not yet enough to act on.
    Suspect,
    /// Enough bad rounds in a row: recovery starts.
    Failed,
    /// Its container was restarted; waiting for the probes to pass.
    Recovering,
    /// Restarted too often: left alone until it is healthy on its own or a person acts.
    Quarantined,
    /// Its TD cannot be used (not JSON, not a TD): nothing to probe.
    Invalid,
}

impl State {
    /// Every state, for metrics (`mamori_thing_state{state}`).
    pub const ALL: [State; 7] = [
        State::Unknown,
        State::Healthy,
        State::Suspect,
        State::Failed,
        State::Recovering,
        State::Quarantined,
        State::Invalid,
    ];

    /// The name as in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Healthy => "healthy",
            State::Suspect => "suspect",
            State::Failed => "failed",
            State::Recovering => "recovering",
            State::Quarantined => "quarantined",
            State::Invalid => "invalid",
        }
    }
}

/// One change of state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Before.
    pub from: State,
    /// After.
    pub to: State,
    /// When (ns since the epoch).
    pub at_ns: i64,
    /// Why, for people.
    pub reason: String,
}

/// The hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hysteresis {
    /// Bad rounds in a row that make a Thing failed (the first makes it suspect).
    pub fail_after: u32,
    /// Good rounds in a row that make a suspect or recovering Thing healthy again.
    pub recover_after: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis {
            fail_after: 2,
            recover_after: 2,
        }
    }
}

/// Transitions kept for the status API.
const HISTORY: usize = 32;

/// The state machine of one Thing.
#[derive(Debug, Clone)]
pub struct Health {
    hysteresis: Hysteresis,
    state: State,
    bad_streak: u32,
    good_streak: u32,
    since_ns: i64,
    history: VecDeque<Transition>,
}

impl Health {
    /// A Thing not probed yet.
    pub fn new(hysteresis: Hysteresis, now_ns: i64) -> Self {
        Health {
            hysteresis: Hysteresis {
                fail_after: hysteresis.fail_after.max(1),
                recover_after: hysteresis.recover_after.max(1),
            },
            state: State::Unknown,
            bad_streak: 0,
            good_streak: 0,
            since_ns: now_ns,
            history: VecDeque::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Since when (ns).
    pub fn since_ns(&self) -> i64 {
        self.since_ns
    }

    /// Bad rounds in a row.
    pub fn bad_streak(&self) -> u32 {
        self.bad_streak
    }

    /// The last transitions, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &Transition> {
        self.history.iter()
    }

    /// The latest transition's reason.
    pub fn reason(&self) -> &str {
        self.history.back().map_or("", |t| t.reason.as_str())
    }

    /// Moves to `to` (recovery actions use this: recovering, quarantined, invalid).
    pub fn set(&mut self, to: State, reason: impl Into<String>, now_ns: i64) -> Option<Transition> {
        if to == self.state {
            return None;
        }
        if matches!(to, State::Recovering) {
            self.good_streak = 0;
            self.bad_streak = 0;
        }
        let t = Transition {
            from: self.state,
            to,
            at_ns: now_ns,
            reason: reason.into(),
        };
        self.state = to;
        self.since_ns = now_ns;
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(t.clone());
        Some(t)
    }

    /// A probe round: `problem` is `None` for a good round, else why it was bad. Returns the
    /// transition it caused, if any.
    pub fn observe(&mut self, problem: Option<&str>, now_ns: i64) -> Option<Transition> {
        match problem {
            None => {
                self.good_streak += 1;
                self.bad_streak = 0;
                let n = self.good_streak;
                let ready = n >= self.hysteresis.recover_after;
                match self.state {
                    State::Unknown | State::Invalid => {
                        self.set(State::Healthy, "every property conforms", now_ns)
                    }
                    State::Suspect | State::Failed | State::Recovering | State::Quarantined
                        if ready =>
                    {
                        let reason = format!("{n} good rounds in a row");
                        self.set(State::Healthy, reason, now_ns)
                    }
                    _ => None,
                }
            }
            Some(why) => {
                self.bad_streak += 1;
                self.good_streak = 0;
                let n = self.bad_streak;
                match self.state {
                    State::Unknown | State::Healthy | State::Invalid
                        if n >= self.hysteresis.fail_after =>
                    {
                        self.set(State::Failed, why, now_ns)
                    }
                    State::Unknown | State::Healthy | State::Invalid => {
                        self.set(State::Suspect, why, now_ns)
                    }
                    State::Suspect if n >= self.hysteresis.fail_after => {
                        let reason = format!("{n} bad rounds in a row: {why}");
                        self.set(State::Failed, reason, now_ns)
                    }
                    // Recovering waits for its deadline; failed and quarantined stay.
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(h: &mut Health, rounds: &[bool]) -> Vec<State> {
        rounds
            .iter()
            .enumerate()
            .map(|(i, good)| {
                h.observe((!good).then_some("slow"), i as i64);
                h.state()
            })
            .collect()
    }

    #[test]
    fn one_bad_round_is_suspect_two_are_failed() {
        use State::*;
        let mut h = Health::new(Hysteresis::default(), 0);
        assert_eq!(
            run(&mut h, &[true, false, true, true, false, false]),
            vec![Healthy, Suspect, Suspect, Healthy, Suspect, Failed]
        );
        assert!(
            h.reason().starts_with("2 bad rounds in a row: slow"),
            "{}",
            h.reason()
        );
    }

    #[test]
    fn a_flapping_device_never_fails() {
        let mut h = Health::new(Hysteresis::default(), 0);
        let states = run(
            &mut h,
            &[true, false, true, false, true, false, true, false],
        );
        assert!(!states.contains(&State::Failed), "{states:?}");
    }

    #[test]
    fn recovering_needs_good_rounds_and_history_is_kept() {
        let mut h = Health::new(
            Hysteresis {
                fail_after: 1,
                recover_after: 3,
            },
            0,
        );
        run(&mut h, &[true, false]);
        assert_eq!(h.state(), State::Failed);
        h.set(State::Recovering, "restarted", 10);
        assert_eq!(
            run(&mut h, &[false, true, true]),
            vec![State::Recovering; 3]
        );
        assert_eq!(run(&mut h, &[true]), vec![State::Healthy]);
        let trail: Vec<_> = h.history().map(|t| (t.from, t.to)).collect();
        assert_eq!(
            trail,
            vec![
                (State::Unknown, State::Healthy),
                (State::Healthy, State::Failed),
                (State::Failed, State::Recovering),
                (State::Recovering, State::Healthy)
            ]
        );
    }
}
