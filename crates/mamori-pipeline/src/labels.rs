//! Attack labels by time: `--attack-from/--attack-to` or labels files, read by
//! [`mamori_ingest::labels`] (`FROM TO [name]` lines; lines that also name hosts,
//! `FROM TO ATTACKER VICTIM [NAME]`, count by their time).
//!
//! Times are written as integer nanoseconds, decimal seconds (`1700000000.25`), or a time of day
//! `HH:MM:SS[.frac]` (nanoseconds since midnight, the clock strace `-tt` prints).

use std::path::Path;

use anyhow::Result;
use mamori_ingest::labels::{Expect, Step};

pub use mamori_ingest::labels::parse_time;

/// One labelled attack period, in the events' clock.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttackRange {
    /// Start, inclusive (ns).
    pub from_ns: i64,
    /// End, inclusive (ns).
    pub to_ns: i64,
    /// Step name from the labels file.
    pub name: String,
}

impl From<Step> for AttackRange {
    fn from(step: Step) -> Self {
        AttackRange {
            from_ns: step.from_ns,
            to_ns: step.to_ns,
            name: step.name,
        }
    }
}

/// Reads a labels file.
pub fn read_labels(path: &Path) -> Result<Vec<AttackRange>> {
    let steps = mamori_ingest::labels::read_labels(path, Expect::AnyShape)?;
    Ok(steps.into_iter().map(AttackRange::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_time_forms() {
        assert_eq!(parse_time("12").unwrap(), 12);
        assert_eq!(parse_time("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_time("01:02:03.5").unwrap(), 3_723_500_000_000);
        assert!(parse_time("48:00:00").is_err());
        assert!(parse_time("soon").is_err());
    }

    #[test]
    fn a_labels_file_of_either_shape_gives_time_ranges() {
        let dir = std::env::temp_dir().join(format!("mamori-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("steps.labels");
        std::fs::write(
            &path,
            "# FROM TO name\n1.5 2.5 edit config\n100 110 10.0.0.3 * scan\n",
        )
        .unwrap();
        let ranges = read_labels(&path).unwrap();
        std::fs::write(&path, "1 2\nnan 3\n").unwrap();
        let err = read_labels(&path).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            ranges,
            [
                AttackRange {
                    from_ns: 1_500_000_000,
                    to_ns: 2_500_000_000,
                    name: "edit config".into()
                },
                AttackRange {
                    from_ns: 100_000_000_000,
                    to_ns: 110_000_000_000,
                    name: "scan".into()
                }
            ]
        );
        assert!(
            err.ends_with("steps.labels:2: `nan` is not a finite time"),
            "{err}"
        );
    }
}
