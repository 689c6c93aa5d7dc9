//! One Thing's task: a probe round every interval, judged, recorded on the board, and handed to
//! recovery when the Thing fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mamori_core::alert::Severity;
use mamori_core::time::{now_ns, rfc3339};
use mamori_core::{Alert, Evidence, Incident, Subject};
use serde_json::Value;
use tokio::task::JoinHandle;

use super::follow::follow;
use super::{stagger, stopped_during, Context, ThingSpec};
use crate::client::Credentials;
use crate::expect::ExpectationState;
use crate::health::{Health, State, Transition};
use crate::probe::{read_all, verdict, PropertyOutcome, PropertyResult};
use crate::status::PropertyStatus;
use crate::td::{self, ThingDescription};

/// What a Thing's task carries between rounds.
pub(super) struct Watched {
    pub(super) ctx: Arc<Context>,
    pub(super) spec: ThingSpec,
    pub(super) credentials: Credentials,
    pub(super) name: String,
    pub(super) td: ThingDescription,
    pub(super) subject: Subject,
    pub(super) health: Health,
    pub(super) expectations: ExpectationState,
    /// Problems seen by the subscriptions since the last round.
    pub(super) pushed: Arc<Mutex<Vec<String>>>,
    pub(super) subscriptions: Vec<JoinHandle<()>>,
    /// The incident of the current failure, until the Thing is healthy or quarantined.
    pub(super) incident: Option<Incident>,
    /// When the last restart finished (ns), while recovering.
    pub(super) restarted_ns: Option<i64>,
    pub(super) last_problem: String,
    pub(super) next_actions: HashMap<String, Instant>,
    /// The last failure of each scheduled action, until it succeeds again.
    pub(super) action_failures: std::collections::BTreeMap<String, String>,
}

pub(super) async fn watch_thing(
    ctx: Arc<Context>,
    spec: ThingSpec,
    name: String,
    td: ThingDescription,
) {
    let mut stop = ctx.stop.clone();
    if stopped_during(&mut stop, stagger(&name, ctx.settings.interval)).await {
        return;
    }
    let subject = Subject::Thing {
        name: name.clone(),
        td: td.origin.clone(),
        container: spec.container.clone(),
    };
    let mut w = Watched {
        health: Health::new(ctx.settings.hysteresis, now_ns()),
        ctx: Arc::clone(&ctx),
        credentials: spec.credentials(),
        spec,
        name,
        td,
        subject,
        expectations: ExpectationState::default(),
        pushed: Arc::new(Mutex::new(Vec::new())),
        subscriptions: Vec::new(),
        incident: None,
        restarted_ns: None,
        last_problem: String::new(),
        next_actions: HashMap::new(),
        action_failures: std::collections::BTreeMap::new(),
    };
    w.publish_td();
    w.subscribe();
    let mut tick = tokio::time::interval(ctx.settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        w.round().await;
    }
    for s in w.subscriptions.drain(..) {
        s.abort();
    }
}

impl Watched {
    fn publish_td(&self) {
        let (_, skipped) = self.td.readable_properties();
        self.ctx.board.update(&self.name, |s| {
            s.td = self.td.origin.clone();
            s.container = self.spec.container.clone();
            s.not_probed = skipped.into_iter().map(|k| (k.name, k.reason)).collect();
            if s.state.is_none() {
                s.state = Some(State::Unknown);
                s.since = rfc3339(now_ns());
            }
        });
    }

    fn subscribe(&mut self) {
        if !self.ctx.settings.subscribe {
            return;
        }
        for sub in self.td.subscriptions() {
            if sub.subprotocol != "longpoll" {
                continue;
            }
            let task = tokio::spawn(follow(
                Arc::clone(&self.ctx),
                self.name.clone(),
                sub,
                self.credentials.clone(),
                Arc::clone(&self.pushed),
            ));
            self.subscriptions.push(task);
        }
    }

    /// One probe round and what follows from it.
    async fn round(&mut self) {
        let ctx = Arc::clone(&self.ctx);
        let (targets, _) = self.td.readable_properties();
        let results = read_all(
            &ctx.client,
            &targets,
            &self.credentials,
            ctx.settings.timeout,
        )
        .await;
        let now = now_ns();
        let mut problems: Vec<String> = verdict(&results).into_iter().collect();
        problems.extend(self.expectations.judge(&self.spec.expect, &results, now));
        problems.extend(self.run_actions().await);
        // an observed property that the round's own read already found wrong says nothing new
        let already: Vec<String> = results
            .iter()
            .filter(|r| !r.is_ok())
            .map(|r| format!("property {}: ", r.property))
            .collect();
        problems.extend(
            self.pushed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..)
                .filter(|p| !already.iter().any(|a| p.starts_with(a.as_str()))),
        );
        let problem = (!problems.is_empty()).then(|| problems.join("; "));
        if let Some(p) = &problem {
            self.last_problem = p.clone();
        }
        let transition = self.health.observe(problem.as_deref(), now);
        self.record(&results, problem.as_deref(), now);
        if let Some(t) = &transition {
            self.on_transition(t, &results).await;
        }
        // A restarted Thing that is not healthy in time has failed again.
        if self.health.state() == State::Recovering {
            let waited = self.restarted_ns.map_or(0.0, |r| (now - r) as f64 / 1e9);
            if waited > ctx.settings.recovery.healthy_timeout_seconds {
                let reason = format!(
                    "not healthy {waited:.1}s after the restart: {}",
                    self.last_problem
                );
                if let Some(t) = self.health.set(State::Failed, reason, now) {
                    self.record_transition(&t);
                    self.recover(&results).await;
                }
            }
        }
    }

    /// Invokes the actions an expectation schedules when due; an action's last failure is a
    /// problem of every round until it next succeeds.
    async fn run_actions(&mut self) -> Vec<String> {
        let now = Instant::now();
        for e in self.spec.expect.iter().filter(|e| !e.action.is_empty()) {
            let due = self.next_actions.get(&e.action).is_none_or(|t| now >= *t);
            if !due {
                continue;
            }
            self.next_actions.insert(
                e.action.clone(),
                now + Duration::from_secs_f64(e.action_period_seconds()),
            );
            let outcome = match self.td.action(&e.action) {
                Ok((url, auth)) => self
                    .ctx
                    .client
                    .send(
                        hyper::Method::POST,
                        &url,
                        e.input.as_ref(),
                        auth,
                        &self.credentials,
                        self.ctx.settings.timeout.max(Duration::from_secs(2)),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|err| err.to_string()),
                Err(why) => Err(why),
            };
            match outcome {
                Ok(()) => self.action_failures.remove(&e.action),
                Err(why) => self
                    .action_failures
                    .insert(e.action.clone(), format!("action {}: {why}", e.action)),
            };
        }
        self.action_failures.values().cloned().collect()
    }

    fn record(&self, results: &[PropertyResult], problem: Option<&str>, now: i64) {
        let good = problem.is_none();
        let state = self.health.state();
        let since = rfc3339(self.health.since_ns());
        let reason = self.health.reason().to_string();
        self.ctx.board.update(&self.name, |s| {
            s.rounds += 1;
            s.bad_rounds += u64::from(!good);
            s.up = good;
            s.problem = problem.unwrap_or_default().to_string();
            s.state = Some(state);
            s.since = since;
            s.reason = reason;
            s.last_round = rfc3339(now);
            s.properties = results
                .iter()
                .map(|r| PropertyStatus {
                    name: r.property.clone(),
                    ok: r.is_ok(),
                    latency_seconds: r.latency_seconds,
                    problem: r.problem(),
                })
                .collect();
            for r in results {
                s.latency.observe(r.latency_seconds);
                match &r.outcome {
                    PropertyOutcome::Nonconforming { violations, .. } => {
                        for v in violations {
                            *s.violations.entry(v.kind.as_str().to_string()).or_default() += 1;
                        }
                    }
                    PropertyOutcome::Failed { error } => {
                        *s.read_errors.entry(error.label().to_string()).or_default() += 1;
                    }
                    PropertyOutcome::Ok { .. } => {}
                }
            }
        });
    }

    pub(super) fn record_transition(&self, t: &Transition) {
        eprintln!(
            "mamori: thing {}: {} → {}: {}",
            self.name,
            t.from.as_str(),
            t.to.as_str(),
            t.reason
        );
        let history: Vec<Transition> = self.health.history().cloned().collect();
        let open = self.incident.as_ref().map(|i| i.id.clone());
        self.ctx.board.update(&self.name, |s| {
            s.state = Some(t.to);
            s.since = rfc3339(t.at_ns);
            s.reason = t.reason.clone();
            s.transitions = history;
            s.open_incident = open;
        });
    }

    async fn on_transition(&mut self, t: &Transition, results: &[PropertyResult]) {
        self.record_transition(t);
        match t.to {
            State::Failed => self.recover(results).await,
            State::Healthy => self.healthy_again(t),
            _ => {}
        }
    }

    /// Sends an alert about this Thing and returns it (for its incident).
    pub(super) fn alert(&self, severity: Severity, message: String, data: Value) -> Alert {
        let now = now_ns();
        let bad = self.health.bad_streak();
        let alert = Alert {
            time: rfc3339(now),
            time_ns: now,
            subject: self.subject.clone(),
            source: "things".into(),
            detector: "td-conformance".into(),
            model_path: self.td.origin.clone(),
            score: f64::from(bad),
            threshold: f64::from(self.ctx.settings.hysteresis.fail_after),
            flagged_units: bad as usize,
            run_start_ns: now,
            severity,
            evidence: Evidence::Detail { message, data },
        };
        self.ctx.outlet.alert(alert.clone());
        alert
    }

    /// A restarted device may serve a changed TD (new ids, ports): read it again.
    pub(super) async fn reload_td(&mut self) {
        if !self.td.origin.starts_with("http") {
            return;
        }
        let ctx = Arc::clone(&self.ctx);
        // the device is starting: give it a few tries within the healthy timeout
        for _ in 0..10 {
            let mut loaded = td::load(
                &self.td.origin,
                &ctx.client,
                &self.credentials,
                ctx.settings.timeout.max(Duration::from_secs(1)),
            )
            .await;
            if let Some(Ok(td)) = loaded.pop() {
                self.td = td;
                return;
            }
            let mut stop = ctx.stop.clone();
            if stopped_during(&mut stop, Duration::from_millis(200)).await {
                return;
            }
        }
    }
}
