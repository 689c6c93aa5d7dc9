//! The agent's `[audit]` section: a thread follows auditd's log (from its start, then live,
//! across rotation) or reads the audisp `af_unix` socket, and keeps the recent events in a
//! bounded ring for the root-cause analysis ([`crate::rootcause`]) to read when a container is
//! about to be reset.
//!
//! Bounds: events older than `retain_seconds` and beyond `max_events` are dropped, oldest
//! first, and counted. What is kept of an event is what the provenance graph reads (see
//! [`slim`]): an event with no SYSCALL record (a userspace message, a config change) is not
//! kept at all.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mamori_audit::{AuditEvent, AuditReader, FollowOptions, ParseStats, Start, StopHandle};
use mamori_core::time::now_ns;

use super::config::AuditConfig;
use super::metrics::AuditMetrics;

/// Records of an event that the provenance graph reads beyond the decoded views (mamori-prov's
/// `build.rs`: signal targets, mmap's descriptor, pipe descriptors, openat2's flags).
const KEPT_RECORDS: [&str; 4] = ["OBJ_PID", "MMAP", "FD_PAIR", "OPENAT2"];

/// What of an event is kept: the decoded SYSCALL, EXECVE, PATH, CWD and SOCKADDR views and the
/// few records the graph builder looks up. The raw records of the decoded views, the rule key
/// and the process title (the builder reads it only for an exec without EXECVE record) are
/// dropped: they are most of an event's memory. `None` for an event without a SYSCALL record,
/// which the graph ignores.
pub fn slim(mut ev: AuditEvent) -> Option<AuditEvent> {
    let sc = ev.syscall.as_mut()?;
    sc.key = None;
    let exec = matches!(sc.name.as_deref(), Some("execve" | "execveat"));
    if ev.execve.is_some() || !exec {
        ev.proctitle = None;
    }
    ev.records
        .retain(|r| KEPT_RECORDS.contains(&r.kind.as_str()));
    ev.records.shrink_to_fit();
    ev.paths.shrink_to_fit();
    Some(ev)
}

/// Rough heap bytes of a slimmed event (strings and vectors), for the memory gauge.
fn approx_bytes(ev: &AuditEvent) -> u64 {
    let mut n = std::mem::size_of::<AuditEvent>();
    if let Some(sc) = &ev.syscall {
        n += sc.arch.len() + sc.comm.len() + sc.exe.len();
        n += sc.name.as_ref().map_or(0, String::len);
    }
    if let Some(x) = &ev.execve {
        n += x.argv.iter().map(|a| a.len() + 24).sum::<usize>();
    }
    n += ev
        .paths
        .iter()
        .map(|p| {
            std::mem::size_of::<mamori_audit::PathItem>()
                + p.name.as_ref().map_or(0, String::len)
                + p.dev.as_ref().map_or(0, String::len)
                + p.nametype.len()
        })
        .sum::<usize>();
    n += ev.cwd.as_ref().map_or(0, String::len);
    n += ev.proctitle.as_ref().map_or(0, String::len);
    n += ev
        .records
        .iter()
        .map(|r| std::mem::size_of::<mamori_audit::Record>() + r.raw().len() + 16)
        .sum::<usize>();
    n as u64
}

/// The recent events, oldest first (in the order they were read, which follows serial order
/// but for events whose records interleaved), bounded by age and count.
#[derive(Debug)]
pub struct Ring {
    events: VecDeque<Arc<AuditEvent>>,
    retain_ns: i64,
    max_events: usize,
    bytes: u64,
    /// Events dropped because they were older than the retention (on arrival or later).
    pub dropped_age: u64,
    /// Events dropped because the ring was full.
    pub dropped_count: u64,
    /// The latest event time read (ns), 0 before the first.
    pub newest_ns: i64,
}

impl Ring {
    /// An empty ring keeping events for `retain` and at most `max_events` of them.
    pub fn new(retain: Duration, max_events: usize) -> Ring {
        Ring {
            events: VecDeque::new(),
            retain_ns: i64::try_from(retain.as_nanos()).unwrap_or(i64::MAX),
            max_events: max_events.max(1),
            bytes: 0,
            dropped_age: 0,
            dropped_count: 0,
            newest_ns: 0,
        }
    }

    /// Adds an event read at `now_ns` (wall clock), dropping what the bounds no longer allow.
    pub fn push(&mut self, ev: Arc<AuditEvent>, now_ns: i64) {
        self.newest_ns = self.newest_ns.max(ev.time_ns);
        let cutoff = now_ns.saturating_sub(self.retain_ns);
        if ev.time_ns < cutoff {
            // the log's older part, read at start
            self.dropped_age += 1;
            return;
        }
        self.bytes += approx_bytes(&ev);
        self.events.push_back(ev);
        while self.events.len() > self.max_events {
            self.pop_front();
            self.dropped_count += 1;
        }
        self.expire(now_ns);
    }

    /// Drops events older than the retention at `now_ns`.
    pub fn expire(&mut self, now_ns: i64) {
        let cutoff = now_ns.saturating_sub(self.retain_ns);
        while self.events.front().is_some_and(|e| e.time_ns < cutoff) {
            self.pop_front();
            self.dropped_age += 1;
        }
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.events.pop_front() {
            self.bytes = self.bytes.saturating_sub(approx_bytes(&e));
        }
    }

    /// Events kept.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Rough memory of the kept events in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The oldest kept event's time (ns).
    pub fn oldest_ns(&self) -> Option<i64> {
        self.events.front().map(|e| e.time_ns)
    }

    /// The events stamped in `[from_ns, to_ns]` but those of process `leave_out`, in serial
    /// order (the order the graph builder needs); when there are more than `max`, the latest
    /// `max` of them. Also returns how many were in the window. Only `Arc`s are copied, so the
    /// lock is held briefly.
    pub fn window(
        &self,
        from_ns: i64,
        to_ns: i64,
        max: usize,
        leave_out: u32,
    ) -> (Vec<Arc<AuditEvent>>, usize) {
        let mut out: Vec<Arc<AuditEvent>> = self
            .events
            .iter()
            .filter(|e| {
                (from_ns..=to_ns).contains(&e.time_ns)
                    && !matches!(&e.syscall, Some(s) if s.pid == leave_out)
            })
            .cloned()
            .collect();
        let total = out.len();
        // nearly sorted already: the sort is about one pass
        out.sort_by_key(|e| e.serial);
        if out.len() > max {
            out.drain(..out.len() - max);
        }
        (out, total)
    }
}

/// The parse counters /metrics shows, from a reader's [`ParseStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    bytes: u64,
    lines: u64,
    records: u64,
    events: u64,
    malformed: u64,
    lost: u64,
    serial_gaps: u64,
    /// Rotations, truncations and reconnects of the reader's source.
    rotations: u64,
    truncations: u64,
    reconnects: u64,
}

impl Counts {
    fn of(s: &ParseStats, (rotations, truncations, reconnects): (u64, u64, u64)) -> Counts {
        Counts {
            bytes: s.bytes,
            lines: s.lines,
            records: s.records,
            events: s.events,
            malformed: s.malformed + s.long_lines,
            lost: s.lost,
            serial_gaps: s.serial_gaps,
            rotations,
            truncations,
            reconnects,
        }
    }

    fn plus(&self, o: &Counts) -> Counts {
        Counts {
            bytes: self.bytes + o.bytes,
            lines: self.lines + o.lines,
            records: self.records + o.records,
            events: self.events + o.events,
            malformed: self.malformed + o.malformed,
            lost: self.lost + o.lost,
            serial_gaps: self.serial_gaps + o.serial_gaps,
            rotations: self.rotations + o.rotations,
            truncations: self.truncations + o.truncations,
            reconnects: self.reconnects + o.reconnects,
        }
    }
}

/// Counters of the reading side.
#[derive(Debug, Clone, Default)]
struct ReadCounters {
    /// Of readers that ended (after a read error the log is followed by a new reader).
    done: Counts,
    /// Of the current reader.
    current: Counts,
    /// Events without a SYSCALL record (not kept).
    unused: u64,
    read_errors: u64,
    /// The log's size when following began; reading has caught up once this much was read.
    initial_len: u64,
    caught_up: bool,
}

impl ReadCounters {
    fn total(&self) -> Counts {
        self.done.plus(&self.current)
    }
}

/// What the reading thread and the analyses share.
#[derive(Debug)]
pub struct FeedState {
    /// The recent events.
    pub ring: Ring,
    counters: ReadCounters,
}

impl FeedState {
    /// A state around `ring`, nothing read yet.
    pub fn new(ring: Ring) -> FeedState {
        FeedState {
            ring,
            counters: ReadCounters::default(),
        }
    }
}

/// The running `[audit]` section: the reading thread and the ring it fills.
pub struct AuditFeed {
    /// The ring and the reading counters.
    pub state: Arc<Mutex<FeedState>>,
    /// What is read: `log PATH` or `socket PATH`.
    pub source: String,
    thread: Option<JoinHandle<()>>,
}

/// Where events come from.
#[derive(Debug, Clone)]
enum Source {
    Log(PathBuf),
    Socket(PathBuf),
}

impl AuditFeed {
    /// Opens the log (or connects to the socket) now, so a wrong path is a startup error naming
    /// its key, then reads on a thread of its own until `stop` is set.
    pub fn start(config: &AuditConfig, stop: Arc<AtomicBool>) -> Result<AuditFeed> {
        let source = if config.log.as_os_str().is_empty() {
            Source::Socket(config.socket.clone())
        } else {
            Source::Log(config.log.clone())
        };
        let ring = Ring::new(
            Duration::from_secs_f64(config.retain_seconds),
            config.max_events,
        );
        let state = Arc::new(Mutex::new(FeedState::new(ring)));
        let opts = FollowOptions {
            // an analysis waits for the reader to get past its decision: poll often
            poll: Duration::from_millis(100),
            stop: StopHandle::from(stop),
            ..FollowOptions::default()
        };
        let (label, thread) = match &source {
            Source::Log(path) => {
                // Follow waits for a file that does not exist yet: a typo would wait forever
                let file = std::fs::File::open(path).with_context(|| {
                    format!("audit.log: cannot open the audit log {}", path.display())
                })?;
                let initial_len = file.metadata().map(|m| m.len()).unwrap_or(0);
                drop(file);
                let reader = mamori_audit::follow_path(
                    path,
                    FollowOptions {
                        start: Start::Beginning,
                        ..opts.clone()
                    },
                )
                .with_context(|| {
                    format!("audit.log: cannot follow the audit log {}", path.display())
                })?;
                lock(&state).counters.initial_len = initial_len;
                let (state2, path2) = (Arc::clone(&state), path.clone());
                let thread = std::thread::Builder::new()
                    .name("mamori-audit".into())
                    .spawn(move || follow_log(reader, &path2, opts, &state2))?;
                (format!("log {}", path.display()), thread)
            }
            Source::Socket(path) => {
                let reader =
                    mamori_audit::connect_audisp(path, opts.clone()).with_context(|| {
                        format!(
                            "audit.socket: cannot connect to the audisp socket {}",
                            path.display()
                        )
                    })?;
                lock(&state).counters.caught_up = true;
                let state2 = Arc::clone(&state);
                let thread = std::thread::Builder::new()
                    .name("mamori-audit".into())
                    .spawn(move || {
                        let mut reader = reader;
                        // the socket reconnects by itself; an error here ends the section
                        if let Some(e) =
                            pump(&mut reader, &state2, |r| (0, 0, r.get_ref().reconnects()))
                        {
                            eprintln!("mamori: audit: reading the audisp socket failed: {e}");
                        }
                        finish_reader(&state2);
                    })?;
                (format!("socket {}", path.display()), thread)
            }
        };
        Ok(AuditFeed {
            state,
            source: label,
            thread: Some(thread),
        })
    }

    /// The section's counters for /metrics (analysis counters are filled in by the caller).
    pub fn metrics(&self) -> AuditMetrics {
        let mut st = lock(&self.state);
        st.ring.expire(now_ns());
        let c = st.counters.total();
        AuditMetrics {
            lines: c.lines,
            records: c.records,
            events: c.events,
            malformed: c.malformed,
            lost: c.lost,
            serial_gaps: c.serial_gaps,
            unused_events: st.counters.unused,
            rotations: c.rotations,
            truncations: c.truncations,
            reconnects: c.reconnects,
            read_errors: st.counters.read_errors,
            caught_up: st.counters.caught_up,
            retained: st.ring.len() as u64,
            retained_bytes: st.ring.bytes(),
            retained_seconds: st
                .ring
                .oldest_ns()
                .map_or(0.0, |o| (st.ring.newest_ns - o).max(0) as f64 / 1e9),
            dropped_age: st.ring.dropped_age,
            dropped_count: st.ring.dropped_count,
            ..AuditMetrics::default()
        }
    }

    /// Waits for the reading thread (the shared stop flag must be set).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(state: &Mutex<FeedState>) -> std::sync::MutexGuard<'_, FeedState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads events into the ring until the reader ends (stopped, or an I/O error, returned).
/// `side` gives the source's rotations, truncations and reconnects.
fn pump<R: BufRead>(
    reader: &mut AuditReader<R>,
    state: &Mutex<FeedState>,
    side: impl Fn(&R) -> (u64, u64, u64),
) -> Option<mamori_audit::Error> {
    loop {
        let next = reader.next();
        let now = now_ns();
        let mut st = lock(state);
        let c = &mut st.counters;
        c.current = Counts::of(reader.stats(), side(reader.get_ref()));
        if !c.caught_up {
            let total = c.total();
            c.caught_up = total.bytes >= c.initial_len || total.rotations > 0;
        }
        match next {
            Some(Ok(ev)) => match slim(ev) {
                Some(ev) => st.ring.push(Arc::new(ev), now),
                None => st.counters.unused += 1,
            },
            Some(Err(e)) => {
                st.counters.read_errors += 1;
                return Some(e);
            }
            None => return None,
        }
    }
}

/// Moves a finished reader's counters to the totals.
fn finish_reader(state: &Mutex<FeedState>) {
    let mut st = lock(state);
    let c = &mut st.counters;
    c.done = c.done.plus(&c.current);
    c.current = Counts::default();
}

/// Follows the log until stopped; after a read error, follows it again from its end.
fn follow_log(
    first: AuditReader<std::io::BufReader<mamori_audit::Follow>>,
    path: &Path,
    opts: FollowOptions,
    state: &Mutex<FeedState>,
) {
    let stop = opts.stop.clone();
    let mut reader = first;
    loop {
        let error = pump(&mut reader, state, |f| {
            (f.get_ref().rotations(), f.get_ref().truncations(), 0)
        });
        finish_reader(state);
        let Some(e) = error else {
            return; // stopped
        };
        eprintln!(
            "mamori: audit: reading {} failed: {e}; following it again from its end",
            path.display()
        );
        loop {
            if stop.is_stopped() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
            match mamori_audit::follow_path(path, opts.clone()) {
                Ok(r) => {
                    reader = r;
                    break;
                }
                Err(e) => eprintln!("mamori: audit: reopening {}: {e}", path.display()),
            }
        }
    }
}

/// Waits up to `limit` for the reader to have read an event stamped at or after `until_ns`.
/// Returns how long it waited.
pub fn wait_for(state: &Mutex<FeedState>, until_ns: i64, limit: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit && lock(state).ring.newest_ns < until_ns {
        std::thread::sleep(Duration::from_millis(10).min(limit));
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_prov::testkit::{inet, Proc, Sim};
    use std::io::Write;

    fn event(serial: u64, time_ns: i64) -> Arc<AuditEvent> {
        Arc::new(AuditEvent {
            serial,
            time_ns,
            syscall: Some(mamori_audit::Syscall::default()),
            ..AuditEvent::default()
        })
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn the_ring_drops_the_oldest_by_age_and_by_count() {
        let mut ring = Ring::new(Duration::from_secs(10), 3);
        let now = 1_000 * S;
        // older than the retention on arrival (the log's start, read at startup)
        ring.push(event(1, now - 11 * S), now);
        assert_eq!((ring.len(), ring.dropped_age), (0, 1));
        for (i, age) in [9, 8, 7].into_iter().enumerate() {
            ring.push(event(2 + i as u64, now - age * S), now);
        }
        assert_eq!(ring.len(), 3);
        ring.push(event(5, now - 6 * S), now);
        assert_eq!(
            (ring.len(), ring.dropped_count),
            (3, 1),
            "full: the oldest goes"
        );
        assert_eq!(ring.oldest_ns(), Some(now - 8 * S));
        assert!(ring.bytes() > 0);
        // time passes: what is now older than 10 s goes
        ring.expire(now + 4 * S);
        assert_eq!((ring.len(), ring.dropped_age), (1, 3));
        assert_eq!(ring.newest_ns, now - 6 * S);
        ring.expire(now + 100 * S);
        assert!(ring.is_empty());
        assert_eq!(ring.bytes(), 0, "memory is given back with the events");
    }

    #[test]
    fn a_window_is_in_serial_order_and_keeps_the_latest() {
        let mut ring = Ring::new(Duration::from_secs(100), 100);
        let now = 1_000 * S;
        // completion order differs from serial order where records interleaved
        for (serial, t) in [(10, 1), (12, 3), (11, 2), (13, 4), (14, 50)] {
            ring.push(event(serial, now - 60 * S + t * S), now);
        }
        let (w, total) = ring.window(now - 60 * S, now - 55 * S, 10, 4242);
        assert_eq!(total, 4);
        assert_eq!(
            w.iter().map(|e| e.serial).collect::<Vec<_>>(),
            vec![10, 11, 12, 13]
        );
        let (w, total) = ring.window(now - 60 * S, now, 2, 4242);
        assert_eq!(total, 5);
        assert_eq!(w.iter().map(|e| e.serial).collect::<Vec<_>>(), vec![13, 14]);
        // the agent's own events are left out
        let (w, total) = ring.window(now - 60 * S, now, 10, 0);
        assert_eq!((w.len(), total), (0, 0));
    }

    #[test]
    fn slimmed_events_make_the_same_graph() {
        let mut sim = Sim::new(1_765_022_400_000_000_000);
        let shell = Proc::new(100, 1, "/bin/sh");
        let mut child = sim.fork(&shell, 101);
        sim.exec(&mut child, "/usr/bin/curl", 5, &["curl", "http://x"]);
        sim.connect(&mut child, inet("203.0.113.7", 80));
        let fd = sim.create(&mut child, "/tmp/x", 6);
        sim.mmap_exec(&child, fd, "/tmp/x", 6);
        let (_r, _w) = sim.pipe(&mut child);
        sim.kill(&child, &shell, 9);
        let full = sim.events.clone();
        let mut with_user = full.clone();
        with_user.push(AuditEvent {
            serial: 99_999,
            time_ns: sim.now(),
            ..AuditEvent::default()
        });
        let slim: Vec<AuditEvent> = with_user.into_iter().filter_map(slim).collect();
        assert_eq!(slim.len(), full.len(), "the userspace event is dropped");
        let opts = mamori_prov::BuildOptions::default();
        let (a, b) = (
            mamori_prov::build(&full, &opts),
            mamori_prov::build(&slim, &opts),
        );
        assert_eq!(a.nodes(), b.nodes());
        assert_eq!(a.edges(), b.edges());
        assert!(a
            .edges()
            .iter()
            .any(|e| e.op == mamori_prov::Op::Kill || e.op == mamori_prov::Op::MmapExec));
        assert!(slim.iter().all(|e| e.records.len() <= 1));
    }

    /// A temporary file removed on drop.
    struct TempLog(PathBuf);

    impl Drop for TempLog {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn line(serial: u64, secs: i64, pid: u32) -> String {
        format!(
            "type=SYSCALL msg=audit({secs}.000:{serial}): arch=c000003e syscall=59 success=yes \
             exit=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid={pid} auid=0 uid=0 gid=0 euid=0 \
             suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm=\"sh\" exe=\"/bin/sh\" \
             key=(null)\ntype=EXECVE msg=audit({secs}.000:{serial}): argc=1 a0=\"sh\"\n\
             type=PROCTITLE msg=audit({secs}.000:{serial}): proctitle=7368\n"
        )
    }

    fn wait(what: &str, feed: &AuditFeed, done: impl Fn(&AuditMetrics) -> bool) -> AuditMetrics {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = feed.metrics();
            if done(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {m:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn the_feed_reads_the_log_from_its_start_then_follows_it() {
        let path =
            std::env::temp_dir().join(format!("mamori-audit-feed-{}.log", std::process::id()));
        let _guard = TempLog(path.clone());
        let now = now_ns() / 1_000_000_000;
        let mut text = line(1, now - 5000, 7); // older than the retention
        text += &line(2, now - 10, 8);
        text += "not an audit line\n";
        text += "type=USER_LOGIN msg=audit(1.000:3): pid=9 uid=0 msg='op=login res=success'\n";
        std::fs::write(&path, &text).expect("log written");
        let stop = Arc::new(AtomicBool::new(false));
        let config = AuditConfig {
            log: path.clone(),
            ..AuditConfig::default()
        };
        let feed = AuditFeed::start(&config, Arc::clone(&stop)).expect("starts");
        assert_eq!(feed.source, format!("log {}", path.display()));
        let m = wait("the existing lines", &feed, |m| {
            m.caught_up && m.events >= 2
        });
        assert_eq!(m.malformed, 1);
        assert_eq!(m.dropped_age, 1);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("append");
        f.write_all(line(4, now, 10).as_bytes()).expect("written");
        f.write_all(b"type=LOST msg=audit(1.000:5): lost=7\n")
            .expect("written");
        f.write_all(line(6, now, 11).as_bytes()).expect("written");
        drop(f);
        let m = wait("the appended lines", &feed, |m| m.retained == 3);
        assert_eq!(m.lost, 7);
        assert!(m.records >= 10);
        assert_eq!(
            m.unused_events, 2,
            "the login and the LOST record are not kept"
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        feed.join();
    }

    #[test]
    fn a_log_that_cannot_be_opened_is_a_startup_error_naming_the_key() {
        let config = AuditConfig {
            log: PathBuf::from("/nonexistent/mamori/audit.log"),
            ..AuditConfig::default()
        };
        let err = AuditFeed::start(&config, Arc::new(AtomicBool::new(true)))
            .err()
            .expect("no such log");
        let text = format!("{err:#}");
        assert!(text.contains("audit.log"), "{text}");
        assert!(text.contains("/nonexistent/mamori/audit.log"), "{text}");
        let config = AuditConfig {
            socket: PathBuf::from("/nonexistent/mamori/audispd_events"),
            ..AuditConfig::default()
        };
        let err = AuditFeed::start(&config, Arc::new(AtomicBool::new(true)))
            .err()
            .expect("no such socket");
        let text = format!("{err:#}");
        assert!(text.contains("audit.socket"), "{text}");
    }
}
