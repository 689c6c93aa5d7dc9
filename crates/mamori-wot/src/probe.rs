//! One probe round: every readable property of a Thing read at once, each reply judged against
//! its DataSchema, and the round's verdict (good, or bad with the reason a person reads).

use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use serde_json::Value;

use crate::client::{escaped_start, Credentials, FetchError, HttpClient};
use crate::schema::{validate_at, Violation};
use crate::td::PropertyTarget;

/// How one property read went.
#[derive(Debug, Clone, Serialize)]
pub struct PropertyResult {
    /// The property.
    pub property: String,
    /// The URL read.
    pub url: String,
    /// Round-trip time in seconds (up to the timeout for a failed read).
    pub latency_seconds: f64,
    /// What came back.
    pub outcome: PropertyOutcome,
}

/// A property read's outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum PropertyOutcome {
    /// A value that conforms to the schema.
    Ok {
        /// The value.
        value: Value,
    },
    /// A value that breaks the schema.
    Nonconforming {
        /// The value, shortened.
        value: String,
        /// How it breaks it.
        violations: Vec<Violation>,
    },
    /// No usable reply.
    Failed {
        /// Why.
        error: FetchError,
    },
}

impl PropertyResult {
    /// Whether the read conformed.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, PropertyOutcome::Ok { .. })
    }

    /// One line for people: `temperature: /: expected a number, got a string "hot"`.
    pub fn problem(&self) -> Option<String> {
        match &self.outcome {
            PropertyOutcome::Ok { .. } => None,
            PropertyOutcome::Nonconforming { violations, .. } => Some(format!(
                "{}: {}",
                self.property,
                violations
                    .iter()
                    .map(Violation::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            PropertyOutcome::Failed { error } => Some(format!("{}: {error}", self.property)),
        }
    }
}

/// Reads one property and judges the reply.
pub async fn read_property(
    client: &HttpClient,
    target: &PropertyTarget,
    credentials: &Credentials,
    timeout: Duration,
) -> PropertyResult {
    let started = std::time::Instant::now();
    let reply = if target.text {
        client
            .get_text(&target.url, target.auth, credentials, timeout)
            .await
    } else {
        client
            .get_json(&target.url, target.auth, credentials, timeout)
            .await
    };
    let outcome = match reply {
        Ok(reply) => {
            let violations = validate_at(&reply.value, &target.schema, &target.schema_path);
            if violations.is_empty() {
                PropertyOutcome::Ok { value: reply.value }
            } else {
                PropertyOutcome::Nonconforming {
                    value: escaped_start(reply.value.to_string().as_bytes(), 80),
                    violations,
                }
            }
        }
        Err(error) => PropertyOutcome::Failed { error },
    };
    PropertyResult {
        property: target.name.clone(),
        url: target.url.clone(),
        latency_seconds: started.elapsed().as_secs_f64(),
        outcome,
    }
}

/// Reads every target concurrently, in the targets' order.
pub async fn read_all(
    client: &HttpClient,
    targets: &[PropertyTarget],
    credentials: &Credentials,
    timeout: Duration,
) -> Vec<PropertyResult> {
    join_all(
        targets
            .iter()
            .map(|t| read_property(client, t, credentials, timeout)),
    )
    .await
}

/// The verdict of a round: `None` when every read conformed, else why not, e.g.
/// `1 of 4 properties: temperature: /: 500 is above the maximum 125`.
pub fn verdict(results: &[PropertyResult]) -> Option<String> {
    let problems: Vec<String> = results.iter().filter_map(PropertyResult::problem).collect();
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "{} of {} properties: {}",
        problems.len(),
        results.len(),
        problems.join("; ")
    ))
}
