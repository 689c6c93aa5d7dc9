//! The monitor: one task per configured source discovers its Things, one task per Thing polls
//! its properties every interval, judges the round, moves its health, and on failure collects
//! evidence and restarts the Thing's container through the Docker Engine API — with backoff, a
//! crash-loop guard and an incident record for every recovery.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mamori_core::alert::Severity;
use mamori_core::incident::{Action, Outcome};
use mamori_core::time::{now_ns, rfc3339};
use mamori_core::{Alert, Evidence, Incident, Subject};
use mamori_docker::DockerClient;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{Credentials, FetchError, HttpClient};
use crate::expect::{Expectation, ExpectationState};
use crate::health::{Health, Hysteresis, State, Transition};
use crate::probe::{read_all, verdict, PropertyOutcome, PropertyResult};
use crate::recovery::{Decision, Guard, RecoveryPolicy};
use crate::schema::validate_at;
use crate::status::{Board, PropertyStatus};
use crate::td::{self, Subscription, TdError, ThingDescription};

/// One configured source of Things (`[[things.thing]]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThingSpec {
    /// The name in alerts and metrics (default: the TD's title).
    pub name: String,
    /// A TD's URL or file, a servient's directory URL, or `/.well-known/wot`.
    pub td: String,
    /// The container that runs the Thing(s), restarted on failure (empty: report only).
    pub container: String,
    /// User for TDs whose security is `basic`.
    pub basic_user: String,
    /// Password for `basic`.
    pub basic_password: String,
    /// Token for TDs whose security is `bearer`.
    pub bearer_token: String,
    /// Expectations beyond the TD.
    pub expect: Vec<Expectation>,
}

impl ThingSpec {
    /// The credentials it configures.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            basic_user: self.basic_user.clone(),
            basic_password: self.basic_password.clone(),
            bearer_token: self.bearer_token.clone(),
        }
    }
}

/// How the monitor probes and recovers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorSettings {
    /// Time between probe rounds of one Thing.
    pub interval: Duration,
    /// Time a property read may take.
    pub timeout: Duration,
    /// Healthy → suspect → failed.
    pub hysteresis: Hysteresis,
    /// Restarts, backoff and the crash-loop guard.
    pub recovery: RecoveryPolicy,
    /// Follow observable properties and events (long-poll) and check what arrives.
    pub subscribe: bool,
    /// How often sources are re-read for new Things.
    pub rediscover: Duration,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(800),
            hysteresis: Hysteresis::default(),
            recovery: RecoveryPolicy::default(),
            subscribe: true,
            rediscover: Duration::from_secs(30),
        }
    }
}

/// Where the monitor's alerts and incidents go, and what it asks of the rest of the agent.
pub trait Outlet: Send + Sync + 'static {
    /// An alert (a Thing failed, was quarantined, or could not be restarted).
    fn alert(&self, alert: Alert);
    /// An incident record (sent when it closes; the board shows it while open).
    fn incident(&self, incident: Incident);
    /// The agent's recent alerts about a container (syscall or network), newest last.
    fn recent_alerts(&self, _container: &str) -> Vec<Alert> {
        Vec::new()
    }
    /// Root-cause analysis of a container's recent activity, run before it is reset (the
    /// provenance analysis plugs in here). `None`: no analysis is available.
    fn root_cause(&self, _container: &str, _since_ns: i64, _until_ns: i64) -> Option<Value> {
        None
    }
}

/// The running monitor.
pub struct Monitor {
    /// The shared status.
    pub board: Arc<Board>,
    stop: watch::Sender<bool>,
    ctx: Arc<Context>,
    sources: Vec<JoinHandle<()>>,
}

struct Context {
    settings: MonitorSettings,
    client: HttpClient,
    docker: Option<DockerClient>,
    outlet: Arc<dyn Outlet>,
    board: Arc<Board>,
    stop: watch::Receiver<bool>,
    /// One crash-loop guard per container, shared by every Thing it runs.
    guards: Mutex<HashMap<String, Guard>>,
    /// Per container: held while it is being recovered, holding when it was last restarted (ns),
    /// so the Things one container runs, failing together, restart it once.
    containers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<i64>>>>>,
    /// Thing names taken, so two TDs with one title stay apart.
    names: Mutex<BTreeSet<String>>,
}

impl Monitor {
    /// Starts monitoring `specs` on the current tokio runtime. `docker` is needed for
    /// recovery (without it failures are reported only).
    pub fn start(
        specs: Vec<ThingSpec>,
        settings: MonitorSettings,
        client: HttpClient,
        docker: Option<DockerClient>,
        outlet: Arc<dyn Outlet>,
    ) -> Monitor {
        let board = Arc::new(Board::default());
        let (stop, stop_rx) = watch::channel(false);
        let ctx = Arc::new(Context {
            settings,
            client,
            docker,
            outlet,
            board: Arc::clone(&board),
            stop: stop_rx,
            guards: Mutex::new(HashMap::new()),
            containers: Mutex::new(HashMap::new()),
            names: Mutex::new(BTreeSet::new()),
        });
        let mut monitor = Monitor {
            board,
            stop,
            ctx,
            sources: Vec::new(),
        };
        for spec in specs {
            monitor.add(spec);
        }
        monitor
    }

    /// Adds a source while running (e.g. a container labelled `mamori.thing` that appeared).
    pub fn add(&mut self, spec: ThingSpec) {
        let task = tokio::spawn(discover(Arc::clone(&self.ctx), spec));
        self.sources.push(task);
    }

    /// Stops every task (a recovery in progress finishes its current Docker call first).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for s in self.sources {
            let _ = s.await;
        }
    }
}

/// Sleeps unless stopped first; true when stopped.
async fn stopped_during(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Reads a source every `rediscover` and starts a task for each Thing not yet watched.
async fn discover(ctx: Arc<Context>, spec: ThingSpec) {
    let mut stop = ctx.stop.clone();
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    let placeholder = if spec.name.is_empty() {
        spec.td.clone()
    } else {
        spec.name.clone()
    };
    loop {
        let loaded = td::load(
            &spec.td,
            &ctx.client,
            &spec.credentials(),
            ctx.settings.timeout.max(Duration::from_secs(2)),
        )
        .await;
        let single = loaded.len() == 1;
        for result in loaded {
            match result {
                Ok(td) => {
                    let origin = td.origin.clone();
                    if running.get(&origin).is_some_and(|h| !h.is_finished()) {
                        continue;
                    }
                    if ctx.board.contains(&placeholder)
                        && placeholder != name_for(&spec, &td, single)
                    {
                        forget(&ctx, &placeholder);
                    }
                    let name = claim_name(&ctx, &spec, &td, single);
                    let task = tokio::spawn(watch_thing(Arc::clone(&ctx), spec.clone(), name, td));
                    running.insert(origin, task);
                }
                Err(e) => {
                    // A Thing already watched reports its own trouble; a source that cannot be
                    // read at all shows under its configured name.
                    if running.contains_key(e.origin()) {
                        continue;
                    }
                    let name = if single {
                        placeholder.clone()
                    } else {
                        e.origin().to_string()
                    };
                    let (state, reason) = match &e {
                        TdError::Unreadable { .. } => (State::Unknown, e.to_string()),
                        _ => (State::Invalid, e.to_string()),
                    };
                    ctx.board.update(&name, |s| {
                        if s.state != Some(state) || s.reason != reason {
                            s.since = rfc3339(now_ns());
                        }
                        s.td = e.origin().to_string();
                        s.container = spec.container.clone();
                        s.state = Some(state);
                        s.reason = reason;
                        s.up = false;
                    });
                }
            }
        }
        if stopped_during(&mut stop, ctx.settings.rediscover).await {
            break;
        }
    }
    for (_, task) in running {
        let _ = task.await;
    }
}

fn name_for(spec: &ThingSpec, td: &ThingDescription, single: bool) -> String {
    if single && !spec.name.is_empty() {
        spec.name.clone()
    } else if !spec.name.is_empty() {
        format!("{}/{}", spec.name, td.title())
    } else {
        td.title().to_string()
    }
}

fn claim_name(ctx: &Context, spec: &ThingSpec, td: &ThingDescription, single: bool) -> String {
    let wanted = name_for(spec, td, single);
    let mut names = ctx.names.lock().unwrap_or_else(PoisonError::into_inner);
    let mut name = wanted.clone();
    let mut n = 2;
    while !names.insert(name.clone()) {
        name = format!("{wanted}#{n}");
        n += 1;
    }
    name
}

fn forget(ctx: &Context, name: &str) {
    ctx.board.update(name, |s| {
        s.state = None;
        s.reason = "replaced by the Things its source lists".into();
    });
}

/// A stable offset within the interval, so a thousand Things are not probed in one burst.
fn stagger(name: &str, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let frac = (h.finish() % 1000) as f64 / 1000.0;
    interval.mul_f64(frac)
}

/// What a Thing's task carries between rounds.
struct Watched {
    ctx: Arc<Context>,
    spec: ThingSpec,
    credentials: Credentials,
    name: String,
    td: ThingDescription,
    subject: Subject,
    health: Health,
    expectations: ExpectationState,
    /// Problems seen by the subscriptions since the last round.
    pushed: Arc<Mutex<Vec<String>>>,
    subscriptions: Vec<JoinHandle<()>>,
    /// The incident of the current failure, until the Thing is healthy or quarantined.
    incident: Option<Incident>,
    /// When the last restart finished (ns), while recovering.
    restarted_ns: Option<i64>,
    last_problem: String,
    next_actions: HashMap<String, Instant>,
    /// The last failure of each scheduled action, until it succeeds again.
    action_failures: std::collections::BTreeMap<String, String>,
}

async fn watch_thing(ctx: Arc<Context>, spec: ThingSpec, name: String, td: ThingDescription) {
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

    fn record_transition(&self, t: &Transition) {
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
    fn alert(&self, severity: Severity, message: String, data: Value) -> Alert {
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

    /// The Thing failed: alert, collect evidence, restart (or quarantine).
    async fn recover(&mut self, results: &[PropertyResult]) {
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
        if let Some(at) = (*last_restart).filter(|&at| now_ns() - at < fresh_ns) {
            if self.restarted_ns.is_none_or(|mine| mine < at) {
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
                *last_restart = Some(finished);
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

    /// A restarted device may serve a changed TD (new ids, ports): read it again.
    async fn reload_td(&mut self) {
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

    fn healthy_again(&mut self, t: &Transition) {
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
    match docker.state(container).await {
        Ok(state) => {
            incident.evidence.insert("container_state".into(), state);
        }
        Err(e) => missing.push(format!("state: {e}")),
    }
    let alerts = ctx.outlet.recent_alerts(container);
    incident.evidence.insert(
        "recent_alerts".into(),
        serde_json::to_value(&alerts).unwrap_or(Value::Null),
    );
    let root_cause = ctx.outlet.root_cause(container, since_ns, started);
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

/// Follows one long-poll subscription, checking each value against its schema.
async fn follow(
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
