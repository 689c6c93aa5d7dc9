//! The simulated readings. One clock serves every thing: values change on whole seconds since
//! start ("ticks"), so a long-poll just sleeps until a shared tick instead of needing a thread
//! or a timer per thing. Each thing keeps only what clients can change: its counter's reset
//! point and its mode.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Seconds between two `overheat` events of a thing.
pub const EVENT_PERIOD: u64 = 2;

/// Whole seconds since start.
#[derive(Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// Whole seconds since start.
    pub fn tick(&self) -> u64 {
        self.start.elapsed().as_secs()
    }

    /// Sleeps until tick `tick` starts, or for at most `limit`; returns the tick then current.
    pub fn wait_for(&self, tick: u64, limit: Duration) -> u64 {
        let due = self.start + Duration::from_secs(tick);
        let wait = due.saturating_duration_since(Instant::now()).min(limit);
        thread::sleep(wait);
        self.tick()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

/// Thing `index`'s temperature at `tick`: 20 ± 5 °C over a ~3 min period, each thing at another
/// phase so they don't all read the same; two decimals, like a real sensor.
pub fn temperature(index: usize, tick: u64) -> f64 {
    let phase = (index as u64 % 1000) * 7;
    let t = (tick + phase) as f64;
    round2(20.0 + 5.0 * (t / 30.0).sin())
}

/// The value an `overheat` event carries: the temperature at that tick + 100.
pub fn overheat(index: usize, tick: u64) -> f64 {
    round2(temperature(index, tick) + 100.0)
}

/// The tick of the next `overheat` event after `tick` (all things fire together).
pub fn next_event(tick: u64) -> u64 {
    (tick / EVENT_PERIOD + 1) * EVENT_PERIOD
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The `mode` property's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Auto,
    Manual,
}

impl Mode {
    /// Its JSON string value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Manual => "manual",
        }
    }

    /// The mode named `name`, if any.
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "auto" => Some(Mode::Auto),
            "manual" => Some(Mode::Manual),
            _ => None,
        }
    }
}

/// The writable state of one thing; atomics, so 5,000 reads a second take no lock.
#[derive(Debug, Default)]
pub struct ThingState {
    /// The tick the counter was last reset at (0: never, counting since start).
    counter_base: AtomicU64,
    manual: AtomicBool,
}

impl ThingState {
    /// The counter at `tick`: +1 a second since start or the last reset.
    pub fn counter(&self, tick: u64) -> u64 {
        tick.saturating_sub(self.counter_base.load(Ordering::Relaxed))
    }

    /// Sets the counter back to 0 at `tick`.
    pub fn reset(&self, tick: u64) {
        self.counter_base.store(tick, Ordering::Relaxed);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        if self.manual.load(Ordering::Relaxed) {
            Mode::Manual
        } else {
            Mode::Auto
        }
    }

    /// Changes the mode.
    pub fn set_mode(&self, mode: Mode) {
        self.manual.store(mode == Mode::Manual, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_stays_plausible_and_varies() {
        for index in [0, 1, 999] {
            let values: Vec<f64> = (0..200).map(|t| temperature(index, t)).collect();
            assert!(
                values.iter().all(|v| (15.0..=25.0).contains(v)),
                "{values:?}"
            );
            assert!(values.windows(2).all(|w| (w[0] - w[1]).abs() < 0.2));
            assert!(values.iter().any(|&v| v != values[0]));
        }
        assert_ne!(temperature(0, 10), temperature(1, 10));
    }

    #[test]
    fn events_fire_every_period() {
        assert_eq!(next_event(0), 2);
        assert_eq!(next_event(1), 2);
        assert_eq!(next_event(2), 4);
        assert_eq!(overheat(0, 4), round2(temperature(0, 4) + 100.0));
    }

    #[test]
    fn counter_counts_from_the_last_reset() {
        let thing = ThingState::default();
        assert_eq!(thing.counter(7), 7);
        thing.reset(7);
        assert_eq!(thing.counter(7), 0);
        assert_eq!(thing.counter(9), 2);
    }

    #[test]
    fn mode_defaults_to_auto() {
        let thing = ThingState::default();
        assert_eq!(thing.mode(), Mode::Auto);
        thing.set_mode(Mode::Manual);
        assert_eq!(thing.mode().as_str(), "manual");
        assert_eq!(Mode::parse("auto"), Some(Mode::Auto));
        assert_eq!(Mode::parse("Auto"), None);
    }

    #[test]
    fn waiting_is_bounded() {
        let clock = Clock::new();
        let started = Instant::now();
        clock.wait_for(1_000, Duration::from_millis(20));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(clock.wait_for(0, Duration::from_secs(5)), clock.tick());
    }
}
