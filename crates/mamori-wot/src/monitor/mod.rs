//! The monitor: one task per configured source discovers its Things, one task per Thing polls
//! its properties every interval, judges the round, moves its health, and on failure collects
//! evidence and restarts the Thing's container through the Docker Engine API — with backoff, a
//! crash-loop guard and an incident record for every recovery.
//!
//! - this module: the configuration types, the [`Monitor`] and discovery of a source's Things;
//! - `thing`: one Thing's task and its probe rounds;
//! - `recover`: what a failure sets off (evidence, restart or quarantine, the incident);
//! - `follow`: long-poll subscriptions.

mod follow;
mod recover;
mod thing;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mamori_core::time::{now_ns, rfc3339};
use mamori_core::{Alert, Incident};
use mamori_docker::DockerClient;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{Credentials, HttpClient};
use crate::expect::Expectation;
use crate::health::{Hysteresis, State};
use crate::recovery::{Guard, RecoveryPolicy};
use crate::status::Board;
use crate::td::{self, TdError, ThingDescription};
use thing::watch_thing;

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
    /// provenance analysis plugs in here). `init_pid` is the container's main process on this
    /// host, when it runs; `since_ns` is when the Thing first looked wrong. `None`: no analysis
    /// is available.
    fn root_cause(&self, _target: &RootCauseTarget) -> Option<Value> {
        None
    }
}

/// What the root-cause hook analyses: a container about to be reset.
#[derive(Debug, Clone)]
pub struct RootCauseTarget {
    /// The container's name.
    pub container: String,
    /// Its main process's pid on this host (Docker's `State.Pid`), when it runs.
    pub init_pid: Option<u32>,
    /// When the Thing first looked wrong (ns since the epoch).
    pub since_ns: i64,
    /// When the evidence is collected (ns since the epoch).
    pub until_ns: i64,
}

/// When a container was last restarted (ns) and for which Thing; its lock is held while the
/// container is being recovered.
type LastRestart = tokio::sync::Mutex<Option<(i64, String)>>;

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
    /// Per container: held while it is being recovered, holding when it was last restarted (ns)
    /// and for which Thing, so the Things one container runs, failing together, restart it once.
    containers: Mutex<HashMap<String, Arc<LastRestart>>>,
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
        // Things already watched are not fetched again (their tasks re-read their own TD
        // after a restart)
        let known: HashSet<String> = running
            .iter()
            .filter(|(_, task)| !task.is_finished())
            .map(|(origin, _)| origin.clone())
            .collect();
        let loaded = td::load_new(
            &spec.td,
            &ctx.client,
            &spec.credentials(),
            ctx.settings.timeout.max(Duration::from_secs(2)),
            &known,
        )
        .await;
        // one Thing in all, counting the ones already watched: it goes by the configured name
        let single = loaded.len() + known.len() == 1;
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
