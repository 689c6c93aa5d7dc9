//! Long-poll subscriptions (observable properties, events): every value that arrives is checked
//! against its schema, and problems wait for the Thing's next round.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{stopped_during, Context};
use crate::client::{Credentials, FetchError};
use crate::schema::validate_at;
use crate::td::Subscription;

/// Follows one long-poll subscription, checking each value against its schema.
pub(super) async fn follow(
    ctx: Arc<Context>,
    thing: String,
    sub: Subscription,
    credentials: Credentials,
    pushed: Arc<Mutex<Vec<String>>>,
) {
    let mut stop = ctx.stop.clone();
    let mut backoff = Duration::from_millis(500);
    loop {
        let reply = ctx
            .client
            .get_json(&sub.url, sub.auth, &credentials, Duration::from_secs(65))
            .await;
        match reply {
            Ok(reply) => {
                backoff = Duration::from_millis(500);
                let violations = sub
                    .schema
                    .as_ref()
                    .map(|s| validate_at(&reply.value, s, &sub.schema_path))
                    .unwrap_or_default();
                ctx.board.update(&thing, |s| {
                    s.events_received += 1;
                    for v in &violations {
                        *s.violations.entry(v.kind.as_str().to_string()).or_default() += 1;
                    }
                });
                if !violations.is_empty() {
                    let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
                    pushed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(format!("{} {}: {}", sub.kind, sub.name, text.join("; ")));
                }
            }
            // a long poll that ends without news is normal
            Err(FetchError::Timeout { .. }) => {}
            Err(_) => {
                if stopped_during(&mut stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        if *stop.borrow() {
            return;
        }
    }
}
