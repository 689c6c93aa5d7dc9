//! Loads and runs the eBPF probe: CO-RE object from mamori.bpf.c, attached to the raw syscall
//! tracepoints, records read from a BPF ring buffer on a dedicated thread.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle, RingBufferBuilder};

use crate::raw::RawEvent;
use crate::syscalls_table::{spec_words, table};

mod skel {
    #![allow(missing_docs, clippy::all, clippy::pedantic, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/mamori.skel.rs"));
}
use skel::MamoriSkelBuilder;

/// Receives the probe's records on the capture thread.
pub trait RecordSink: Send + 'static {
    /// One record, in ring-buffer order.
    fn record(&mut self, raw: &RawEvent<'_>);
    /// Called after every poll of the ring buffer (at least every 50 ms), so batches can be
    /// handed on even when traffic is light.
    fn polled(&mut self) {}
}

impl<F: FnMut(&RawEvent<'_>) + Send + 'static> RecordSink for F {
    fn record(&mut self, raw: &RawEvent<'_>) {
        self(raw)
    }
}

/// What the probe records.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Only tasks whose cgroup was added with [`Probe::watch`]; otherwise every task on the host
    /// but mamori itself.
    pub only_watched: bool,
    /// Bytes of each written buffer to keep (at most 256): what `contains` rules can see.
    pub write_bytes: u32,
    /// Report the first data each newly accepted connection receives (the request signal).
    pub request_data: bool,
    /// Attribute tasks by their cgroup-v1 memory controller instead of the cgroup-v2 id (hosts
    /// without a unified hierarchy).
    pub cgroup_v1: bool,
    /// Ring-buffer size in bytes (a power of two, at least one page).
    pub ring_bytes: u32,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            only_watched: true,
            write_bytes: 128,
            request_data: true,
            cgroup_v1: false,
            ring_bytes: 16 << 20,
        }
    }
}

/// Why the probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Loading, verifying or attaching failed.
    #[error(
        "the eBPF probe could not be {stage}: {message}\n  it needs root (CAP_BPF and CAP_PERFMON) \
         and a kernel >= 5.8 with BTF (/sys/kernel/btf/vmlinux); without them use the ptrace \
         backend (--backend ptrace), which is much slower"
    )]
    Load {
        /// open, load, attach, …
        stage: &'static str,
        /// libbpf's message.
        message: String,
    },
    /// A map update failed while running.
    #[error("updating the probe's {map} map failed: {message}")]
    Map {
        /// Which map.
        map: &'static str,
        /// libbpf's message.
        message: String,
    },
    /// The capture thread ended unexpectedly.
    #[error("the capture thread stopped: {0}")]
    Thread(String),
}

/// Records written and lost by the probe since it started, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeCounters {
    /// Records written to the ring buffer.
    pub written: u64,
    /// Records dropped because the ring buffer was full (user space fell behind).
    pub dropped: u64,
    /// Dropped records per CPU, indexed by CPU number.
    pub dropped_per_cpu: Vec<u64>,
    /// Records user space could not decode (they are lost like dropped ones).
    pub undecodable: u64,
}

/// A running probe. Dropping it detaches the probe and stops the thread.
pub struct Probe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), ProbeError>>>,
    watched: WatchHandle,
    counters: MapHandle,
    undecodable: Arc<AtomicU64>,
}

/// Adds and removes watched cgroups from any thread (the Docker event follower).
#[derive(Clone)]
pub struct WatchHandle(Arc<MapHandle>);

impl WatchHandle {
    /// Records tasks of this cgroup from now on.
    pub fn watch(&self, cgroup: u64) -> Result<(), ProbeError> {
        self.0
            .update(&cgroup.to_ne_bytes(), &[1u8], MapFlags::ANY)
            .map_err(|e| ProbeError::Map {
                map: "watched",
                message: e.to_string(),
            })
    }

    /// Stops recording tasks of this cgroup.
    pub fn unwatch(&self, cgroup: u64) {
        // absent already: nothing to do
        let _ = self.0.delete(&cgroup.to_ne_bytes());
    }
}

fn load_err(stage: &'static str) -> impl Fn(libbpf_rs::Error) -> ProbeError {
    move |e| ProbeError::Load {
        stage,
        message: e.to_string(),
    }
}

struct Maps {
    watched: MapHandle,
    counters: MapHandle,
}

impl Probe {
    /// Loads the probe and starts reading records on a new thread; `sink` receives them on that
    /// thread for every record, in ring-buffer order. Returns once the probe is attached.
    pub fn start<S: RecordSink>(config: ProbeConfig, sink: S) -> Result<Probe, ProbeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Maps, ProbeError>>();
        let thread_stop = Arc::clone(&stop);
        let undecodable = Arc::new(AtomicU64::new(0));
        let thread_undecodable = Arc::clone(&undecodable);
        let thread = std::thread::Builder::new()
            .name("mamori-probe".into())
            .spawn(move || {
                let fail = |e: ProbeError| {
                    let message = e.to_string();
                    let _ = ready_tx.send(Err(e));
                    ProbeError::Thread(message)
                };
                let mut storage = MaybeUninit::uninit();
                let mut open = match MamoriSkelBuilder::default().open(&mut storage) {
                    Ok(o) => o,
                    Err(e) => return Err(fail(load_err("opened")(e))),
                };
                if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
                    rodata.self_tgid = std::process::id();
                    rodata.filter_cgroups = config.only_watched;
                    rodata.use_v1_memory_cgroup = config.cgroup_v1;
                    rodata.write_bytes = config.write_bytes.min(256);
                    rodata.read_requests = config.request_data;
                }
                if let Err(e) = open.maps.events.set_max_entries(config.ring_bytes) {
                    return Err(fail(load_err("sized")(e)));
                }
                let mut skel = match open.load() {
                    Ok(s) => s,
                    Err(e) => return Err(fail(load_err("loaded (verifier)")(e))),
                };
                for (nr, word) in spec_words(&table()).into_iter().enumerate() {
                    if word == 0 {
                        continue;
                    }
                    let key = (nr as u32).to_ne_bytes();
                    if let Err(e) = skel
                        .maps
                        .specs
                        .update(&key, &word.to_ne_bytes(), MapFlags::ANY)
                    {
                        return Err(fail(load_err("configured")(e)));
                    }
                }
                let maps = match (
                    MapHandle::try_from(&skel.maps.watched),
                    MapHandle::try_from(&skel.maps.counters),
                ) {
                    (Ok(watched), Ok(counters)) => Maps { watched, counters },
                    (Err(e), _) | (_, Err(e)) => return Err(fail(load_err("shared")(e))),
                };
                if let Err(e) = skel.attach() {
                    return Err(fail(load_err("attached")(e)));
                }
                // the ring callback and the poll loop both use the sink, on this thread only
                let sink = Rc::new(RefCell::new(sink));
                let ring_sink = Rc::clone(&sink);
                let ring_undecodable = Arc::clone(&thread_undecodable);
                let mut builder = RingBufferBuilder::new();
                let added = builder.add(&skel.maps.events, move |bytes: &[u8]| {
                    match RawEvent::decode(bytes) {
                        Ok(raw) => ring_sink.borrow_mut().record(&raw),
                        // a probe/loader mismatch: counted, so it shows in the metrics
                        Err(_) => {
                            ring_undecodable.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    0
                });
                if let Err(e) = added {
                    return Err(fail(load_err("read")(e)));
                }
                let ring = match builder.build() {
                    Ok(r) => r,
                    Err(e) => return Err(fail(load_err("read")(e))),
                };
                let _ = ready_tx.send(Ok(maps));
                while !thread_stop.load(Ordering::Relaxed) {
                    if let Err(e) = ring.poll(Duration::from_millis(50)) {
                        // a signal interrupting epoll is not an error
                        if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                            return Err(ProbeError::Thread(e.to_string()));
                        }
                    }
                    // The probe writes most records without a wakeup (see submit() in the BPF
                    // program), so poll() returns only on a full-ish ring or the timeout: read
                    // whatever is there either way.
                    if let Err(e) = ring.consume() {
                        if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                            return Err(ProbeError::Thread(e.to_string()));
                        }
                    }
                    sink.borrow_mut().polled();
                }
                // drain what is left so nothing already captured is lost
                let _ = ring.consume();
                sink.borrow_mut().polled();
                Ok(())
            })
            .map_err(|e| ProbeError::Thread(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(maps)) => Ok(Probe {
                stop,
                thread: Some(thread),
                watched: WatchHandle(Arc::new(maps.watched)),
                counters: maps.counters,
                undecodable,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(match thread.join() {
                Ok(Err(e)) => e,
                _ => ProbeError::Thread("the capture thread panicked".into()),
            }),
        }
    }

    /// Records tasks of this cgroup from now on.
    pub fn watch(&self, cgroup: u64) -> Result<(), ProbeError> {
        self.watched.watch(cgroup)
    }

    /// Stops recording tasks of this cgroup.
    pub fn unwatch(&self, cgroup: u64) {
        self.watched.unwatch(cgroup)
    }

    /// A handle for changing the watched cgroups from another thread.
    pub fn watch_handle(&self) -> WatchHandle {
        self.watched.clone()
    }

    /// Records written and dropped so far.
    pub fn counters(&self) -> ProbeCounters {
        let per_cpu = |key: u32| -> Vec<u64> {
            match self
                .counters
                .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)
            {
                Ok(Some(values)) => values
                    .iter()
                    .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                    .map(u64::from_ne_bytes)
                    .collect(),
                _ => Vec::new(),
            }
        };
        let written = per_cpu(0);
        let dropped = per_cpu(1);
        ProbeCounters {
            written: written.iter().sum(),
            dropped: dropped.iter().sum(),
            dropped_per_cpu: dropped,
            undecodable: self.undecodable.load(Ordering::Relaxed),
        }
    }

    /// Detaches the probe, reads what is left in the ring buffer, and waits for the thread.
    pub fn stop(mut self) -> Result<(), ProbeError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ProbeError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ProbeError::Thread("the capture thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
