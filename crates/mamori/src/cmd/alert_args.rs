//! The alert-rule flags every scoring command shares (`score`, `net score`, `eval`, `agent`), so
//! an alert means the same thing everywhere.

use anyhow::{Context, Result};
use clap::Args;
use mamori_core::AlertRule;

/// `--alert-min-windows`, `--alert-gap`, `--alert-cooldown`.
#[derive(Args, Debug, Clone, Default)]
pub struct AlertArgs {
    /// Flagged windows (or rows) in a run before an alert fires [default: 10 for system-call
    /// windows, whose first-time programs and requests alert at once on their own; 1 for
    /// traffic rows].
    #[arg(
        value_parser = crate::cmd::numbers::count,
        long = "alert-min-windows",
        alias = "min-windows",
        value_name = "K",
        help_heading = "Alert rule"
    )]
    pub min_windows: Option<usize>,
    /// Flagged units no more than this many seconds apart are one run [default: 2].
    #[arg(
        value_parser = crate::cmd::numbers::non_negative,
        long = "alert-gap",
        value_name = "SECONDS",
        help_heading = "Alert rule"
    )]
    pub gap: Option<f64>,
    /// After an alert, flagged units within this many seconds alert again only with a higher
    /// score [default: 10].
    #[arg(
        value_parser = crate::cmd::numbers::non_negative,
        long = "alert-cooldown",
        value_name = "SECONDS",
        help_heading = "Alert rule"
    )]
    pub cooldown: Option<f64>,
}

impl AlertArgs {
    /// The rule: these flags over `base` (the agent's configuration, or the defaults).
    pub fn rule_over(&self, base: AlertRule) -> Result<AlertRule> {
        let min = self.min_windows.unwrap_or(base.min_flagged);
        let gap = self.gap.unwrap_or(base.gap_ns as f64 / 1e9);
        let cooldown = self.cooldown.unwrap_or(base.cooldown_ns as f64 / 1e9);
        AlertRule::from_seconds(min, gap, cooldown).context("alert rule flags")
    }

    /// The rule: these flags over the defaults.
    pub fn rule(&self) -> Result<AlertRule> {
        self.rule_over(AlertRule::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: AlertArgs,
    }

    #[test]
    fn flags_override_the_defaults_and_bad_values_are_refused() {
        let t = T::parse_from(["t", "--alert-gap", "0.5", "--min-windows", "3"]);
        let r = t.a.rule().unwrap();
        assert_eq!(
            (r.min_flagged, r.gap_ns, r.cooldown_ns),
            (3, 500_000_000, 10_000_000_000)
        );
        // refused where they are typed
        for bad in [
            ["t", "--alert-cooldown", "nan"],
            ["t", "--alert-gap", "-1"],
            ["t", "--alert-min-windows", "0"],
        ] {
            assert!(T::try_parse_from(bad).is_err(), "{bad:?}");
        }
        assert_eq!(T::parse_from(["t"]).a.rule().unwrap(), AlertRule::default());
    }
}
