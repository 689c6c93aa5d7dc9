//! What an operator expects of a Thing beyond its TD: a property that must change within some
//! seconds (a frozen sensor answers with valid but stale values), a property that must stay in
//! a tighter range than the TD allows, an action that must succeed when invoked periodically.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::probe::{PropertyOutcome, PropertyResult};

/// One expectation, from `[[things.thing.expect]]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectation {
    /// The property it is about (for `changes_within_seconds` and `range`).
    pub property: String,
    /// The value must change at least this often (0: not checked).
    pub changes_within_seconds: f64,
    /// The value must stay within `[low, high]` (numbers only).
    pub range: Option<[f64; 2]>,
    /// An action to invoke every `every_seconds`; it must succeed.
    pub action: String,
    /// How often the action is invoked (default 60 s).
    pub every_seconds: f64,
    /// The action's input (JSON; none: no body).
    pub input: Option<Value>,
}

impl Expectation {
    /// Values that parse but cannot work.
    pub fn check(&self) -> Result<(), String> {
        let about_property = self.changes_within_seconds > 0.0 || self.range.is_some();
        if about_property && self.property.is_empty() {
            return Err(
                "an expectation with changes_within_seconds or range needs a property".into(),
            );
        }
        if !about_property && self.action.is_empty() {
            return Err(format!(
                "expectation on `{}` expects nothing: give changes_within_seconds, range or action",
                self.property
            ));
        }
        if !(self.changes_within_seconds.is_finite() && self.changes_within_seconds >= 0.0) {
            return Err("changes_within_seconds must be a non-negative number".into());
        }
        if let Some([lo, hi]) = self.range {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(format!("range [{lo}, {hi}] is not a range"));
            }
        }
        if !(self.every_seconds.is_finite() && self.every_seconds >= 0.0) {
            return Err("every_seconds must be a non-negative number".into());
        }
        Ok(())
    }

    /// How often the action runs.
    pub fn action_period_seconds(&self) -> f64 {
        if self.every_seconds > 0.0 {
            self.every_seconds
        } else {
            60.0
        }
    }
}

/// What the expectations remember between rounds: each watched property's last value and when
/// it last changed.
#[derive(Debug, Default)]
pub struct ExpectationState {
    last: HashMap<String, (Value, i64)>,
}

impl ExpectationState {
    /// The expectations a round breaks, as reasons.
    pub fn judge(
        &mut self,
        expectations: &[Expectation],
        results: &[PropertyResult],
        now_ns: i64,
    ) -> Vec<String> {
        let mut broken = Vec::new();
        for e in expectations.iter().filter(|e| !e.property.is_empty()) {
            let value = results.iter().find_map(|r| match &r.outcome {
                PropertyOutcome::Ok { value } if r.property == e.property => Some(value),
                _ => None,
            });
            // A failed read is already a bad round; nothing more to judge.
            let Some(value) = value else { continue };
            if let Some([lo, hi]) = e.range {
                match value.as_f64() {
                    Some(x) if x < lo || x > hi => broken.push(format!(
                        "{}: {x} is outside the expected range [{lo}, {hi}]",
                        e.property
                    )),
                    Some(_) => {}
                    None => broken.push(format!(
                        "{}: expected a number for the range check",
                        e.property
                    )),
                }
            }
            if e.changes_within_seconds > 0.0 {
                let entry = self
                    .last
                    .entry(e.property.clone())
                    .or_insert_with(|| (value.clone(), now_ns));
                if entry.0 != *value {
                    *entry = (value.clone(), now_ns);
                }
                let still = (now_ns - entry.1) as f64 / 1e9;
                if still > e.changes_within_seconds {
                    broken.push(format!(
                        "{}: unchanged ({}) for {still:.1}s, expected a change within {}s",
                        e.property, entry.0, e.changes_within_seconds
                    ));
                }
            }
        }
        broken
    }

    /// Forget remembered values (after a restart the device starts over).
    pub fn reset(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(property: &str, value: Value) -> PropertyResult {
        PropertyResult {
            property: property.into(),
            url: String::new(),
            latency_seconds: 0.01,
            outcome: PropertyOutcome::Ok { value },
        }
    }

    #[test]
    fn a_frozen_value_and_an_out_of_range_value_break_expectations() {
        let expectations = vec![
            Expectation {
                property: "counter".into(),
                changes_within_seconds: 3.0,
                ..Expectation::default()
            },
            Expectation {
                property: "temp".into(),
                range: Some([0.0, 50.0]),
                ..Expectation::default()
            },
        ];
        let mut s = ExpectationState::default();
        let s1 = 1_000_000_000;
        assert!(s
            .judge(
                &expectations,
                &[ok("counter", json!(1)), ok("temp", json!(20))],
                0
            )
            .is_empty());
        assert!(s
            .judge(&expectations, &[ok("counter", json!(1))], 2 * s1)
            .is_empty());
        let broken = s.judge(
            &expectations,
            &[ok("counter", json!(1)), ok("temp", json!(51))],
            4 * s1,
        );
        assert_eq!(broken.len(), 2, "{broken:?}");
        assert!(broken[0].contains("unchanged (1) for 4.0s"), "{broken:?}");
        assert!(broken[1].contains("51 is outside"), "{broken:?}");
        assert!(s
            .judge(&expectations, &[ok("counter", json!(2))], 5 * s1)
            .is_empty());
        assert!(Expectation {
            property: "x".into(),
            ..Expectation::default()
        }
        .check()
        .is_err());
    }
}
