//! Live capture shared by `mamori capture`, `mamori learn` and `mamori agent`: the eBPF probe (or
//! strace) feeding batches of assembled calls into a bounded queue, with Docker telling which
//! cgroups are containers and which containers to watch.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mamori_capture::ptrace::{PtraceCapture, OVERHEAD_WARNING};
use mamori_capture::raw::RawEvent;
use mamori_capture::{
    Assembler, Captured, FdSnapshots, Probe, ProbeConfig, ProbeCounters, RecordSink, WatchHandle,
};
use mamori_docker::{
    processes_in_cgroup_of, ContainerDirectory, ContainerEvent, ContainerInfo, DockerClient,
};

use super::config::Backend;

/// What to capture.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Container names or ids; empty means every container.
    pub containers: Vec<String>,
    /// Also processes outside containers.
    pub include_host: bool,
}

impl Scope {
    fn wants(&self, info: &ContainerInfo) -> bool {
        self.containers.is_empty()
            || self
                .containers
                .iter()
                .any(|c| c == &info.name || info.id.starts_with(c.as_str()))
    }
}

/// Capture settings.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// eBPF or ptrace.
    pub backend: Backend,
    /// Bytes of written buffers to keep.
    pub write_bytes: u32,
    /// Report each newly accepted connection's first data (eBPF; strace always shows it).
    pub request_data: bool,
    /// Ring-buffer size in MiB.
    pub ring_mib: u32,
    /// Batches queued towards the consumer.
    pub queue_batches: usize,
}

/// Counters of the capture side, shared with /metrics.
#[derive(Debug, Default)]
pub struct CaptureStats {
    /// Times the queue was full and capture had to wait (back-pressure).
    pub queue_full: AtomicU64,
}

const BATCH: usize = 512;
/// A partial batch is handed on after this long, so light traffic is not delayed.
const BATCH_AGE: Duration = Duration::from_millis(100);

struct Batcher {
    tx: SyncSender<Vec<Captured>>,
    batch: Vec<Captured>,
    since: Instant,
    stats: Arc<CaptureStats>,
}

impl Batcher {
    fn add(&mut self, c: Captured) {
        if self.batch.is_empty() {
            self.since = Instant::now();
        }
        self.batch.push(c);
        if self.batch.len() >= BATCH {
            self.send();
        }
    }

    fn send(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if let Err(TrySendError::Full(batch)) = self.tx.try_send(batch) {
            // wait for the consumer: the kernel ring buffer absorbs the burst meanwhile; a
            // consumer that has gone away (shutting down) leaves nothing to deliver to
            self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
            let _ = self.tx.send(batch);
        }
    }

    fn send_if_old(&mut self) {
        if !self.batch.is_empty() && self.since.elapsed() >= BATCH_AGE {
            self.send();
        }
    }
}

struct ProbeSink {
    assembler: Assembler,
    batcher: Batcher,
}

impl RecordSink for ProbeSink {
    fn record(&mut self, raw: &RawEvent<'_>) {
        let batcher = &mut self.batcher;
        self.assembler.push(raw, &mut |c| batcher.add(c));
    }

    fn polled(&mut self) {
        self.batcher.send_if_old();
    }
}

/// A running live capture. Dropping it stops capture.
pub struct SyscallCapture {
    /// Batches of assembled calls, in capture order.
    pub batches: Receiver<Vec<Captured>>,
    /// Containers known to Docker, by cgroup id.
    pub directory: Arc<ContainerDirectory>,
    /// Queue counters.
    pub stats: Arc<CaptureStats>,
    probe: Option<Probe>,
    /// strace's pid, to detach it on stop.
    ptrace_pid: Option<u32>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl SyscallCapture {
    /// Starts capture of `scope`. With containers named, waits until Docker confirms each runs.
    pub fn start(options: &LiveOptions, scope: Scope) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mamori-docker")
            .enable_all()
            .build()
            .context("starting the Docker client runtime")?;
        let directory = Arc::new(ContainerDirectory::new());
        let stats = Arc::new(CaptureStats::default());
        let (tx, batches) = mpsc::sync_channel(options.queue_batches.max(1));
        let batcher = Batcher {
            tx,
            batch: Vec::with_capacity(BATCH),
            since: Instant::now(),
            stats: Arc::clone(&stats),
        };
        let client = if scope.containers.is_empty() && scope.include_host {
            // host-only capture works without Docker
            runtime.block_on(DockerClient::connect()).ok()
        } else {
            Some(runtime.block_on(DockerClient::connect())?)
        };
        // named containers must exist now: a typo should fail at once, not capture nothing
        let mut named = Vec::new();
        if let Some(client) = &client {
            for name in &scope.containers {
                let info = runtime.block_on(client.inspect(name))?;
                if info.pid.is_none() {
                    bail!("container {name} is not running");
                }
                named.push(info.clone());
                directory.insert(info);
            }
        }
        let mut live = SyscallCapture {
            batches,
            directory: Arc::clone(&directory),
            stats,
            probe: None,
            ptrace_pid: None,
            runtime: None,
        };
        let snapshots = FdSnapshots::default();
        match options.backend {
            Backend::Ebpf => {
                let probe = Probe::start(
                    ProbeConfig {
                        only_watched: !scope.include_host,
                        write_bytes: options.write_bytes,
                        request_data: options.request_data,
                        cgroup_v1: false,
                        ring_bytes: options.ring_mib.saturating_mul(1 << 20),
                    },
                    ProbeSink {
                        assembler: Assembler::new().with_snapshots(snapshots.clone()),
                        batcher,
                    },
                )?;
                let watch = probe.watch_handle();
                for info in &named {
                    if let Some(cg) = info.cgroup_id {
                        snapshot_container(&snapshots, info);
                        watch.watch(cg)?;
                    }
                }
                if let Some(client) = client {
                    let follower =
                        follow_into_probe(client, Arc::clone(&directory), watch, snapshots, scope);
                    runtime.spawn(follower);
                }
                live.probe = Some(probe);
            }
            Backend::Ptrace => {
                eprintln!("mamori: warning: {OVERHEAD_WARNING}");
                if named.is_empty() {
                    bail!("the ptrace backend needs the containers to trace named (--container)");
                }
                let pids: Vec<u32> = named.iter().filter_map(|i| i.pid).collect();
                let cgroup = named.first().and_then(|i| i.cgroup_id).unwrap_or(0);
                let cap = PtraceCapture::attach(&pids).context("starting strace")?;
                live.ptrace_pid = Some(cap.strace_pid());
                std::thread::Builder::new()
                    .name("mamori-ptrace".into())
                    .spawn(move || ptrace_loop(cap, cgroup, batcher))
                    .context("starting the ptrace reader")?;
            }
        }
        live.runtime = Some(runtime);
        Ok(live)
    }

    /// The probe's counters (None with the ptrace backend).
    pub fn probe_counters(&self) -> Option<ProbeCounters> {
        self.probe.as_ref().map(Probe::counters)
    }

    /// Stops capture; batches already queued can still be received.
    pub fn stop(&mut self) {
        if let Some(p) = self.probe.take() {
            if let Err(e) = p.stop() {
                eprintln!("mamori: {e}");
            }
        }
        if let Some(pid) = self.ptrace_pid.take() {
            // strace detaches from its tracees on SIGTERM; the reader thread then sees the end
            // SAFETY: kill only sends a signal to the strace we started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for SyscallCapture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads the descriptor tables of a container's processes just before it is watched (see
/// [`FdSnapshots`] for why).
fn snapshot_container(snapshots: &FdSnapshots, info: &ContainerInfo) {
    if let Some(pid) = info.pid {
        if let Ok(pids) = processes_in_cgroup_of(pid) {
            snapshots.take(&pids);
        }
    }
}

/// Mirrors the wanted containers' cgroups into the probe's filter as containers come and go.
async fn follow_into_probe(
    client: DockerClient,
    dir: Arc<ContainerDirectory>,
    watch: WatchHandle,
    snapshots: FdSnapshots,
    scope: Scope,
) {
    let mut watched: HashSet<u64> = HashSet::new();
    let view = Arc::clone(&dir);
    let on_change = move |_: &ContainerEvent| {
        let wanted: HashSet<u64> = view
            .cgroup_ids()
            .into_iter()
            .filter(|&cg| view.by_cgroup(cg).is_some_and(|i| scope.wants(&i)))
            .collect();
        for &cg in wanted.difference(&watched) {
            if let Some(info) = view.by_cgroup(cg) {
                snapshot_container(&snapshots, &info);
            }
            if let Err(e) = watch.watch(cg) {
                eprintln!("mamori: {e}");
            }
        }
        for &cg in watched.difference(&wanted) {
            watch.unwatch(cg);
        }
        watched = wanted;
    };
    if let Err(e) = mamori_docker::follow(client, dir, on_change).await {
        eprintln!("mamori: following Docker events stopped: {e}");
    }
}

fn ptrace_loop(mut cap: PtraceCapture, cgroup: u64, mut batcher: Batcher) {
    // strace is slow enough that every call is handed on at once: a blocked read must not hold
    // a partial batch back
    while let Some(next) = cap.next_record() {
        match next {
            Ok(record) => {
                batcher.add(Captured { cgroup, record });
                batcher.send();
            }
            Err(e) => eprintln!("mamori: {e}"),
        }
    }
    let _ = cap.stop();
}
