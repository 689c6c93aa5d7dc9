//! The collector: accepts devices over mutually authenticated TLS, verifies each device's chain
//! record by record, stores what is authentic append-only, notes every gap, reordering, replay
//! and forgery by sequence number, and acknowledges only what is on disk.
//!
//! A device is who its certificate says ([`crate::tls::peer_name`]). A device's records are
//! handled one batch at a time under its lock; a reconnecting device takes over from a stale
//! connection of its own (the newest session wins).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mamori_seal::{codec, Key, Kind, Tag, Verifier};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_rustls::TlsAcceptor;

use crate::finding::{Finding, FindingKind};
use crate::proto::{self, FrameType, Hello, ProtoError, Refused, Welcome};
use crate::stats::kind_slot;
pub use crate::stats::KIND_NAMES;
use crate::store::{DeviceStore, StoreError, StoreOptions};

/// Collector settings.
#[derive(Clone)]
pub struct CollectorConfig {
    /// Where devices connect (TLS).
    pub listen: String,
    /// The store's root: one directory per device.
    pub store: PathBuf,
    /// Segment rotation and fsync.
    pub store_options: StoreOptions,
    /// The TLS server configuration (client certificates required); None for a collector fed
    /// only by JetStream ([`crate::nats_intake`]), which then has no [`Collector::serve`].
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// A connection with no frame for this long is closed.
    pub idle_timeout: Duration,
    /// Authentic tags remembered per device, to tell a harmless resend from a replay conflict.
    pub remember: usize,
}

/// One stored, verified record, for live readers.
#[derive(Debug, Clone)]
pub struct LiveRecord {
    /// The device.
    pub device: Arc<str>,
    /// Its position.
    pub seq: u64,
    /// Its kind.
    pub kind: Kind,
    /// Its payload.
    pub payload: Arc<[u8]>,
}

/// Per-device counters (for /metrics and /api/devices).
#[derive(Debug, Default)]
pub struct DeviceStats {
    /// Authentic records stored, by kind index (audit, alert, incident, notice, heartbeat, other).
    pub stored: [AtomicU64; 6],
    /// Bytes of records stored.
    pub stored_bytes: AtomicU64,
    /// Resent records already stored (dropped, harmless).
    pub duplicates: AtomicU64,
    /// Findings by kind name.
    pub findings: Mutex<BTreeMap<&'static str, u64>>,
    /// Last stored sequence number.
    pub last_seq: AtomicU64,
    /// Unix time (s) the last record arrived.
    pub last_record_unix: AtomicU64,
    /// Device clock of the last record (ns).
    pub last_record_time_ns: AtomicU64,
    /// 1 while connected.
    pub connected: AtomicU64,
    /// Sessions accepted.
    pub sessions: AtomicU64,
}

/// Collector-wide counters.
#[derive(Debug, Default)]
pub struct CollectorStats {
    /// TLS handshakes refused or failed (no certificate, unknown CA, expired, ...).
    pub handshake_failures: AtomicU64,
    /// Sessions refused after the handshake (bad name, another chain, protocol error).
    pub refused: AtomicU64,
    /// Protocol errors in a session.
    pub protocol_errors: AtomicU64,
}

struct DeviceChain {
    store: DeviceStore,
    verifier: Option<Verifier>,
    /// Recently stored (seq, tag), oldest first.
    recent: VecDeque<(u64, Tag)>,
    /// Everything through this seq has been handled (stored, or rejected and noted).
    processed: u64,
    /// The session allowed to send (a newer connection replaces an older one).
    session: u64,
}

/// The collector's shared state (also what the HTTP side reads).
pub struct Collector {
    config: CollectorConfig,
    devices: Mutex<HashMap<String, Arc<Mutex<DeviceChain>>>>,
    /// Per-device counters, kept after a device disconnects.
    pub device_stats: Mutex<BTreeMap<String, Arc<DeviceStats>>>,
    /// Collector-wide counters.
    pub stats: CollectorStats,
    live: broadcast::Sender<Arc<LiveRecord>>,
    sessions: AtomicU64,
}

impl Collector {
    /// A collector over `config.store` (existing devices are listed for the metrics).
    pub fn new(config: CollectorConfig) -> Result<Arc<Collector>, StoreError> {
        std::fs::create_dir_all(&config.store).map_err(|source| StoreError::Io {
            path: config.store.clone(),
            source,
        })?;
        let (live, _) = broadcast::channel(65_536);
        let c = Arc::new(Collector {
            config,
            devices: Mutex::new(HashMap::new()),
            device_stats: Mutex::new(BTreeMap::new()),
            stats: CollectorStats::default(),
            live,
            sessions: AtomicU64::new(0),
        });
        for name in crate::store::list_devices(&c.config.store)? {
            c.device_chain(&name)?;
        }
        Ok(c)
    }

    /// The store's root.
    pub fn store_root(&self) -> &Path {
        &self.config.store
    }

    /// Live records as they are stored (a lagging reader misses some and is told so).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveRecord>> {
        self.live.subscribe()
    }

    /// Counters of one device.
    pub fn device_stats(&self, device: &str) -> Arc<DeviceStats> {
        let mut m = self
            .device_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(m.entry(device.to_string()).or_default())
    }

    /// Opens (once) a device's chain: its store, and a verifier positioned after its head.
    fn device_chain(&self, device: &str) -> Result<Arc<Mutex<DeviceChain>>, StoreError> {
        let mut devices = self.devices.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = devices.get(device) {
            return Ok(Arc::clone(c));
        }
        let store = DeviceStore::open(&self.config.store, device, self.config.store_options)?;
        if let Some(r) = store.recovered() {
            eprintln!(
                "mamori collect: {device}: cut {} unacknowledged bytes ({} records) left by a stop mid-write; the device resends them",
                r.bytes, r.records
            );
        }
        let verifier = store.first_key().map(|k| verifier_after(k, &store));
        let processed = store
            .head()
            .map_or(store.first_seq().saturating_sub(1), |h| h.last_seq);
        let stats = self.device_stats(device);
        stats.last_seq.store(processed, Ordering::Relaxed);
        let chain = Arc::new(Mutex::new(DeviceChain {
            store,
            verifier,
            recent: VecDeque::new(),
            processed,
            session: 0,
        }));
        devices.insert(device.to_string(), Arc::clone(&chain));
        Ok(chain)
    }

    /// Accepts devices on `config.listen` until the task is dropped; the bound address is sent
    /// on `bound` once listening.
    pub async fn serve(
        self: Arc<Self>,
        bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    ) -> std::io::Result<()> {
        let Some(tls) = &self.config.tls else {
            return Err(std::io::Error::other(format!(
                "{}: no TLS configuration for the TLS intake",
                self.config.listen
            )));
        };
        let acceptor = TlsAcceptor::from(Arc::clone(tls));
        let listener = TcpListener::bind(&self.config.listen).await?;
        if let Some(tx) = bound {
            let _ = tx.send(listener.local_addr()?);
        }
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("mamori collect: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let me = Arc::clone(&self);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        me.stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("mamori collect: {peer}: TLS handshake refused: {e}");
                        return;
                    }
                    Err(_) => {
                        me.stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("mamori collect: {peer}: TLS handshake timed out");
                        return;
                    }
                };
                let device = match crate::tls::peer_name(tls.get_ref().1) {
                    Ok(d) => d,
                    Err(e) => {
                        me.stats.refused.fetch_add(1, Ordering::Relaxed);
                        eprintln!("mamori collect: {peer}: no usable device name: {e}");
                        return;
                    }
                };
                if let Err(e) = me.session(tls, &device).await {
                    match e {
                        ProtoError::Closed => {}
                        e => {
                            me.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("mamori collect: {device} ({peer}): {e}");
                        }
                    }
                }
            });
        }
    }

    /// One device's session: hello, welcome, then batches and acknowledgements.
    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        self: &Arc<Self>,
        stream: S,
        device: &str,
    ) -> Result<(), ProtoError> {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut buf = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            proto::expect_frame(&mut rd, &mut buf, FrameType::Hello),
        )
        .await
        .map_err(|_| ProtoError::Io(std::io::ErrorKind::TimedOut.into()))??;
        let hello: Hello = proto::parse_json("hello", &buf)?;
        let session = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let welcome = match self.admit(device, &hello, session) {
            Ok(w) => w,
            Err(reason) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                eprintln!("mamori collect: {device}: refused: {reason}");
                proto::write_json(&mut wr, FrameType::Refused, &Refused { reason }).await?;
                return Ok(());
            }
        };
        let stats = self.device_stats(device);
        stats.sessions.fetch_add(1, Ordering::Relaxed);
        stats.connected.store(1, Ordering::Relaxed);
        proto::write_json(&mut wr, FrameType::Welcome, &welcome).await?;
        let chain = self
            .device_chain(device)
            .map_err(|e| ProtoError::Io(std::io::Error::other(e.to_string())))?;
        let result = async {
            loop {
                let ty = match tokio::time::timeout(
                    self.config.idle_timeout,
                    proto::read_frame(&mut rd, &mut buf),
                )
                .await
                {
                    Ok(r) => r?,
                    Err(_) => return Err(ProtoError::Io(std::io::ErrorKind::TimedOut.into())),
                };
                if ty != FrameType::Records {
                    return Err(ProtoError::Unexpected {
                        expected: FrameType::Records,
                        got: ty,
                    });
                }
                let batch = std::mem::take(&mut buf);
                let me = Arc::clone(self);
                let chain = Arc::clone(&chain);
                let device = device.to_string();
                let (batch, acked) = tokio::task::spawn_blocking(move || {
                    let r = me.take_batch(&chain, &device, session, &batch);
                    (batch, r)
                })
                .await
                .map_err(|e| ProtoError::Io(std::io::Error::other(e.to_string())))?;
                buf = batch;
                let acked = acked?;
                proto::write_frame(&mut wr, FrameType::Ack, &proto::ack_body(acked)).await?;
                tokio::io::AsyncWriteExt::flush(&mut wr).await?;
            }
        }
        .await;
        // only the newest session says whether the device is connected
        let current = chain.lock().unwrap_or_else(PoisonError::into_inner).session == session;
        if current {
            stats.connected.store(0, Ordering::Relaxed);
        }
        result
    }

    /// Checks a hello against what the store holds; enrols a new chain. The welcome, or why not.
    fn admit(&self, device: &str, hello: &Hello, session: u64) -> Result<Welcome, String> {
        if hello.version != proto::VERSION {
            return Err(format!(
                "protocol version {} (this collector speaks {})",
                hello.version,
                proto::VERSION
            ));
        }
        let chain = self.device_chain(device).map_err(|e| e.to_string())?;
        let mut c = chain.lock().unwrap_or_else(PoisonError::into_inner);
        match c.store.first_key() {
            Some(k) => {
                let have = hex::encode(k.fingerprint());
                if have != hello.fingerprint {
                    return Err(format!(
                        "{device} already has a chain (first key {}…) and presents another ({}…): a re-imaged device's old chain must be moved out of the store before it can enrol again",
                        &have[..16],
                        hello.fingerprint.get(..16).unwrap_or(&hello.fingerprint)
                    ));
                }
            }
            None => {
                let Some(hex_key) = &hello.first_key else {
                    return Err(format!(
                        "{device} is not enrolled here and did not send its chain's first key"
                    ));
                };
                let mut k = [0u8; 32];
                hex::decode_to_slice(hex_key, &mut k)
                    .map_err(|e| format!("first key is not 32 bytes of hex: {e}"))?;
                let key = Key::from_bytes(k);
                if hex::encode(key.fingerprint()) != hello.fingerprint {
                    return Err("the first key does not match the fingerprint sent with it".into());
                }
                enroll_chain(&mut c, device, key)?;
            }
        }
        c.session = session;
        Ok(Welcome {
            device: device.to_string(),
            stored_through: c.processed,
            enrolled: true,
        })
    }

    /// Verifies and stores one batch; the sequence number to acknowledge.
    fn take_batch(
        &self,
        chain: &Mutex<DeviceChain>,
        device: &str,
        session: u64,
        batch: &[u8],
    ) -> Result<u64, ProtoError> {
        let mut guard = chain.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.session != session {
            return Err(ProtoError::Io(std::io::Error::other(
                "a newer connection from this device took over",
            )));
        }
        self.ingest_locked(&mut guard, device, batch)
            .map_err(ProtoError::Io)
    }

    /// Verifies and stores encoded records (back to back) of `device` that came some other way
    /// than a TLS session (JetStream): the same checks, store and findings. Returns the seq
    /// through which the device's chain is handled, once it is committed.
    pub fn ingest(&self, device: &str, records: &[u8]) -> std::io::Result<u64> {
        let chain = self
            .device_chain(device)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut guard = chain.lock().unwrap_or_else(PoisonError::into_inner);
        self.ingest_locked(&mut guard, device, records)
    }

    /// Whether `device` has a chain here, and the seq through which it is handled.
    pub fn position(&self, device: &str) -> std::io::Result<(bool, u64)> {
        let chain = self
            .device_chain(device)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let c = chain.lock().unwrap_or_else(PoisonError::into_inner);
        Ok((c.verifier.is_some(), c.processed))
    }

    /// Remembers the tags of the newest stored records (the last two segments, at most
    /// `remember`), once: JetStream redelivers what was stored but not yet acknowledged when the
    /// collector stopped, and that must count as a duplicate, not as a replay. (A TLS device
    /// resumes after the store's head instead, so the TLS intake does not need it.)
    pub fn recall_recent(&self, device: &str) -> std::io::Result<()> {
        let chain = self
            .device_chain(device)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut c = chain.lock().unwrap_or_else(PoisonError::into_inner);
        if !c.recent.is_empty() {
            return Ok(());
        }
        let segments = crate::store::list_segments(c.store.dir())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let newest = segments[segments.len().saturating_sub(2)..]
            .iter()
            .map(|(_, p)| p.clone())
            .collect();
        let limit = self.config.remember.max(1);
        for r in crate::store::RecordReader::files(newest) {
            // a damaged tail is for `mamori verify` to report; what was read is enough here
            let Ok(p) = r else { break };
            if p.header.seq > c.processed {
                break;
            }
            if c.recent.len() >= limit {
                c.recent.pop_front();
            }
            c.recent.push_back((p.header.seq, p.header.tag));
        }
        Ok(())
    }

    /// Enrols `device`'s chain from its first key (from JetStream's keys stream); the same key
    /// again is fine, another one is refused, as in a TLS hello.
    pub fn enroll(&self, device: &str, key: &Key) -> Result<(), String> {
        let chain = self.device_chain(device).map_err(|e| e.to_string())?;
        let mut c = chain.lock().unwrap_or_else(PoisonError::into_inner);
        match c.store.first_key() {
            Some(k) if k.fingerprint() == key.fingerprint() => Ok(()),
            Some(k) => Err(format!(
                "{device} already has a chain (first key {}…) and JetStream holds another ({}…)",
                &hex::encode(k.fingerprint())[..16],
                &hex::encode(key.fingerprint())[..16]
            )),
            None => enroll_chain(&mut c, device, key.clone()),
        }
    }

    /// The shared verify/store path of [`Collector::take_batch`] and [`Collector::ingest`].
    fn ingest_locked(
        &self,
        c: &mut DeviceChain,
        device: &str,
        batch: &[u8],
    ) -> std::io::Result<u64> {
        let stats = self.device_stats(device);
        let store_err = |e: StoreError| std::io::Error::other(e.to_string());
        let device_arc: Arc<str> = Arc::from(device);
        let mut at = 0usize;
        while at < batch.len() {
            let (h, payload, used) = match codec::decode(&batch[at..]) {
                Ok(x) => x,
                Err(e) => {
                    let f = Finding::new(
                        None,
                        FindingKind::Damaged {
                            bytes: (batch.len() - at) as u64,
                        },
                        format!("a batch from the device held bytes that are not a record: {e}"),
                    );
                    self.note(c, &stats, &f)?;
                    break;
                }
            };
            at += used;
            if h.seq <= c.processed {
                // a resend after a lost acknowledgement, or a replay
                match c.recent.iter().rev().find(|(s, _)| *s == h.seq) {
                    Some((_, t)) if *t == h.tag => {
                        stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {
                        let f = Finding::new(
                            Some(h.seq),
                            FindingKind::ReplayConflict,
                            "a second, different record for a position already stored",
                        );
                        self.note(c, &stats, &f)?;
                        c.store.reject(&h, payload).map_err(store_err)?;
                    }
                    None => {
                        let f = Finding::new(
                            Some(h.seq),
                            FindingKind::Behind {
                                expected: c.processed + 1,
                            },
                            "a record for a position already handled arrived again with nothing to match it: a replay, or a record sent out of order",
                        );
                        self.note(c, &stats, &f)?;
                        c.store.reject(&h, payload).map_err(store_err)?;
                    }
                }
                continue;
            }
            let Some(verifier) = c.verifier.as_mut() else {
                return Err(std::io::Error::other(format!(
                    "{device}: record seq {}: device not enrolled",
                    h.seq
                )));
            };
            let checked = verifier.check(&h, payload);
            // Only as far as the chain moved: a tampered record claiming a far position must
            // not make every genuine record after it look like a replay (nor be acknowledged).
            let reached = verifier.next_seq() - 1;
            for f in Finding::from_checked(&h, &checked) {
                self.note(c, &stats, &f)?;
            }
            c.processed = c.processed.max(reached);
            // remembered whether stored or rejected, so the device's resend is a duplicate
            if c.recent.len() >= self.config.remember.max(1) {
                c.recent.pop_front();
            }
            c.recent.push_back((h.seq, h.tag));
            if checked.authentic() {
                c.store.append(&h, payload).map_err(store_err)?;
                stats.stored[kind_slot(h.kind)].fetch_add(1, Ordering::Relaxed);
                stats.stored_bytes.fetch_add(
                    (codec::HEADER_LEN + payload.len()) as u64,
                    Ordering::Relaxed,
                );
                stats
                    .last_record_time_ns
                    .store(h.time_ns.max(0) as u64, Ordering::Relaxed);
                if self.live.receiver_count() > 0 {
                    let _ = self.live.send(Arc::new(LiveRecord {
                        device: Arc::clone(&device_arc),
                        seq: h.seq,
                        kind: h.kind,
                        payload: Arc::from(payload),
                    }));
                }
            } else {
                c.store.reject(&h, payload).map_err(store_err)?;
            }
        }
        c.store.commit().map_err(store_err)?;
        stats.last_seq.store(c.processed, Ordering::Relaxed);
        stats
            .last_record_unix
            .store(crate::stats::unix_now(), Ordering::Relaxed);
        Ok(c.processed)
    }

    fn note(&self, c: &mut DeviceChain, stats: &DeviceStats, f: &Finding) -> std::io::Result<()> {
        eprintln!("mamori collect: {}: {f}", c.store.device());
        *stats
            .findings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(f.kind.name())
            .or_default() += 1;
        c.store
            .note(f)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Stores a new chain's first key and starts verifying from it.
fn enroll_chain(c: &mut DeviceChain, device: &str, key: Key) -> Result<(), String> {
    c.store.enroll(&key).map_err(|e| e.to_string())?;
    eprintln!(
        "mamori collect: {device}: enrolled chain {}…",
        &hex::encode(key.fingerprint())[..16]
    );
    c.verifier = Some(Verifier::new(key));
    Ok(())
}

/// A verifier positioned after what `store` holds.
fn verifier_after(first_key: &Key, store: &DeviceStore) -> Verifier {
    match store.head() {
        Some(h) => Verifier::at(first_key, h.last_seq + 1, Some(h.last_tag)),
        None => Verifier::at(
            first_key,
            store.first_seq(),
            (store.first_seq() == mamori_seal::FIRST_SEQ).then_some(mamori_seal::ANCHOR),
        ),
    }
}
