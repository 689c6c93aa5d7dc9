//! Detection for one container: classify each call with the model's class table, cut the calls
//! into windows as they arrive, score every window, and turn flagged windows into alerts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use mamori_core::alert::{ClassReason, Fired, ProcessSeen};
use mamori_core::rule::{AlertRule, AlertState, Decision};
use mamori_core::{Alert, Evidence, Subject};
use mamori_detect::classes::ClassTable;
use mamori_detect::window::{StreamMode, Window, Windower};
use mamori_ingest::Record;

use mamori_detect::event::SyscallEvent;
use mamori_pipeline::context::{ContextWatcher, NoveltyKind};
use mamori_pipeline::model::TrainedModel;

/// A model ready to score: the trained body, its class table and its threshold.
pub struct LoadedModel {
    /// Where it was read from.
    pub path: String,
    /// The model file's body.
    pub model: TrainedModel,
    /// Its class table, compiled.
    pub table: ClassTable,
    /// Windows scoring above this are flagged.
    pub threshold: f64,
}

/// How the monitor turns flagged windows into alerts: the shared rule, and how many classes an
/// alert lists as the reason.
#[derive(Debug, Clone, Copy)]
pub struct MonitorSettings {
    /// The alert rule (the same one `mamori score` and `mamori eval` apply).
    pub rule: AlertRule,
    /// Classes listed as the reason.
    pub top_classes: usize,
}

/// Counters for /metrics.
#[derive(Debug, Clone, Default)]
pub struct MonitorStats {
    /// Calls received.
    pub events: u64,
    /// Calls that matched the class table.
    pub monitored: u64,
    /// Windows scored.
    pub windows: u64,
    /// Windows over the threshold.
    pub flagged: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Flagged windows inside a cooldown (no new alert).
    pub suppressed: u64,
    /// Streams closed for being idle.
    pub idle_streams_closed: u64,
    /// Streams shorter than a window that were already running when first seen (not scored).
    pub joined_partial_skipped: u64,
    /// Streams closed because the container had too many open at once.
    pub streams_evicted: u64,
    /// First-time programs and requests seen (every occurrence).
    pub novelties: u64,
    /// Alerts raised by them (also counted in `alerts`).
    pub context_alerts: u64,
    /// New requests the model's Thing Description declares as reads (not raised).
    pub declared_reads: u64,
}

struct StreamRecent {
    /// (pid, command) of the last window-size calls.
    calls: VecDeque<(u32, Arc<str>)>,
    last_ns: i64,
}

/// Per-container detection state.
pub struct ContainerMonitor {
    subject: Subject,
    model: Arc<LoadedModel>,
    settings: MonitorSettings,
    state: AlertState,
    windower: Windower,
    recent: HashMap<u64, StreamRecent>,
    /// Interned command names, so each call stores a pointer, not a string.
    names: HashMap<String, Arc<str>>,
    window_index: u64,
    /// Threads and processes whose creation (a clone/fork result) was seen, until their first
    /// call is.
    born: HashSet<u32>,
    /// Streams first seen without their creation: already running when watching began.
    joined: HashSet<u64>,
    /// First-time programs and requests, against the model's context profile.
    context: ContextWatcher,
    /// The alert rule's state per first-time item: each alerts at once, then cools down.
    context_states: HashMap<(NoveltyKind, String), AlertState>,
    /// Counters.
    pub stats: MonitorStats,
}

/// Bound on open streams per container (the windower's own default).
const MAX_STREAMS: usize = mamori_detect::window::DEFAULT_MAX_STREAMS;

/// Bound on remembered births not yet followed by a call.
const BORN_MAX: usize = 65_536;

/// Bound on first-time items with their own rule state.
const CONTEXT_STATES_MAX: usize = 4096;

impl ContainerMonitor {
    /// A monitor for one container with its image's model.
    pub fn new(subject: Subject, model: Arc<LoadedModel>, settings: MonitorSettings) -> Self {
        ContainerMonitor {
            subject,
            windower: Windower::new(model.model.window),
            model,
            settings,
            state: AlertState::default(),
            recent: HashMap::new(),
            names: HashMap::new(),
            window_index: 0,
            born: HashSet::new(),
            joined: HashSet::new(),
            context: ContextWatcher::new(),
            context_states: HashMap::new(),
            stats: MonitorStats::default(),
        }
    }

    /// The model in use.
    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// Open streams (threads or processes with a partial window).
    pub fn open_streams(&self) -> usize {
        self.windower.open_streams()
    }

    /// Feeds one call or exit; alerts it completes go to `alerts`.
    pub fn push(&mut self, record: Record, alerts: &mut Vec<Alert>) {
        match record {
            Record::Call(e) => {
                self.stats.events += 1;
                self.check_context(&e, alerts);
                if matches!(e.syscall.as_str(), "clone" | "clone3" | "fork" | "vfork") {
                    if let Some(child) = e.ret.and_then(|r| u32::try_from(r).ok()) {
                        if self.born.len() >= BORN_MAX {
                            self.born.clear();
                        }
                        self.born.insert(child);
                    }
                }
                let Some(symbol) = self.model.table.classify(&e).symbol() else {
                    return;
                };
                self.stats.monitored += 1;
                let key = self.windower.stream_key(e.pid, e.tid);
                let now = e.time_ns.unwrap_or(0);
                let name = match e.process {
                    Some(p) => match self.names.get(&p) {
                        Some(n) => Arc::clone(n),
                        None => {
                            let n: Arc<str> = Arc::from(p.as_str());
                            if self.names.len() < 4096 {
                                self.names.insert(p, Arc::clone(&n));
                            }
                            n
                        }
                    },
                    None => Arc::from("?"),
                };
                let size = self.model.model.window.size;
                if !self.recent.contains_key(&key) {
                    if self.recent.len() >= MAX_STREAMS {
                        self.evict_idle(alerts);
                    }
                    let seen_born = u32::try_from(key).is_ok_and(|k| self.born.remove(&k));
                    if !seen_born {
                        self.joined.insert(key);
                    }
                }
                let recent = self.recent.entry(key).or_insert_with(|| StreamRecent {
                    calls: VecDeque::with_capacity(size),
                    last_ns: now,
                });
                if recent.calls.len() == size {
                    recent.calls.pop_front();
                }
                recent.calls.push_back((e.pid.unwrap_or(0), name));
                recent.last_ns = now;
                if let Some(w) = self.windower.push(key, symbol, e.time_ns) {
                    self.score(w, alerts);
                }
            }
            Record::Exit { pid, .. } => {
                if self.model.model.window.stream == StreamMode::Interleaved {
                    return;
                }
                let key = self.windower.stream_key(pid, pid);
                self.end_stream(key, alerts);
            }
        }
    }

    /// Closes the idlest half of the open streams, as the sweep would (a container spawning
    /// threads faster than the sweep closes them must not grow the agent without bound).
    fn evict_idle(&mut self, alerts: &mut Vec<Alert>) {
        let mut ages: Vec<i64> = self.recent.values().map(|r| r.last_ns).collect();
        let half = ages.len() / 2;
        let (_, &mut cut, _) = ages.select_nth_unstable(half);
        let idle: Vec<u64> = self
            .recent
            .iter()
            .filter(|(_, r)| r.last_ns <= cut)
            .map(|(&k, _)| k)
            .collect();
        for key in idle {
            self.end_stream(key, alerts);
            self.stats.streams_evicted += 1;
        }
    }

    /// Closes streams with no call since `now_ns - idle_ns` (threads whose exit was not seen).
    pub fn sweep(&mut self, now_ns: i64, idle_ns: i64, alerts: &mut Vec<Alert>) {
        let idle: Vec<u64> = self
            .recent
            .iter()
            .filter(|(_, r)| now_ns - r.last_ns > idle_ns)
            .map(|(&k, _)| k)
            .collect();
        for key in idle {
            self.end_stream(key, alerts);
            self.stats.idle_streams_closed += 1;
        }
    }

    /// Scores what is left of a stream when it ends. A stream shorter than one window is scored
    /// as the start of a thread, which is only true when the thread was seen from its start: one
    /// already running when watching began (a `sleep` whose only call left is `exit_group`)
    /// would look like a thread that begins by exiting.
    fn end_stream(&mut self, key: u64, alerts: &mut Vec<Alert>) {
        let joined = self.joined.remove(&key);
        if let Some(w) = self.windower.end_stream(key) {
            if joined {
                self.stats.joined_partial_skipped += 1;
            } else {
                self.score(w, alerts);
            }
        }
        self.recent.remove(&key);
    }

    fn score(&mut self, w: Window, alerts: &mut Vec<Alert>) {
        let score = self.model.model.detector.scorer().score(&w.symbols);
        let index = self.window_index;
        self.window_index += 1;
        self.stats.windows += 1;
        let t = w.end_time_ns.or(w.start_time_ns).unwrap_or(0);
        let decision = self
            .state
            .observe(&self.settings.rule, t, score, self.model.threshold);
        let (run_len, run_start_ns) = match decision {
            Decision::Below => return,
            Decision::Pending { .. } => {
                self.stats.flagged += 1;
                return;
            }
            Decision::Suppressed { .. } => {
                self.stats.flagged += 1;
                self.stats.suppressed += 1;
                return;
            }
            Decision::Fire {
                run_len,
                run_start_ns,
            } => (run_len, run_start_ns),
        };
        self.stats.flagged += 1;
        self.stats.alerts += 1;
        let fired = Fired {
            time_ns: t,
            score,
            threshold: self.model.threshold,
            run_len,
            run_start_ns,
        };
        let evidence = Evidence::Syscalls {
            window: index,
            stream: w.stream,
            start_ns: w.start_time_ns.unwrap_or(t),
            end_ns: t,
            top_classes: self.reasons(&w.symbols),
            processes: self.processes(w.stream),
        };
        alerts.push(Alert::warning(
            self.subject.clone(),
            "syscalls",
            self.model.model.kind.name(),
            &self.model.path,
            fired,
            evidence,
        ));
    }

    /// Raises an alert for a program, request or network standard input line never seen in
    /// training, with the context signals' rule: one occurrence fires, the same item again
    /// within the cooldown does not.
    fn check_context(&mut self, e: &SyscallEvent, alerts: &mut Vec<Alert>) {
        let Some(profile) = self.model.model.context.as_ref() else {
            return;
        };
        let found = self.context.observe(profile, e);
        self.stats.declared_reads = self.context.declared_reads();
        let Some((novelty, repeats)) = found else {
            return;
        };
        self.stats.novelties += 1;
        let t = e.time_ns.unwrap_or(0);
        let rule = self.settings.rule.at_once();
        if self.context_states.len() >= CONTEXT_STATES_MAX {
            self.context_states.clear();
        }
        let state = self
            .context_states
            .entry((novelty.kind, novelty.what.clone()))
            .or_default();
        let Decision::Fire { run_start_ns, .. } = state.observe(&rule, t, 1.0, 0.0) else {
            self.stats.suppressed += 1;
            return;
        };
        self.stats.alerts += 1;
        self.stats.context_alerts += 1;
        alerts.push(novelty.alert(
            self.subject.clone(),
            &self.model.path,
            e.process.as_deref(),
            repeats,
            run_start_ns,
        ));
    }

    fn reasons(&self, symbols: &[u16]) -> Vec<ClassReason> {
        self.model
            .model
            .top_classes(&self.model.table, symbols, self.settings.top_classes)
    }

    fn processes(&self, stream: u64) -> Vec<ProcessSeen> {
        let mut seen: Vec<ProcessSeen> = self
            .recent
            .get(&stream)
            .map(|r| {
                r.calls
                    .iter()
                    .map(|(pid, name)| ProcessSeen {
                        pid: *pid,
                        name: name.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        seen.sort();
        seen.dedup();
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_detect::classes::{ClassRule, ClassTableConfig, Field, Unmatched};
    use mamori_detect::event::SyscallEvent;
    use mamori_detect::window::WindowConfig;
    use mamori_pipeline::model::{Detector, ModelKind, ModelSettings, TrainingInfo};

    fn rule(syscall: &str) -> ClassRule {
        ClassRule {
            name: None,
            syscall: syscall.into(),
            contains: None,
            prefix: None,
            field: Field::Any,
        }
    }

    /// A STIDE model of the loop read, write, close; anything else is anomalous.
    fn model() -> Arc<LoadedModel> {
        model_with_ngram(6)
    }

    fn model_with_ngram(ngram: usize) -> Arc<LoadedModel> {
        let classes = ClassTableConfig {
            name: "t".into(),
            description: None,
            aliases: Default::default(),
            unmatched: Unmatched::Unknown,
            classes: vec![rule("read"), rule("write"), rule("close"), rule("execve")],
        };
        let table = ClassTable::new(classes.clone()).expect("table");
        let window = WindowConfig {
            size: 6,
            stride: 1,
            stream: StreamMode::PerThread,
        };
        let normal: Vec<u16> = (0..60).map(|i| (i % 3) as u16).collect();
        let windows: Vec<&[u16]> = normal.windows(6).collect();
        let settings = ModelSettings {
            ngram,
            ..ModelSettings::default()
        };
        let detector = Detector::fit(
            ModelKind::Stide,
            &settings,
            1,
            &windows,
            &[],
            table.n_symbols(),
            6,
        )
        .expect("fit");
        let model = TrainedModel {
            mamori_version: "test".into(),
            kind: ModelKind::Stide,
            classes,
            window,
            threshold: None,
            training: TrainingInfo {
                inputs: vec![],
                events: 0,
                monitored_events: 0,
                windows: 0,
                calibration_windows: 0,
                seed: 1,
                fit_seconds: 0.0,
                input: None,
            },
            class_share: mamori_pipeline::model::class_share(
                windows.iter().copied(),
                table.n_symbols(),
            ),
            context: None,
            detector,
        };
        Arc::new(LoadedModel {
            path: "t.model".into(),
            model,
            table,
            threshold: 0.0,
        })
    }

    /// Thread `parent` forks `child` (the clone call, with the child's id as its result).
    fn born(parent: u32, child: u32) -> Record {
        let mut r = call(parent, "clone", 0, "sh");
        if let Record::Call(e) = &mut r {
            e.ret = Some(i64::from(child));
        }
        r
    }

    #[test]
    fn a_short_stream_already_running_when_watching_began_is_not_scored_as_a_start() {
        let mut m = monitor(1);
        let mut alerts = Vec::new();
        // tid 5 was running before: all that is seen of it is its end
        m.push(call(5, "execve", 0, "sleep"), &mut alerts);
        m.push(
            Record::Exit {
                pid: Some(5),
                time_ns: Some(1),
            },
            &mut alerts,
        );
        assert!(alerts.is_empty(), "{alerts:?}");
        assert_eq!(m.stats.joined_partial_skipped, 1);
        // the same short stream, seen from its creation, is scored and alerts
        m.push(born(4, 6), &mut alerts);
        m.push(call(6, "execve", 2, "sleep"), &mut alerts);
        m.push(
            Record::Exit {
                pid: Some(6),
                time_ns: Some(3),
            },
            &mut alerts,
        );
        assert_eq!(alerts.len(), 1);
        assert!(matches!(
            alerts[0].evidence,
            Evidence::Syscalls { stream: 6, .. }
        ));
    }

    fn call(tid: u32, name: &str, t: i64, comm: &str) -> Record {
        Record::Call(SyscallEvent {
            time_ns: Some(t),
            pid: Some(tid),
            tid: Some(tid),
            process: Some(comm.into()),
            syscall: name.into(),
            ..SyscallEvent::default()
        })
    }

    fn monitor(min_windows: usize) -> ContainerMonitor {
        ContainerMonitor::new(
            Subject::Container {
                name: "cam".into(),
                id: "abc".into(),
                image: "motion".into(),
            },
            model(),
            MonitorSettings {
                rule: AlertRule {
                    min_flagged: min_windows,
                    gap_ns: 2_000_000_000,
                    cooldown_ns: 10_000_000_000,
                },
                top_classes: 2,
            },
        )
    }

    #[test]
    fn a_program_never_run_in_training_alerts_at_once_with_its_name() {
        let Ok(mut loaded) = Arc::try_unwrap(model()) else {
            panic!("a fresh model has one owner");
        };
        let mut learner = mamori_pipeline::context::ContextLearner::new();
        let mut motion = SyscallEvent {
            syscall: "execve".into(),
            args: vec!["/usr/bin/motion".into()],
            ret: Some(0),
            ..SyscallEvent::default()
        };
        learner.observe(&motion);
        loaded.model.context = Some(learner.finish());
        let mut m = ContainerMonitor::new(
            Subject::Container {
                name: "cam".into(),
                id: "abc".into(),
                image: "motion".into(),
            },
            Arc::new(loaded),
            MonitorSettings {
                rule: AlertRule::syscall_default(),
                top_classes: 2,
            },
        );
        let mut alerts = Vec::new();
        motion.time_ns = Some(1);
        m.push(Record::Call(motion), &mut alerts);
        assert!(alerts.is_empty(), "a trained program: {alerts:?}");
        let shell = |t: i64| {
            Record::Call(SyscallEvent {
                time_ns: Some(t),
                pid: Some(9),
                syscall: "execve".into(),
                args: vec!["/bin/sh".into()],
                ret: Some(0),
                ..SyscallEvent::default()
            })
        };
        m.push(shell(2), &mut alerts);
        m.push(shell(3), &mut alerts); // within the cooldown: counted, not re-alerted
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].source, "context");
        let Evidence::Detail { message, .. } = &alerts[0].evidence else {
            panic!("{:?}", alerts[0].evidence);
        };
        assert_eq!(message, "a program never run in training: /bin/sh");
        assert_eq!((m.stats.novelties, m.stats.context_alerts), (2, 1));
    }

    #[test]
    fn normal_loop_raises_nothing_and_an_exec_raises_one_alert_with_reasons() {
        let mut m = monitor(1);
        let mut alerts = Vec::new();
        let names = ["read", "write", "close"];
        for i in 0..300 {
            m.push(call(7, names[i % 3], i as i64 * 1000, "loop"), &mut alerts);
        }
        assert!(alerts.is_empty(), "{alerts:?}");
        assert!(m.stats.windows > 250);
        for (i, name) in ["execve", "read", "execve", "write", "execve", "close"]
            .iter()
            .enumerate()
        {
            m.push(call(7, name, 400_000 + i as i64, "sh"), &mut alerts);
        }
        assert_eq!(
            alerts.len(),
            1,
            "one alert; later windows are in the cooldown"
        );
        let a = &alerts[0];
        assert_eq!(a.subject.name(), "cam");
        let Evidence::Syscalls {
            top_classes,
            processes,
            ..
        } = &a.evidence
        else {
            panic!("syscall evidence: {a:?}")
        };
        assert_eq!(top_classes[0].class, "execve");
        assert_eq!(top_classes[0].training_share, 0.0);
        assert!(processes.iter().any(|p| p.name == "sh"));
        assert!(a.score > a.threshold);
        assert!(m.stats.suppressed > 0);
    }

    #[test]
    fn min_windows_waits_for_a_run() {
        let mut m = monitor(3);
        let mut alerts = Vec::new();
        for i in 0..12 {
            m.push(
                call(7, ["read", "write", "close"][i % 3], i as i64, "loop"),
                &mut alerts,
            );
        }
        m.push(call(7, "execve", 100, "sh"), &mut alerts);
        assert!(alerts.is_empty(), "one flagged window is not enough");
        m.push(call(7, "execve", 101, "sh"), &mut alerts);
        m.push(call(7, "execve", 102, "sh"), &mut alerts);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].flagged_units, 3);
    }

    #[test]
    fn a_flood_of_threads_is_bounded_and_counted() {
        let mut m = monitor(1);
        let mut alerts = Vec::new();
        let n = MAX_STREAMS as u32 + 10_000;
        for tid in 0..n {
            m.push(
                call(tid + 10, "read", i64::from(tid), "worker"),
                &mut alerts,
            );
            assert!(m.recent.len() <= MAX_STREAMS && m.open_streams() <= MAX_STREAMS);
        }
        assert!(
            m.stats.streams_evicted >= 10_000,
            "{}",
            m.stats.streams_evicted
        );
        assert_eq!(
            m.stats.streams_evicted + m.recent.len() as u64,
            u64::from(n)
        );
        assert!(m.joined.len() <= MAX_STREAMS);
    }

    #[test]
    fn idle_streams_are_closed_and_scored() {
        let mut m = monitor(1);
        let mut alerts = Vec::new();
        m.push(born(8, 9), &mut alerts);
        m.push(call(9, "execve", 0, "sh"), &mut alerts);
        assert_eq!(m.open_streams(), 2);
        m.sweep(120_000_000_000, 60_000_000_000, &mut alerts);
        assert_eq!(m.open_streams(), 0);
        assert_eq!(m.stats.idle_streams_closed, 2);
        assert_eq!(
            alerts.len(),
            1,
            "the partial window of the idle stream is scored"
        );
    }

    #[test]
    fn a_worse_window_alerts_again_inside_the_cooldown() {
        let mut m = monitor(1);
        m.model = model_with_ngram(2);
        let mut alerts = Vec::new();
        let window = |t: i64, symbols: Vec<u16>| Window {
            stream: 7,
            start: 0,
            start_time_ns: Some(t),
            end_time_ns: Some(t),
            symbols,
            call_times: Vec::new(),
        };
        m.score(window(1_000, vec![0, 1, 2, 0, 1, 2]), &mut alerts);
        assert!(alerts.is_empty(), "every pair was seen in training");
        m.score(window(2_000, vec![0, 1, 2, 3, 1, 2]), &mut alerts);
        m.score(window(3_000, vec![0, 1, 2, 3, 1, 2]), &mut alerts);
        assert_eq!(alerts.len(), 1, "the same score again is in the cooldown");
        assert!((alerts[0].score - 0.4).abs() < 1e-12);
        m.score(window(4_000, vec![3, 3, 3, 3, 3, 3]), &mut alerts);
        assert_eq!(
            alerts.len(),
            2,
            "a worse window is not hidden by the cooldown"
        );
        assert_eq!(alerts[1].score, 1.0);
        assert_eq!(m.stats.suppressed, 1);
    }
}
