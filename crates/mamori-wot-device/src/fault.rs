//! The faults a device can be switched into, and the switch itself (shared by every connection).

use std::fmt;
use std::process;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

/// A misbehaviour of the device's property endpoints (see the crate's `--help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    None,
    /// `temperature` is the string `"hot"`.
    WrongType,
    /// `temperature` is 500.0 (maximum 125).
    OutOfRange,
    /// `status` lacks its required `uptime`.
    MissingMember,
    /// Requests other than /control are read and never answered.
    Hang,
    /// The process exits with status 1.
    Crash,
    /// Property reads are answered after this many milliseconds.
    Slow(u64),
    /// Like `Slow`, but only during even wall-clock seconds: a device whose latency flaps
    /// around the monitor's timeout (one slow round, one fast round, …).
    Flap(u64),
    /// `temperature` is a JSON string of [`HUGE_BYTES`].
    Huge,
    /// `temperature` is an HTML page.
    NotJson,
    /// Property reads are answered with 500.
    Http500,
}

/// The longest `slow:MS` accepted (10 min): anything longer is what `hang` is for.
pub const MAX_SLOW_MS: u64 = 600_000;

/// Size of the `huge` body, quotes included.
pub const HUGE_BYTES: usize = 10 * 1024 * 1024;

/// The fault names, for messages and `--help`.
pub const NAMES: &str = "none, wrong-type, out-of-range, missing-member, hang, crash, slow:MS, \
                          flap:MS, huge, not-json, http-500";

impl Fault {
    /// Parses a fault name as given on the command line or to /control/fault (whitespace around
    /// it is ignored, so `echo hang | curl --data-binary @-` works).
    pub fn parse(text: &str) -> Result<Fault, String> {
        let text = text.trim();
        Ok(match text {
            "none" => Fault::None,
            "wrong-type" => Fault::WrongType,
            "out-of-range" => Fault::OutOfRange,
            "missing-member" => Fault::MissingMember,
            "hang" => Fault::Hang,
            "crash" => Fault::Crash,
            "huge" => Fault::Huge,
            "not-json" => Fault::NotJson,
            "http-500" => Fault::Http500,
            _ => match text
                .strip_prefix("slow:")
                .map(|d| (d, false))
                .or_else(|| text.strip_prefix("flap:").map(|d| (d, true)))
            {
                Some((digits, flap)) => {
                    let ms = match digits.parse::<u64>() {
                        Ok(ms)
                            if ms <= MAX_SLOW_MS && digits.bytes().all(|b| b.is_ascii_digit()) =>
                        {
                            ms
                        }
                        _ => {
                            return Err(format!(
                                "bad delay in fault {text:?}: want slow:MS or flap:MS, MS a whole \
                                 number of milliseconds up to {MAX_SLOW_MS}"
                            ))
                        }
                    };
                    if flap {
                        Fault::Flap(ms)
                    } else {
                        Fault::Slow(ms)
                    }
                }
                None => return Err(format!("unknown fault {text:?} (known: {NAMES})")),
            },
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::None => f.write_str("none"),
            Fault::WrongType => f.write_str("wrong-type"),
            Fault::OutOfRange => f.write_str("out-of-range"),
            Fault::MissingMember => f.write_str("missing-member"),
            Fault::Hang => f.write_str("hang"),
            Fault::Crash => f.write_str("crash"),
            Fault::Slow(ms) => write!(f, "slow:{ms}"),
            Fault::Flap(ms) => write!(f, "flap:{ms}"),
            Fault::Huge => f.write_str("huge"),
            Fault::NotJson => f.write_str("not-json"),
            Fault::Http500 => f.write_str("http-500"),
        }
    }
}

/// The fault in force, read on every request and set by /control/fault.
#[derive(Debug)]
pub struct FaultSwitch {
    current: Mutex<Fault>,
}

impl FaultSwitch {
    /// A switch set to `fault`.
    pub fn new(fault: Fault) -> FaultSwitch {
        FaultSwitch {
            current: Mutex::new(fault),
        }
    }

    /// The fault in force.
    pub fn get(&self) -> Fault {
        // Nothing panics while holding the lock, but a poisoned Fault is still a valid Fault.
        *self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `fault` in force; returns the one it replaces.
    pub fn set(&self, fault: Fault) -> Fault {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *current, fault)
    }
}

/// The `crash` fault: exit with status 1 after `delay` (from another thread, so the caller can
/// still answer the request that asked for it).
pub fn crash_after(delay: Duration) {
    let exit = move || {
        thread::sleep(delay);
        eprintln!("mamori-wot-device: fault crash: exiting with status 1");
        process::exit(1);
    };
    if thread::Builder::new()
        .name("crash".into())
        .spawn(exit)
        .is_err()
    {
        eprintln!("mamori-wot-device: fault crash: exiting with status 1");
        process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for fault in [
            Fault::None,
            Fault::WrongType,
            Fault::OutOfRange,
            Fault::MissingMember,
            Fault::Hang,
            Fault::Crash,
            Fault::Slow(450),
            Fault::Slow(0),
            Fault::Huge,
            Fault::NotJson,
            Fault::Http500,
        ] {
            assert_eq!(Fault::parse(&fault.to_string()), Ok(fault));
        }
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(Fault::parse(" hang\n"), Ok(Fault::Hang));
        assert_eq!(Fault::parse("slow:450\r\n"), Ok(Fault::Slow(450)));
        assert_eq!(Fault::parse("flap:700"), Ok(Fault::Flap(700)));
        assert_eq!(Fault::Flap(700).to_string(), "flap:700");
    }

    #[test]
    fn bad_names_are_rejected_with_the_known_ones() {
        let err = Fault::parse("explode").unwrap_err();
        assert!(
            err.contains("explode") && err.contains("wrong-type"),
            "{err}"
        );
        assert!(Fault::parse("").is_err());
        assert!(Fault::parse("Hang").is_err());
        assert!(Fault::parse("none ish").is_err());
    }

    #[test]
    fn slow_needs_a_sane_delay() {
        for bad in [
            "slow:",
            "slow:abc",
            "slow:-1",
            "slow:+5",
            "slow:1.5",
            "slow:600001",
            "slow: 5",
        ] {
            let err = Fault::parse(bad).unwrap_err();
            assert!(err.contains("slow:MS"), "{bad}: {err}");
        }
        assert_eq!(Fault::parse("slow:600000"), Ok(Fault::Slow(600_000)));
    }

    #[test]
    fn switch_returns_the_previous_fault() {
        let switch = FaultSwitch::new(Fault::None);
        assert_eq!(switch.set(Fault::Huge), Fault::None);
        assert_eq!(switch.get(), Fault::Huge);
    }
}
