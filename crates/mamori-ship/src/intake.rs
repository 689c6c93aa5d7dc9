//! Intake: what is shipped, read as it is produced and sealed into the spool at once.
//!
//! A thread per followed file (auditd's log, mamori's alert file) sends lines with their file
//! position; records from inside the process (the agent's own alerts and incidents) come through
//! [`IntakeHandle`]. One sealing thread appends them to the spool in arrival order and commits in
//! batches, saving each file's position with the records that cover it, so a restart resumes
//! each file exactly where the committed records end. When the spool is full, sealing pauses and
//! the files wait on disk (an alert says so); a heartbeat record goes out when nothing else has.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mamori_audit::{FilePos, Follow, FollowOptions, Resumed, Start, StopHandle};
use mamori_core::time::now_ns;
use mamori_seal::{Kind, MAX_PAYLOAD};

use crate::spool::{Spool, SpoolError};
use crate::stats::ShipStats;

/// What a followed file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// auditd's log: one record per line.
    Audit,
    /// mamori's JSON-lines output: alerts and incidents (told apart by their `record` field).
    Mamori,
}

/// A file to follow.
#[derive(Debug, Clone)]
pub struct FileSource {
    /// Name under which its position is saved ("audit", "alerts").
    pub name: String,
    /// The file (followed across rotation to `PATH.1`).
    pub path: PathBuf,
    /// What it holds.
    pub kind: SourceKind,
}

/// Intake settings.
#[derive(Debug, Clone)]
pub struct IntakeOptions {
    /// Records per commit at most.
    pub batch_records: usize,
    /// A commit happens at least this often while records arrive.
    pub batch_wait: Duration,
    /// A heartbeat record after this long with nothing sealed (zero: none).
    pub heartbeat: Duration,
    /// Messages queued between the file readers and the sealer (a message is one chunk read
    /// from a file, up to 64 KiB of lines, or one record from inside the process): 64 keeps a
    /// reader at most ~4 MiB ahead of sealing.
    pub queue: usize,
    /// How often followers look for new data.
    pub poll: Duration,
    /// Where a file is read from the first time (no saved position).
    pub first_start: Start,
}

impl Default for IntakeOptions {
    fn default() -> Self {
        IntakeOptions {
            batch_records: 4096,
            batch_wait: Duration::from_millis(20),
            heartbeat: Duration::from_secs(60),
            queue: 64,
            poll: Duration::from_millis(100),
            first_start: Start::Beginning,
        }
    }
}

/// One thing to seal.
struct Item {
    kind: Kind,
    payload: Vec<u8>,
    /// The file it came from and the position after it.
    pos: Option<(usize, FilePos)>,
}

/// Hands records from inside the process (the agent's alerts and incidents) to the sealer.
#[derive(Clone)]
pub struct IntakeHandle {
    tx: SyncSender<Vec<Item>>,
    inbox: Arc<Mutex<VecDeque<Item>>>,
    stats: Arc<ShipStats>,
}

/// Records from inside the process waiting to be sealed, at most: their own queue, so a flood
/// of log lines never crowds out an alert.
const INBOX: usize = 4096;

impl std::fmt::Debug for IntakeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntakeHandle")
    }
}

impl IntakeHandle {
    /// Queues one record; when its queue is full it is dropped and counted (the caller must not
    /// block: detection goes on).
    pub fn send(&self, kind: Kind, payload: Vec<u8>) {
        {
            let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
            if inbox.len() >= INBOX {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            inbox.push_back(Item {
                kind,
                payload,
                pos: None,
            });
        }
        // wakes the sealer; when the channel is full the sealer is busy and finds it anyway
        let _ = self.tx.try_send(Vec::new());
    }
}

/// The running intake: follower threads and the sealer.
pub struct Intake {
    stop: StopHandle,
    sealer_stop: Arc<AtomicBool>,
    followers: Vec<JoinHandle<()>>,
    sealer: Option<JoinHandle<Result<(), SpoolError>>>,
    handle: IntakeHandle,
}

/// Called when the spool fills (true) and when it has room again (false).
pub type FullHook = Box<dyn Fn(bool, &Spool) + Send>;

impl Intake {
    /// Starts following `sources` and sealing into `spool`; `wake` is told after each commit.
    pub fn start(
        spool: Arc<Mutex<Spool>>,
        sources: Vec<FileSource>,
        opts: IntakeOptions,
        stats: Arc<ShipStats>,
        wake: Arc<tokio::sync::Notify>,
        on_full: Option<FullHook>,
    ) -> std::io::Result<Intake> {
        let (tx, rx) = mpsc::sync_channel(opts.queue.max(1));
        let stop = StopHandle::new();
        let mut followers = Vec::new();
        for (i, src) in sources.iter().enumerate() {
            let saved = spool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .source_position(&src.name);
            let fopts = FollowOptions {
                poll: opts.poll,
                quiet_after: Duration::from_secs(3600),
                start: saved.map_or(opts.first_start, Start::At),
                stop: stop.clone(),
                ..FollowOptions::default()
            };
            let follow = Follow::open(&src.path, &fopts)?;
            if follow.resumed() == Resumed::Lost {
                stats.positions_lost.fetch_add(1, Ordering::Relaxed);
                let note = format!(
                    "{{\"notice\":\"source position lost\",\"source\":\"{}\",\"why\":\"the file read last time was rotated away or shrank; reading the current file from its start\"}}",
                    src.name
                );
                let _ = tx.send(vec![Item {
                    kind: Kind::Notice,
                    payload: note.into_bytes(),
                    pos: None,
                }]);
            }
            let tx = tx.clone();
            let kind = src.kind;
            let stats = Arc::clone(&stats);
            let name = src.name.clone();
            followers.push(
                std::thread::Builder::new()
                    .name(format!("ship-{name}"))
                    .spawn(move || follow_lines(follow, i, kind, &tx, &stats))?,
            );
        }
        let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
        let sealer_stop = Arc::new(AtomicBool::new(false));
        let inbox: Arc<Mutex<VecDeque<Item>>> = Arc::default();
        let sealer = {
            let stats = Arc::clone(&stats);
            let inbox = Arc::clone(&inbox);
            let stop = Arc::clone(&sealer_stop);
            std::thread::Builder::new()
                .name("ship-seal".into())
                .spawn(move || {
                    seal_loop(
                        &spool, rx, &inbox, &names, &opts, &stats, &wake, on_full, &stop,
                    )
                })?
        };
        Ok(Intake {
            stop,
            sealer_stop,
            followers,
            sealer: Some(sealer),
            handle: IntakeHandle { tx, inbox, stats },
        })
    }

    /// A handle for records from inside the process.
    pub fn handle(&self) -> IntakeHandle {
        self.handle.clone()
    }

    /// Reads the files to their current end, seals and commits everything queued, and stops.
    pub fn stop(mut self) -> Result<(), SpoolError> {
        self.stop.stop();
        for f in self.followers.drain(..) {
            let _ = f.join();
        }
        self.sealer_stop.store(true, Ordering::Relaxed);
        drop(self.handle);
        match self.sealer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Ok(()),
        }
    }
}

fn classify(kind: SourceKind, line: &[u8]) -> Kind {
    match kind {
        SourceKind::Audit => Kind::Audit,
        SourceKind::Mamori => {
            // mamori's sinks write `{"record":"alert"|"incident",...}` (serde's tag comes first)
            let head = &line[..line.len().min(40)];
            if memchr::memmem::find(head, b"\"incident\"").is_some() {
                Kind::Incident
            } else {
                Kind::Alert
            }
        }
    }
}

/// Reads lines from a followed file and queues them with the position after each.
fn follow_lines(
    mut follow: Follow,
    source: usize,
    kind: SourceKind,
    tx: &SyncSender<Vec<Item>>,
    stats: &ShipStats,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match follow.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                continue
            }
            Err(e) => {
                stats.source_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("mamori ship: reading source {source}: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = follow.position() else {
            continue;
        };
        let mut start = 0;
        // one message per chunk read, not per line: the channel's cost is per message
        let mut lines = Vec::new();
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
            let line = &buf[start..start + nl];
            start += nl + 1;
            if line.is_empty() {
                continue;
            }
            let pos = FilePos {
                offset: end.offset.saturating_sub((buf.len() - start) as u64),
                ..end
            };
            lines.push(Item {
                kind: classify(kind, line),
                payload: line.to_vec(),
                pos: Some((source, pos)),
            });
        }
        if !lines.is_empty() && tx.send(lines).is_err() {
            return;
        }
        buf.drain(..start);
        if buf.len() > MAX_PAYLOAD {
            // a "line" this long is not a log line: ship it cut, and say so
            stats.lines_cut.fetch_add(1, Ordering::Relaxed);
            let pos = FilePos {
                offset: end.offset,
                ..end
            };
            let payload: Vec<u8> = buf.drain(..).take(MAX_PAYLOAD).collect();
            if tx
                .send(vec![Item {
                    kind: classify(kind, &payload),
                    payload,
                    pos: Some((source, pos)),
                }])
                .is_err()
            {
                return;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn seal_loop(
    spool: &Mutex<Spool>,
    rx: Receiver<Vec<Item>>,
    inbox: &Mutex<VecDeque<Item>>,
    names: &[String],
    opts: &IntakeOptions,
    stats: &ShipStats,
    wake: &tokio::sync::Notify,
    on_full: Option<FullHook>,
    stop: &AtomicBool,
) -> Result<(), SpoolError> {
    let lock = || spool.lock().unwrap_or_else(PoisonError::into_inner);
    let mut last_sealed = Instant::now();
    let mut full_since: Option<Instant> = None;
    loop {
        // a full spool: wait for acknowledgements (the files keep what is not read yet)
        {
            let s = lock();
            stats.observe(&s);
            if s.is_full() {
                if full_since.is_none() {
                    full_since = Some(Instant::now());
                    stats.full_events.fetch_add(1, Ordering::Relaxed);
                    stats.full.store(1, Ordering::Relaxed);
                    if let Some(hook) = &on_full {
                        hook(true, &s);
                    }
                }
                drop(s);
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        if let Some(since) = full_since.take() {
            stats.full.store(0, Ordering::Relaxed);
            let mut s = lock();
            let note = format!(
                "{{\"notice\":\"intake resumed\",\"paused_seconds\":{:.3}}}",
                since.elapsed().as_secs_f64()
            );
            s.append(Kind::Notice, now_ns(), note.as_bytes())?;
            stats.count_sealed(Kind::Notice);
            if let Some(hook) = &on_full {
                hook(false, &s);
            }
        }
        let first = match rx.recv_timeout(opts.batch_wait.max(Duration::from_millis(1))) {
            Ok(item) => Some(item),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected)
                if stop.load(Ordering::Relaxed) =>
            {
                // followers have finished and what they queued has been sealed; the last
                // in-process records too
                let mut s = lock();
                for item in inbox
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .drain(..)
                {
                    s.append(item.kind, now_ns(), &item.payload)?;
                    stats.count_sealed(item.kind);
                }
                s.commit()?;
                stats.observe(&s);
                wake.notify_one();
                return Ok(());
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(10));
                None
            }
        };
        let mut s = lock();
        let mut sealed = 0usize;
        let deadline = Instant::now() + opts.batch_wait;
        let inproc: Vec<Item> = inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        let mut queued: VecDeque<Vec<Item>> = [inproc].into_iter().chain(first).collect();
        let mut next = queued.pop_front();
        while let Some(bundle) = next.take() {
            // a bundle is one source's chunk (or one in-process record): its last position
            // covers all of it
            let mut last_pos: Option<(usize, FilePos)> = None;
            for item in bundle {
                s.append(item.kind, now_ns(), &item.payload)?;
                stats.count_sealed(item.kind);
                last_pos = item.pos.or(last_pos);
                sealed += 1;
            }
            if let Some((src, pos)) = last_pos {
                s.set_source_position(&names[src], pos);
            }
            if sealed >= opts.batch_records || Instant::now() >= deadline || s.is_full() {
                break;
            }
            next = queued.pop_front().or_else(|| rx.try_recv().ok());
        }
        if sealed == 0 && !opts.heartbeat.is_zero() && last_sealed.elapsed() >= opts.heartbeat {
            let beat = format!("{{\"heartbeat\":true,\"pending\":{}}}", s.pending_records());
            s.append(Kind::Heartbeat, now_ns(), beat.as_bytes())?;
            stats.count_sealed(Kind::Heartbeat);
            sealed = 1;
        }
        if sealed > 0 {
            last_sealed = Instant::now();
            s.commit()?;
            stats.observe(&s);
            drop(s);
            wake.notify_one();
        }
    }
}
