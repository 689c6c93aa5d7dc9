//! The agent's `[things]` section: the WoT monitor on its own tokio runtime, Things found in
//! the config and on containers labelled `mamori.thing`, alerts and incidents through the
//! shared sinks, and the optional response (pause or restart) to a container's syscall or
//! network alert, under the same crash-loop guard.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use mamori_core::alert::Severity;
use mamori_core::incident::{Action, Outcome};
use mamori_core::time::now_ns;
use mamori_core::{Alert, Incident, Subject};
use mamori_docker::DockerClient;
use mamori_wot::client::HttpClient;
use mamori_wot::monitor::{Monitor, Outlet, RootCauseTarget, ThingSpec};
use mamori_wot::recovery::{Decision, Guard, RecoveryPolicy};
use mamori_wot::status::Board;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use super::config::{OnAlert, ThingsConfig};
use super::rootcause::Analyzer;
use super::sinks::{RecentAlerts, SinkSender};

/// The label that maps a container to its Thing: `mamori.thing=<TD URL>`.
pub const THING_LABEL: &str = "mamori.thing";

/// The running section.
pub struct ThingsSection {
    /// The monitor's board (status and recovery incidents), once the runtime started.
    pub board: Arc<Board>,
    /// Incidents of alert responses (pause or restart on a syscall or network alert).
    pub responses: Arc<Board>,
    thread: Option<JoinHandle<()>>,
}

struct AgentOutlet {
    sink: SinkSender,
    recent: RecentAlerts,
    /// The root-cause analysis, when `[audit]` is on.
    audit: Option<Arc<Analyzer>>,
}

impl Outlet for AgentOutlet {
    fn alert(&self, alert: Alert) {
        self.sink.send(alert);
    }
    fn incident(&self, incident: Incident) {
        self.sink.send_incident(incident);
    }
    fn recent_alerts(&self, container: &str) -> Vec<Alert> {
        self.recent.about_container(container)
    }
    fn root_cause(&self, target: &RootCauseTarget) -> Option<Value> {
        let analyzer = self.audit.as_ref()?;
        // the analysis blocks (a wait for late events, then CPU work): on this multi-thread
        // runtime, let the worker's other tasks (other Things' probes) move elsewhere meanwhile
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        Some(if multi_thread {
            tokio::task::block_in_place(|| analyzer.analyse(target))
        } else {
            analyzer.analyse(target)
        })
    }
}

impl ThingsSection {
    /// Starts the monitor thread; returns once its runtime is up. With `audit`, a container's
    /// recent audit events are analysed before it is reset (the incident's
    /// `evidence.root_cause`).
    pub fn start(
        config: &ThingsConfig,
        sink: SinkSender,
        recent: RecentAlerts,
        alerts: Option<UnboundedReceiver<Alert>>,
        audit: Option<Arc<Analyzer>>,
        stop: Arc<AtomicBool>,
    ) -> Result<ThingsSection> {
        let ca = (!config.ca_file.as_os_str().is_empty()).then_some(config.ca_file.as_path());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mamori-things")
            .enable_all()
            .build()
            .context("starting the Thing monitor's runtime")?;
        let client = {
            let _guard = runtime.enter();
            HttpClient::new(ca, config.max_reply_bytes).context("[things]")?
        };
        let config = config.clone();
        let board = Arc::new(Board::default());
        let responses = Arc::new(Board::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (thread_responses, outlet) = (
            Arc::clone(&responses),
            Arc::new(AgentOutlet {
                sink,
                recent,
                audit,
            }),
        );
        let thread = std::thread::Builder::new()
            .name("mamori-things".into())
            .spawn(move || {
                runtime.block_on(run(
                    config,
                    client,
                    outlet,
                    alerts,
                    stop,
                    thread_responses,
                    ready_tx,
                ))
            })?;
        let board = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or(board);
        Ok(ThingsSection {
            board,
            responses,
            thread: Some(thread),
        })
    }

    /// Waits for the section to stop (the shared stop flag must be set).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn run(
    config: ThingsConfig,
    client: HttpClient,
    outlet: Arc<AgentOutlet>,
    mut alerts: Option<UnboundedReceiver<Alert>>,
    stop: Arc<AtomicBool>,
    responses: Arc<Board>,
    ready: std::sync::mpsc::Sender<Arc<Board>>,
) {
    let wants_docker = config.docker_labels
        || config.on_alert != OnAlert::Off
        || config.thing.iter().any(|t| !t.container.is_empty());
    let docker = if wants_docker {
        match DockerClient::connect().await {
            Ok(d) => Some(d),
            Err(e) => {
                if config.thing.iter().any(|t| !t.container.is_empty()) {
                    eprintln!("mamori: things: {e}; failures will be reported, not recovered");
                }
                None
            }
        }
    } else {
        None
    };
    let mut labelled: BTreeSet<(String, String)> = BTreeSet::new();
    let mut monitor = Monitor::start(
        config.thing.clone(),
        config.settings(),
        client,
        docker.clone(),
        outlet.clone() as Arc<dyn Outlet>,
    );
    let _ = ready.send(Arc::clone(&monitor.board));
    if !config.thing.is_empty() {
        eprintln!("mamori: watching {} Thing source(s)", config.thing.len());
    }
    let guards: Mutex<HashMap<String, Guard>> = Mutex::new(HashMap::new());
    let rediscover = Duration::from_secs_f64(config.rediscover_seconds);
    let mut next_labels = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    while !stop.load(Ordering::Relaxed) {
        if let (Some(d), true) = (&docker, config.docker_labels) {
            if tokio::time::Instant::now() >= next_labels {
                next_labels += rediscover;
                match d.with_label(THING_LABEL).await {
                    Ok(found) => {
                        for (container, td) in found {
                            if labelled.insert((container.clone(), td.clone())) {
                                eprintln!("mamori: container {container} is a Thing ({td})");
                                monitor.add(ThingSpec {
                                    name: container.clone(),
                                    td,
                                    container,
                                    ..ThingSpec::default()
                                });
                            }
                        }
                    }
                    Err(e) => eprintln!("mamori: things: listing labelled containers: {e}"),
                }
            }
        }
        let alert = match alerts.as_mut() {
            Some(rx) => tokio::select! {
                a = rx.recv() => a,
                _ = tick.tick() => None,
            },
            None => {
                tick.tick().await;
                None
            }
        };
        if let (Some(alert), Some(d)) = (alert, &docker) {
            respond(&config, d, &alert, &guards, &outlet, &responses).await;
        }
    }
    monitor.stop().await;
}

/// Pauses or restarts the container an alert names, as configured, with the crash-loop guard.
async fn respond(
    config: &ThingsConfig,
    docker: &DockerClient,
    alert: &Alert,
    guards: &Mutex<HashMap<String, Guard>>,
    outlet: &AgentOutlet,
    board: &Board,
) {
    let Subject::Container { name, .. } = &alert.subject else {
        return;
    };
    let policy: RecoveryPolicy = config.recovery;
    let verb = match config.on_alert {
        OnAlert::Off => return,
        OnAlert::Pause => "pause",
        OnAlert::Restart => "restart",
    };
    let opened = now_ns();
    let mut incident = Incident::open(
        alert.subject.clone(),
        "response",
        Severity::Warning,
        format!("{verb} of {name} after a {} alert", alert.source),
        opened,
    );
    incident.alerts.push(alert.clone());
    let started = now_ns();
    let logs = docker.logs_tail(name, policy.logs_tail).await;
    let state = docker.state(name).await;
    incident.evidence.insert(
        "container_logs".into(),
        logs.as_ref().map_or(json!(null), |l| json!(l)),
    );
    incident.evidence.insert(
        "container_state".into(),
        state.as_ref().map_or(json!(null), Clone::clone),
    );
    if outlet.audit.is_some() {
        let init_pid = state
            .as_ref()
            .ok()
            .and_then(|s| s["state"]["Pid"].as_u64())
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|&pid| pid > 0);
        let target = RootCauseTarget {
            container: name.clone(),
            init_pid,
            // the alert run's first flagged unit is when the container first looked wrong
            since_ns: Some(alert.run_start_ns)
                .filter(|&t| t > 0)
                .map_or(opened, |t| t.min(opened)),
            until_ns: started,
        };
        if let Some(analysis) = outlet.root_cause(&target) {
            incident.evidence.insert("root_cause".into(), analysis);
        }
    }
    incident.act(Action {
        action: "collect-evidence".into(),
        started_ns: started,
        finished_ns: now_ns(),
        outcome: if logs.is_ok() && state.is_ok() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        },
        detail: String::new(),
    });
    let decision = guards
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(name.clone())
        .or_default()
        .decide(&policy, now_ns());
    let started = now_ns();
    match decision {
        Decision::Quarantine { restarts } => {
            incident.severity = Severity::Critical;
            incident.act(Action {
                action: "quarantine".into(),
                started_ns: started,
                finished_ns: started,
                outcome: Outcome::Skipped,
                detail: format!(
                    "{restarts} responses within {}s: the crash-loop guard leaves {name} alone",
                    policy.window_seconds
                ),
            });
        }
        Decision::Restart { .. } => {
            let result = match config.on_alert {
                OnAlert::Pause => docker.pause(name).await,
                _ => docker.restart(name, policy.stop_timeout_seconds).await,
            };
            guards
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(name.clone())
                .or_default()
                .restarted(now_ns());
            incident.act(Action {
                action: verb.into(),
                started_ns: started,
                finished_ns: now_ns(),
                outcome: if result.is_ok() {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                },
                detail: result.err().map(|e| e.to_string()).unwrap_or_default(),
            });
        }
    }
    incident.closed_ns = Some(now_ns());
    board.incident(&incident);
    outlet.incident(incident);
}
