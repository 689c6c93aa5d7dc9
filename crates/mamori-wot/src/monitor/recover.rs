//! What a failed Thing sets off: an alert, an incident, evidence collected before anything is
//! touched, then a restart of its container (once for all the Things it runs) or, past the
//! crash-loop guard, quarantine; and the incident's close when the Thing is healthy again.

use std::sync::{Arc, PoisonError};

use mamori_core::alert::Severity;
use mamori_core::incident::{Action, Outcome};
use mamori_core::time::now_ns;
use mamori_core::Incident;
use mamori_docker::DockerClient;
use serde_json::{json, Value};

use super::thing::Watched;
use super::{stopped_during, Context, RootCauseTarget};
use crate::health::{State, Transition};
use crate::probe::PropertyResult;
use crate::recovery::Decision;

impl Watched {
    /// The Thing failed: alert, collect evidence, restart (or quarantine).
    pub(super) async fn recover(&mut self, results: &[PropertyResult]) {
        let ctx = Arc::clone(&self.ctx);
        let policy = ctx.settings.recovery;
        let now = now_ns();
        let reason = self.health.reason().to_string();
        let probe = serde_json::to_value(results).unwrap_or(Value::Null);
        let alert = self.alert(
            Severity::Warning,
            format!("thing {} failed: {reason}", self.name),
            json!({"properties": probe}),
        );
        let incident = self.incident.get_or_insert_with(|| {
            Incident::open(
                self.subject.clone(),
                "recovery",
                Severity::Warning,
                format!(
                    "thing {} does not behave as its Thing Description says",
                    self.name
                ),
                now,
            )
        });
        incident.alerts.push(alert);
        incident.evidence.insert(
            "failure".into(),
            json!({"reason": reason, "properties": probe}),
        );
        let container = self.spec.container.clone();
        let docker = ctx.docker.clone();
        let (Some(docker), false, true) = (docker, container.is_empty(), policy.enabled) else {
            let why = if container.is_empty() {
                "no container is mapped to this thing"
            } else if !policy.enabled {
                "recovery is disabled ([things.recovery] enabled = false)"
            } else {
                "the Docker engine is not reachable"
            };
            incident.act(Action {
                action: "restart".into(),
                started_ns: now,
                finished_ns: now,
                outcome: Outcome::Skipped,
                detail: why.into(),
            });
            // nothing more will be done about it: the record is complete
            incident.closed_ns = Some(now);
            if let Some(done) = self.incident.take() {
                ctx.board.incident(&done);
                ctx.outlet.incident(done);
            }
            return;
        };
        let lock = Arc::clone(
            ctx.containers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(container.clone())
                .or_default(),
        );
        let mut last_restart = lock.lock().await;
        let fresh_ns = (policy.healthy_timeout_seconds * 1e9) as i64;
        // only a restart made for another Thing is joined: a Thing failing again after its own
        // restart goes through the guard and its backoff
        let recent = last_restart
            .as_ref()
            .filter(|(at, by)| now_ns() - at < fresh_ns && *by != self.name)
            .map(|(at, _)| *at);
        if let Some(at) = recent {
            // another Thing of this container restarted it moments ago: wait for that
            let ago = (now_ns() - at) as f64 / 1e9;
            incident.act(Action {
                action: "restart".into(),
                started_ns: at,
                finished_ns: at,
                outcome: Outcome::Skipped,
                detail: format!(
                    "{container} was restarted {ago:.1}s ago for another Thing it runs"
                ),
            });
            let snapshot = incident.clone();
            ctx.board.incident(&snapshot);
            self.restarted_ns = Some(at);
            let reason = format!("waiting for {container}, restarted {ago:.1}s ago");
            if let Some(t) = self.health.set(State::Recovering, reason, now_ns()) {
                self.record_transition(&t);
            }
            return;
        }
        collect_evidence(
            &ctx,
            &docker,
            &container,
            incident,
            self.restarted_ns.unwrap_or(now - 60_000_000_000),
        )
        .await;
        let decision = ctx
            .guards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(container.clone())
            .or_default()
            .decide(&policy, now_ns());
        match decision {
            Decision::Quarantine { restarts } => {
                let at = now_ns();
                let detail = format!(
                    "{restarts} restarts within {}s: the crash-loop guard stops restarting {container}",
                    policy.window_seconds
                );
                incident.act(Action {
                    action: "quarantine".into(),
                    started_ns: at,
                    finished_ns: at,
                    outcome: Outcome::Succeeded,
                    detail: detail.clone(),
                });
                incident.severity = Severity::Critical;
                incident.closed_ns = Some(at);
                let mut done = self.incident.take();
                if let Some(t) = self.health.set(State::Quarantined, detail.clone(), at) {
                    self.record_transition(&t);
                }
                let alert = self.alert(
                    Severity::Critical,
                    format!("thing {} quarantined: {detail}", self.name),
                    json!({"restarts": restarts, "container": container}),
                );
                if let Some(done) = done.as_mut() {
                    done.alerts.push(alert);
                }
                ctx.board.update(&self.name, |s| {
                    s.quarantines += 1;
                    s.open_incident = None;
                });
                if let Some(done) = done {
                    ctx.board.incident(&done);
                    ctx.outlet.incident(done);
                }
            }
            Decision::Restart { delay, attempt } => {
                if !delay.is_zero() {
                    let mut stop = ctx.stop.clone();
                    if stopped_during(&mut stop, delay).await {
                        return;
                    }
                }
                let started = now_ns();
                let result = docker
                    .restart(&container, policy.stop_timeout_seconds)
                    .await;
                let finished = now_ns();
                ctx.guards
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(container.clone())
                    .or_default()
                    .restarted(finished);
                let (outcome, detail) = match &result {
                    Ok(()) => (
                        Outcome::Succeeded,
                        format!(
                            "attempt {attempt}, after a backoff of {:.1}s",
                            delay.as_secs_f64()
                        ),
                    ),
                    Err(e) => (Outcome::Failed, e.to_string()),
                };
                incident.act(Action {
                    action: "restart".into(),
                    started_ns: started,
                    finished_ns: finished,
                    outcome,
                    detail: detail.clone(),
                });
                let snapshot = incident.clone();
                ctx.board.incident(&snapshot);
                ctx.board.update(&self.name, |s| {
                    s.restarts += u64::from(result.is_ok());
                    s.open_incident = Some(snapshot.id.clone());
                });
                if let Err(e) = result {
                    let alert = self.alert(
                        Severity::Critical,
                        format!("thing {}: restarting {container} failed: {e}", self.name),
                        json!({"container": container}),
                    );
                    if let Some(i) = self.incident.as_mut() {
                        i.alerts.push(alert);
                    }
                }
                self.restarted_ns = Some(finished);
                *last_restart = Some((finished, self.name.clone()));
                drop(last_restart);
                self.expectations.reset();
                if let Some(t) = self.health.set(
                    State::Recovering,
                    format!("container {container} restarted ({detail})"),
                    finished,
                ) {
                    self.record_transition(&t);
                }
                self.reload_td().await;
            }
        }
    }

    pub(super) fn healthy_again(&mut self, t: &Transition) {
        let ctx = Arc::clone(&self.ctx);
        if !self.spec.container.is_empty() {
            ctx.guards
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(self.spec.container.clone())
                .or_default()
                .healthy();
        }
        let Some(mut incident) = self.incident.take() else {
            return;
        };
        let from = self.restarted_ns.take().unwrap_or(incident.opened_ns);
        incident.act(Action {
            action: "verify".into(),
            started_ns: from,
            finished_ns: t.at_ns,
            outcome: Outcome::Succeeded,
            detail: format!(
                "healthy again {:.2}s after the restart and {:.2}s after the failure ({})",
                (t.at_ns - from) as f64 / 1e9,
                (t.at_ns - incident.opened_ns) as f64 / 1e9,
                t.reason
            ),
        });
        incident.closed_ns = Some(t.at_ns);
        ctx.board.incident(&incident);
        ctx.board.update(&self.name, |s| s.open_incident = None);
        ctx.outlet.incident(incident);
    }
}

/// Evidence first, before a restart destroys it: the container's log tail and state, the
/// agent's recent alerts about it, and the root-cause hook's analysis.
async fn collect_evidence(
    ctx: &Context,
    docker: &DockerClient,
    container: &str,
    incident: &mut Incident,
    since_ns: i64,
) {
    let started = now_ns();
    let mut missing = Vec::new();
    match docker
        .logs_tail(container, ctx.settings.recovery.logs_tail)
        .await
    {
        Ok(lines) => {
            incident
                .evidence
                .insert("container_logs".into(), json!(lines));
        }
        Err(e) => missing.push(format!("logs: {e}")),
    }
    let mut init_pid = None;
    match docker.state(container).await {
        Ok(state) => {
            init_pid = state["state"]["Pid"]
                .as_u64()
                .and_then(|pid| u32::try_from(pid).ok())
                .filter(|&pid| pid > 0);
            incident.evidence.insert("container_state".into(), state);
        }
        Err(e) => missing.push(format!("state: {e}")),
    }
    let alerts = ctx.outlet.recent_alerts(container);
    incident.evidence.insert(
        "recent_alerts".into(),
        serde_json::to_value(&alerts).unwrap_or(Value::Null),
    );
    let root_cause = ctx.outlet.root_cause(&RootCauseTarget {
        container: container.to_string(),
        init_pid,
        since_ns,
        until_ns: started,
    });
    incident.evidence.insert(
        "root_cause".into(),
        root_cause.unwrap_or_else(
            || json!({"available": false, "why": "no root-cause analysis is configured"}),
        ),
    );
    incident.act(Action {
        action: "collect-evidence".into(),
        started_ns: started,
        finished_ns: now_ns(),
        outcome: if missing.is_empty() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        },
        detail: missing.join("; "),
    });
}
