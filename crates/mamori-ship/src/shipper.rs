//! The device's sender: ships committed spool records to the collector (or into NATS
//! JetStream, [`Transport::Nats`]) and deletes only what was acknowledged. It reconnects with
//! backoff after any failure; each session starts where the receiving side says its store ends,
//! so nothing is lost and nothing is stored twice. One loop serves both transports: a
//! transport only opens a session (where to resume, whether the first key is now enrolled), takes
//! batches and reports acknowledgements on a channel.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};
use tokio_rustls::TlsConnector;

use crate::nats::{JetStreamConfig, JetStreamError, JetStreamLink};
use crate::proto::{self, FrameType, Hello, ProtoError, Welcome};
use crate::spool::{Batch, Spool, SpoolCursor};
use crate::stats::ShipStats;

/// What carries the records.
#[derive(Clone)]
pub enum Transport {
    /// The collector's own intake: mutual TLS, with this client configuration (the device's
    /// certificate, the CA).
    Collector(Arc<rustls::ClientConfig>),
    /// NATS JetStream: records are published as `device` (one subject token).
    Nats {
        /// Server, stream, subjects, credentials (boxed: far larger than the TLS variant).
        config: Box<JetStreamConfig>,
        /// The device's name in subjects and message ids.
        device: String,
    },
}

/// Where and how to send.
#[derive(Clone)]
pub struct ShipperConfig {
    /// Where records go, for messages: the collector's `host:port` (which the TLS transport
    /// connects to) or the NATS URL.
    pub collector: String,
    /// The name the collector's certificate must carry (default: the host part of `collector`).
    pub server_name: String,
    /// The collector over TLS, or JetStream.
    pub transport: Transport,
    /// Records per frame at most.
    pub batch_records: u32,
    /// Bytes per frame, about.
    pub batch_bytes: usize,
    /// Frames sent ahead of their acknowledgement.
    pub window: usize,
    /// First wait before reconnecting; doubles up to `retry_max`.
    pub retry_min: Duration,
    /// Longest wait before reconnecting.
    pub retry_max: Duration,
    /// A session with no acknowledgement for this long while frames are in flight is dropped.
    pub ack_timeout: Duration,
}

impl ShipperConfig {
    /// Defaults for everything but where to send and the TLS configuration.
    pub fn new(collector: &str, tls: Arc<rustls::ClientConfig>) -> ShipperConfig {
        let host = collector
            .rsplit_once(':')
            .map_or(collector, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        ShipperConfig {
            collector: collector.to_string(),
            server_name: host.to_string(),
            transport: Transport::Collector(tls),
            batch_records: 4096,
            batch_bytes: 1 << 20,
            window: 8,
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(30),
        }
    }

    /// Defaults for shipping into JetStream as `device`. A publish ack already means stored, so
    /// the ack timeout only has to outlast one window of publishes.
    pub fn nats(config: JetStreamConfig, device: &str) -> ShipperConfig {
        ShipperConfig {
            collector: config.url.clone(),
            server_name: String::new(),
            transport: Transport::Nats {
                config: Box::new(config),
                device: device.to_string(),
            },
            batch_records: 4096,
            batch_bytes: 1 << 20,
            window: 4,
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the sender stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The collector refuses this device's chain (another chain is enrolled under its name).
    #[error("the collector refuses this device: {0}")]
    Refused(String),
    /// A configuration that cannot work (bad server name).
    #[error("{0}")]
    Config(String),
}

/// Sends until `stop` turns true; then, for up to `drain`, goes on until everything committed
/// is acknowledged.
pub async fn run(
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
    config: ShipperConfig,
    stats: Arc<ShipStats>,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) -> Result<(), ShipError> {
    let tls = match &config.transport {
        Transport::Collector(tls) => Some((
            TlsConnector::from(Arc::clone(tls)),
            ServerName::try_from(config.server_name.clone()).map_err(|e| {
                ShipError::Config(format!("server name `{}`: {e}", config.server_name))
            })?,
        )),
        Transport::Nats { .. } => None,
    };
    let mut backoff = config.retry_min;
    let mut drain_until: Option<tokio::time::Instant> = None;
    let mut last_error = String::new();
    loop {
        if *stop.borrow() && drain_until.is_none() {
            drain_until = Some(tokio::time::Instant::now() + drain);
        }
        if let Some(t) = drain_until {
            if tokio::time::Instant::now() >= t || all_acked(&spool) {
                return Ok(());
            }
        }
        let session = session(
            &spool,
            &wake,
            &config,
            &stats,
            tls.as_ref(),
            &mut stop,
            &mut drain_until,
            drain,
        );
        match session.await {
            Ok(()) => {
                backoff = config.retry_min;
                last_error.clear();
                continue;
            }
            Err(ProtoError::Refused(why)) => {
                stats.connected.store(0, Ordering::Relaxed);
                return Err(ShipError::Refused(why));
            }
            Err(e) => {
                stats.connected.store(0, Ordering::Relaxed);
                stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                let msg = e.to_string();
                if msg != last_error {
                    eprintln!(
                        "mamori ship: {}: {msg}; retrying (every ≤ {:?})",
                        config.collector, config.retry_max
                    );
                    last_error = msg;
                }
            }
        }
        if drain_until.is_some() {
            // stopping and the collector is unreachable: what is left stays in the spool
            let left = drain_until.map_or(Duration::ZERO, |t| {
                t.saturating_duration_since(tokio::time::Instant::now())
            });
            if left.is_zero() {
                return Ok(());
            }
        }
        let wait = tokio::time::sleep(backoff);
        tokio::select! {
            () = wait => {}
            _ = stop.changed() => {}
        }
        backoff = (backoff * 2).min(config.retry_max);
    }
}

fn all_acked(spool: &Mutex<Spool>) -> bool {
    let s = spool.lock().unwrap_or_else(PoisonError::into_inner);
    s.acked() >= s.committed()
}

/// An open session: where the receiving side's store ends, whether it now holds the first key,
/// where batches go and where their acknowledgements come from.
struct Opened {
    stored_through: u64,
    enrolled: bool,
    link: Link,
    acks: mpsc::UnboundedReceiver<Result<u64, ProtoError>>,
    _task: AbortOnDrop,
}

enum Link {
    Tls(tokio::io::WriteHalf<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Batches go to the task that publishes them (it owns the [`JetStreamLink`]).
    Nats(mpsc::Sender<Batch>),
}

impl Link {
    async fn send(&mut self, batch: Batch) -> Result<(), ProtoError> {
        match self {
            Link::Tls(wr) => {
                proto::write_frame(wr, FrameType::Records, &batch.bytes).await?;
                tokio::io::AsyncWriteExt::flush(wr).await?;
                Ok(())
            }
            Link::Nats(tx) => tx.send(batch).await.map_err(|_| ProtoError::Closed),
        }
    }
}

fn io_err(e: impl std::fmt::Display) -> ProtoError {
    ProtoError::Io(std::io::Error::other(e.to_string()))
}

/// One connection: open, then batches and acknowledgements until something fails.
/// `Ok` only when draining finished.
#[allow(clippy::too_many_arguments)]
async fn session(
    spool: &Arc<Mutex<Spool>>,
    wake: &Notify,
    config: &ShipperConfig,
    stats: &ShipStats,
    tls: Option<&(TlsConnector, ServerName<'static>)>,
    stop: &mut watch::Receiver<bool>,
    drain_until: &mut Option<tokio::time::Instant>,
    drain: Duration,
) -> Result<(), ProtoError> {
    let opened = match (&config.transport, tls) {
        (Transport::Nats { config: js, device }, _) => open_nats(spool, js, device, config).await?,
        (Transport::Collector(_), Some((connector, name))) => {
            open_tls(spool, config, connector, name.clone()).await?
        }
        (Transport::Collector(_), None) => return Err(io_err("no TLS connector")),
    };
    let Opened {
        stored_through,
        enrolled,
        mut link,
        acks: mut ack_rx,
        _task,
    } = opened;
    let mut cursor = {
        let mut s = spool.lock().unwrap_or_else(PoisonError::into_inner);
        if enrolled {
            s.enrolled().map_err(io_err)?;
        }
        if stored_through > s.committed() {
            eprintln!(
                "mamori ship: {} holds this chain up to {} but the spool has sealed only up to {}: the device's state went back in time",
                config.collector,
                stored_through,
                s.committed()
            );
        }
        s.ack(stored_through).map_err(io_err)?;
        stats.observe(&s);
        SpoolCursor::new(stored_through + 1)
    };
    stats.sessions.fetch_add(1, Ordering::Relaxed);
    stats.connected.store(1, Ordering::Relaxed);

    let mut in_flight: VecDeque<u64> = VecDeque::new();
    let mut last_ack = tokio::time::Instant::now();
    loop {
        // fill the window
        while in_flight.len() < config.window.max(1) {
            let batch = {
                let spool = Arc::clone(spool);
                let (max_r, max_b) = (config.batch_records, config.batch_bytes);
                let (c, b) = tokio::task::spawn_blocking(move || {
                    let b = cursor.read(&spool, max_r, max_b);
                    (cursor, b)
                })
                .await
                .map_err(|e| ProtoError::Io(std::io::Error::other(e.to_string())))?;
                cursor = c;
                b.map_err(|e| ProtoError::Io(std::io::Error::other(e.to_string())))?
            };
            stats
                .damaged_bytes
                .store(cursor.damaged_bytes, Ordering::Relaxed);
            if batch.records == 0 {
                break;
            }
            let (records, bytes, last_seq) = (
                u64::from(batch.records),
                batch.bytes.len() as u64,
                batch.last_seq,
            );
            link.send(batch).await?;
            stats.sent_records.fetch_add(records, Ordering::Relaxed);
            stats.sent_bytes.fetch_add(bytes, Ordering::Relaxed);
            if in_flight.is_empty() {
                last_ack = tokio::time::Instant::now();
            }
            in_flight.push_back(last_seq);
        }
        if let Some(t) = *drain_until {
            if in_flight.is_empty() && all_acked(spool) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= t {
                return Ok(());
            }
        }
        let ack_deadline = last_ack + config.ack_timeout;
        tokio::select! {
            ack = ack_rx.recv() => {
                let seq = match ack {
                    Some(r) => r?,
                    None => return Err(ProtoError::Closed),
                };
                last_ack = tokio::time::Instant::now();
                while in_flight.front().is_some_and(|s| *s <= seq) {
                    in_flight.pop_front();
                }
                let mut s = spool.lock().unwrap_or_else(PoisonError::into_inner);
                s.ack(seq).map_err(io_err)?;
                stats.observe(&s);
                stats
                    .last_ack_unix
                    .store(crate::stats::unix_now(), Ordering::Relaxed);
            }
            () = wake.notified(), if in_flight.len() < config.window.max(1) => {}
            () = tokio::time::sleep_until(ack_deadline), if !in_flight.is_empty() => {
                return Err(ProtoError::Io(std::io::Error::other(format!(
                    "no acknowledgement for {:?}", config.ack_timeout
                ))));
            }
            // with nothing in flight, look again now and then (a missed wake-up costs this much)
            () = tokio::time::sleep(Duration::from_millis(500)), if in_flight.is_empty() => {}
            _ = stop.changed(), if drain_until.is_none() => {
                // stopping: send what is committed, for up to `drain`
                *drain_until = Some(tokio::time::Instant::now() + drain);
            }
        }
    }
}

/// The collector's intake: hello, welcome; acknowledgements are read by their own task, so
/// sending never waits on the socket's read side.
async fn open_tls(
    spool: &Mutex<Spool>,
    config: &ShipperConfig,
    connector: &TlsConnector,
    server_name: ServerName<'static>,
) -> Result<Opened, ProtoError> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(5),
        TcpStream::connect(&config.collector),
    )
    .await
    .map_err(|_| ProtoError::Io(std::io::ErrorKind::TimedOut.into()))??;
    tcp.set_nodelay(true)?;
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(server_name, tcp))
        .await
        .map_err(|_| ProtoError::Io(std::io::ErrorKind::TimedOut.into()))??;
    let (mut rd, mut wr) = tokio::io::split(tls);

    let hello = {
        let s = spool.lock().unwrap_or_else(PoisonError::into_inner);
        Hello {
            version: proto::VERSION,
            fingerprint: hex::encode(s.fingerprint()),
            first_key: s.first_key().map(|k| hex::encode(k.as_bytes())),
            oldest: s.oldest(),
            committed: s.committed(),
            agent: format!("mamori {}", env!("CARGO_PKG_VERSION")),
        }
    };
    proto::write_json(&mut wr, FrameType::Hello, &hello).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        proto::expect_frame(&mut rd, &mut buf, FrameType::Welcome),
    )
    .await
    .map_err(|_| ProtoError::Io(std::io::ErrorKind::TimedOut.into()))??;
    let welcome: Welcome = proto::parse_json("welcome", &buf)?;

    let (ack_tx, acks) = mpsc::unbounded_channel::<Result<u64, ProtoError>>();
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        loop {
            let r = match proto::read_frame(&mut rd, &mut buf).await {
                Ok(FrameType::Ack) => proto::parse_ack(&buf),
                Ok(FrameType::Refused) => Err(ProtoError::Refused(
                    proto::parse_json::<proto::Refused>("refused", &buf)
                        .map(|r| r.reason)
                        .unwrap_or_default(),
                )),
                Ok(other) => Err(ProtoError::Unexpected {
                    expected: FrameType::Ack,
                    got: other,
                }),
                Err(e) => Err(e),
            };
            let end = r.is_err();
            if ack_tx.send(r).is_err() || end {
                return;
            }
        }
    });
    Ok(Opened {
        stored_through: welcome.stored_through,
        enrolled: welcome.enrolled,
        link: Link::Tls(wr),
        acks,
        _task: AbortOnDrop(reader),
    })
}

fn nats_err(e: JetStreamError) -> ProtoError {
    match e {
        // another chain owns this device name: retrying cannot help
        JetStreamError::KeyMismatch { .. } => ProtoError::Refused(e.to_string()),
        e => io_err(e),
    }
}

/// JetStream: connect, enroll the first key (or find the enrolled one when the spool already
/// forgot it), resume where the stream holds the chain without a hole. A task publishes each
/// batch and reports the highest seq JetStream stored contiguously; a batch stored only in part
/// ends the session after that ack, and the next session resumes from the stream.
async fn open_nats(
    spool: &Mutex<Spool>,
    js: &JetStreamConfig,
    device: &str,
    config: &ShipperConfig,
) -> Result<Opened, ProtoError> {
    let mut link = JetStreamLink::connect(js, device).await.map_err(nats_err)?;
    let (first_key, fingerprint) = {
        let s = spool.lock().unwrap_or_else(PoisonError::into_inner);
        (s.first_key().cloned(), s.fingerprint())
    };
    let enrolled = match &first_key {
        Some(k) => {
            link.enroll(k).await.map_err(nats_err)?;
            true
        }
        None => {
            link.attach(&fingerprint).await.map_err(nats_err)?;
            false
        }
    };
    let stored_through = link.resume_point().await.map_err(nats_err)?;
    let (tx, mut rx) = mpsc::channel::<Batch>(config.window.max(1));
    let (ack_tx, acks) = mpsc::unbounded_channel::<Result<u64, ProtoError>>();
    let task = tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            let r = match split_records(&batch.bytes) {
                Ok(records) => link.send(&records).await.map_err(nats_err),
                Err(e) => Err(e),
            };
            let done = match r {
                Ok(acked) if acked >= batch.last_seq => ack_tx.send(Ok(acked)).is_err(),
                Ok(acked) => {
                    let _ = ack_tx.send(Ok(acked));
                    let _ = ack_tx.send(Err(io_err(format!(
                        "subject {}: JetStream stored seqs {}..={acked} of {}..={}; resending the rest",
                        link.subject(),
                        batch.first_seq,
                        batch.first_seq,
                        batch.last_seq
                    ))));
                    true
                }
                Err(e) => {
                    let _ = ack_tx.send(Err(e));
                    true
                }
            };
            if done {
                return;
            }
        }
    });
    Ok(Opened {
        stored_through,
        enrolled,
        link: Link::Nats(tx),
        acks,
        _task: AbortOnDrop(task),
    })
}

/// A spool batch (records back to back) as `(seq, record bytes)`.
fn split_records(bytes: &[u8]) -> Result<Vec<(u64, &[u8])>, ProtoError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let (h, _, used) = mamori_seal::codec::decode(&bytes[at..])
            .map_err(|e| io_err(format!("spool batch: bytes at {at} are not a record: {e}")))?;
        out.push((h.seq, &bytes[at..at + used]));
        at += used;
    }
    Ok(out)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
