//! Sealed chains over NATS JetStream, for fleets whose collector store should be a message
//! system rather than files on one collector.
//!
//! Why JetStream and not an MQTT broker: an MQTT persistent session is a delivery queue per
//! subscriber — once delivered, a record is gone, a new collector cannot replay history, and a
//! QoS 1 PUBACK says "the broker took it", not "it is on disk, once". A JetStream stream is a
//! replayable, append-only store: a publish ack means stored (file storage), `Nats-Msg-Id`
//! de-duplicates a resend within the window, and any consumer can read from any sequence.
//!
//! Layout: one stream (default `MAMORI_CHAIN`) over `<prefix>.>`; each device publishes its
//! encoded records ([`mamori_seal::codec`], unchanged) on `<prefix>.<device>`. A second stream,
//! `<stream>_KEYS` over `<prefix>-keys.>`, holds each device's first key: the first message
//! on `<prefix>-keys.<device>` is the key, whatever is published there later. Both streams deny delete and purge, so a device's credentials cannot erase
//! history through the API. The first key lets anyone who reads it verify *and forge* the
//! chain: the server's permissions must let only the collector read `<prefix>-keys.>`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use mamori_seal::{codec, Key, KEY_LEN};

pub use crate::tls::TlsFiles;

/// How long the server remembers a `Nats-Msg-Id`: a shipper that restarts and resends what was
/// stored but not acknowledged within this window is de-duplicated by the server.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(120);

/// Publishes in flight at once: a batch is sent in windows of this many, each window's acks
/// awaited together (the client's in-flight limit is 5,000; holding more would block).
pub const PIPELINE_WINDOW: usize = 1024;

/// The durable consumer's ack wait: a delivered record not acknowledged within it comes again.
pub const CONSUMER_ACK_WAIT: Duration = Duration::from_secs(5);

/// Where and how to reach JetStream.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// Server URL(s), comma-separated (`nats://host:4222`, `tls://host:4222`).
    pub url: String,
    /// The chain stream's name.
    pub stream: String,
    /// Subject prefix: records go to `<prefix>.<device>`, first keys to `<prefix>-keys.<device>`.
    pub subject_prefix: String,
    /// For a TLS server that verifies clients: CA file, client certificate and key (PEM), the
    /// same layout as the collector's intake ([`TlsFiles::in_dir`]).
    pub tls: Option<TlsFiles>,
    /// A token, when the server wants one.
    pub token: Option<String>,
    /// User and password, when the server wants them.
    pub user_password: Option<(String, String)>,
    /// Timeout for connecting and for each API request and publish ack.
    pub timeout: Duration,
}

impl JetStreamConfig {
    /// Defaults for a server at `url`: stream `MAMORI_CHAIN`, prefix `mamori.chain`, no TLS.
    pub fn new(url: impl Into<String>) -> JetStreamConfig {
        JetStreamConfig {
            url: url.into(),
            stream: "MAMORI_CHAIN".into(),
            subject_prefix: "mamori.chain".into(),
            tls: None,
            token: None,
            user_password: None,
            timeout: Duration::from_secs(5),
        }
    }

    fn keys_stream(&self) -> String {
        format!("{}_KEYS", self.stream)
    }

    fn record_subject(&self, device: &str) -> String {
        format!("{}.{device}", self.subject_prefix)
    }

    fn key_subject(&self, device: &str) -> String {
        format!("{}-keys.{device}", self.subject_prefix)
    }
}

/// What went wrong, naming the server and, where there is one, the subject and sequence.
#[derive(Debug, thiserror::Error)]
pub enum JetStreamError {
    /// Could not connect.
    #[error("NATS server {server}: cannot connect: {reason}")]
    Connect {
        /// Server URL.
        server: String,
        /// Why.
        reason: String,
    },
    /// A stream or consumer could not be created, found or read.
    #[error("NATS server {server}: stream {stream}: {reason}")]
    Stream {
        /// Server URL.
        server: String,
        /// Stream name.
        stream: String,
        /// Why.
        reason: String,
    },
    /// A record was not stored (or its ack did not come).
    #[error("NATS server {server}: subject {subject}: record seq {seq}: {reason}")]
    Publish {
        /// Server URL.
        server: String,
        /// Subject published to.
        subject: String,
        /// Chain sequence number of the record.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The keys stream already holds a different first key for this device.
    #[error("NATS server {server}: subject {subject}: a different first key is already enrolled for device {device}")]
    KeyMismatch {
        /// Server URL.
        server: String,
        /// The keys subject.
        subject: String,
        /// Device name.
        device: String,
    },
    /// Bytes read back are not a sealed record (or not a key).
    #[error("NATS server {server}: subject {subject}: stream seq {stream_seq}: {reason}")]
    BadRecord {
        /// Server URL.
        server: String,
        /// Subject it came on.
        subject: String,
        /// Its stream sequence number.
        stream_seq: u64,
        /// Why.
        reason: String,
    },
    /// Caller error: a bad device name, a record whose header disagrees with its seq, sending
    /// before enrolling.
    #[error("{0}")]
    Usage(String),
}

type Result<T> = std::result::Result<T, JetStreamError>;

/// A device name must be one subject token.
fn check_device(device: &str) -> Result<()> {
    if device.is_empty()
        || device
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
    {
        return Err(JetStreamError::Usage(format!(
            "device name {device:?} is not a single NATS subject token (no '.', '*', '>', spaces)"
        )));
    }
    Ok(())
}

async fn connect_client(cfg: &JetStreamConfig, name: &str) -> Result<async_nats::Client> {
    let mut opts = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(cfg.timeout)
        .request_timeout(Some(cfg.timeout))
        // Reconnect quickly after a server restart, forever: the spool waits, nothing is lost.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64).saturating_mul(100).min(2_000))
        });
    if let Some(t) = &cfg.tls {
        opts = opts
            .require_tls(true)
            .add_root_certificates(t.ca.clone())
            .add_client_certificate(t.cert.clone(), t.key.clone());
    }
    if let Some(tok) = &cfg.token {
        opts = opts.token(tok.clone());
    }
    if let Some((u, p)) = &cfg.user_password {
        opts = opts.user_and_password(u.clone(), p.clone());
    }
    opts.connect(cfg.url.as_str())
        .await
        .map_err(|e| JetStreamError::Connect {
            server: cfg.url.clone(),
            reason: e.to_string(),
        })
}

fn context(cfg: &JetStreamConfig, client: async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(cfg.timeout)
        .ack_timeout(cfg.timeout)
        .build(client)
}

/// Gets the stream, creating it with `want` when it is missing; an existing stream must deny
/// delete and purge and cover `want`'s subjects (a device must not ship into an erasable store).
async fn ensure_stream(
    cfg: &JetStreamConfig,
    js: &jetstream::Context,
    want: stream::Config,
) -> Result<stream::Stream> {
    let err = |reason: String| JetStreamError::Stream {
        server: cfg.url.clone(),
        stream: want.name.clone(),
        reason,
    };
    let mut s = match js.get_stream(&want.name).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                jetstream::context::GetStreamErrorKind::JetStream(_)
            ) =>
        {
            // Not found (or another API error): try to create; a race with another device that
            // created it meanwhile is fine, get it again.
            match js.create_stream(want.clone()).await {
                Ok(s) => s,
                Err(ce) => js
                    .get_stream(&want.name)
                    .await
                    .map_err(|_| err(format!("cannot create: {ce} (lookup said: {e})")))?,
            }
        }
        Err(e) => return Err(err(format!("cannot look up: {e}"))),
    };
    let info = s
        .info()
        .await
        .map_err(|e| err(format!("cannot read info: {e}")))?;
    let have = &info.config;
    if !have.deny_delete || !have.deny_purge {
        return Err(err(
            "exists but allows delete or purge; refusing to ship into an erasable store".into(),
        ));
    }
    for subj in &want.subjects {
        if !have.subjects.contains(subj) {
            return Err(err(format!(
                "exists but does not cover subject {subj} (has {:?})",
                have.subjects
            )));
        }
    }
    Ok(s)
}

fn chain_stream_config(cfg: &JetStreamConfig) -> stream::Config {
    stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![format!("{}.>", cfg.subject_prefix)],
        storage: stream::StorageType::File,
        duplicate_window: DEDUPE_WINDOW,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

fn keys_stream_config(cfg: &JetStreamConfig) -> stream::Config {
    stream::Config {
        name: cfg.keys_stream(),
        subjects: vec![format!("{}-keys.>", cfg.subject_prefix)],
        storage: stream::StorageType::File,
        // No per-subject limit: with one message per subject a second publish would evict the
        // first key (nats-server 2.9 does not apply DiscardNew per subject). Instead the first
        // message on a subject is the key; enroll publishes with expected subject seq 0, and a
        // later message that bypasses that guard changes nothing.
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

/// The last (or, with `first`, the first) message on `subject`, or None when there is none.
async fn message_on_subject(
    cfg: &JetStreamConfig,
    s: &stream::Stream,
    subject: &str,
    first: bool,
) -> Result<Option<StreamMessage>> {
    let res = if first {
        s.get_first_raw_message_by_subject(subject, 1).await
    } else {
        s.get_last_raw_message_by_subject(subject).await
    };
    match res {
        Ok(m) => Ok(Some(m)),
        Err(e) => match e.kind() {
            stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
            stream::LastRawMessageErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::NO_MESSAGE_FOUND =>
            {
                Ok(None)
            }
            _ => Err(JetStreamError::Stream {
                server: cfg.url.clone(),
                stream: s.cached_info().config.name.clone(),
                reason: format!(
                    "cannot read the {} message on {subject}: {e}",
                    if first { "first" } else { "last" }
                ),
            }),
        },
    }
}

fn key_from_message(cfg: &JetStreamConfig, m: &StreamMessage) -> Result<Key> {
    let bytes: [u8; KEY_LEN] =
        m.payload
            .as_ref()
            .try_into()
            .map_err(|_| JetStreamError::BadRecord {
                server: cfg.url.clone(),
                subject: m.subject.to_string(),
                stream_seq: m.sequence,
                reason: format!(
                    "a first key is {KEY_LEN} bytes, this is {}",
                    m.payload.len()
                ),
            })?;
    Ok(Key::from_bytes(bytes))
}

/// The device side: publishes one device's sealed records into the chain stream.
pub struct JetStreamLink {
    cfg: JetStreamConfig,
    device: String,
    subject: String,
    js: jetstream::Context,
    chain: stream::Stream,
    keys: stream::Stream,
    /// First 16 hex characters of the enrolled first key's fingerprint (set by `enroll`).
    chain_id: Option<String>,
}

impl JetStreamLink {
    /// Connects and makes sure both streams exist with delete and purge denied.
    pub async fn connect(cfg: &JetStreamConfig, device: &str) -> Result<JetStreamLink> {
        check_device(device)?;
        let client = connect_client(cfg, &format!("mamori-ship {device}")).await?;
        let js = context(cfg, client);
        let chain = ensure_stream(cfg, &js, chain_stream_config(cfg)).await?;
        let keys = ensure_stream(cfg, &js, keys_stream_config(cfg)).await?;
        Ok(JetStreamLink {
            cfg: cfg.clone(),
            device: device.to_string(),
            subject: cfg.record_subject(device),
            js,
            chain,
            keys,
            chain_id: None,
        })
    }

    /// The subject this device's records go to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Publishes the chain's first key once, so the collector can verify; the same key again
    /// is fine, a different one is refused (a taken device must not start a fresh chain that
    /// hides the old one).
    pub async fn enroll(&mut self, first_key: &Key) -> Result<()> {
        let subject = self.cfg.key_subject(&self.device);
        let mismatch = || JetStreamError::KeyMismatch {
            server: self.cfg.url.clone(),
            subject: subject.clone(),
            device: self.device.clone(),
        };
        for _attempt in 0..2 {
            if let Some(m) = message_on_subject(&self.cfg, &self.keys, &subject, true).await? {
                if key_from_message(&self.cfg, &m)? != *first_key {
                    return Err(mismatch());
                }
                self.chain_id = Some(chain_id(first_key));
                return Ok(());
            }
            let publish = jetstream::message::PublishMessage::build()
                .payload(Bytes::copy_from_slice(first_key.as_bytes()))
                .expected_last_subject_sequence(0)
                .expected_stream(self.cfg.keys_stream());
            let res = match self.js.send_publish(subject.clone(), publish).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match res {
                Ok(_) => {
                    self.chain_id = Some(chain_id(first_key));
                    return Ok(());
                }
                // Someone enrolled between our read and our write: read again and compare.
                Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                    continue
                }
                Err(e) => {
                    return Err(JetStreamError::Publish {
                        server: self.cfg.url.clone(),
                        subject: subject.clone(),
                        seq: 0,
                        reason: format!("enrolling the first key: {e}"),
                    })
                }
            }
        }
        Err(mismatch())
    }

    /// For a spool that already erased its first key (it was enrolled before): finds the key
    /// enrolled for this device and checks it is the chain's (by `fingerprint`), so records get
    /// the same message ids as before.
    pub async fn attach(&mut self, fingerprint: &[u8; 32]) -> Result<()> {
        let subject = self.cfg.key_subject(&self.device);
        let Some(m) = message_on_subject(&self.cfg, &self.keys, &subject, true).await? else {
            return Err(JetStreamError::Usage(format!(
                "NATS server {}: subject {subject}: no first key enrolled for device {}, and the spool no longer holds it (it was enrolled elsewhere: another stream or the collector's TLS intake)",
                self.cfg.url, self.device
            )));
        };
        let key = key_from_message(&self.cfg, &m)?;
        if key.fingerprint() != *fingerprint {
            return Err(JetStreamError::KeyMismatch {
                server: self.cfg.url.clone(),
                subject,
                device: self.device.clone(),
            });
        }
        self.chain_id = Some(chain_id(&key));
        Ok(())
    }

    /// The chain sequence number up to which the stream holds every record of this device
    /// (0 if none): where a shipper that lost its ack state continues.
    ///
    /// Normally that is the seq of the last message on the device's subject. But a publish
    /// pipeline cut by a server crash can leave a hole (records written to the dead socket are
    /// lost, the ones still queued in the client go out after the reconnect), so the subject's
    /// message count is compared with the last seq, and on a mismatch the subject is scanned
    /// for the first missing seq.
    ///
    /// Resending from there fills the hole, and the de-duplication window drops the records
    /// already stored after it, so the stream ends with every record once; but those stored
    /// after the hole now sit *before* the ones that fill it. The collector's intake
    /// ([`crate::nats_intake`]) therefore orders by chain seq per device before verifying.
    pub async fn resume_point(&mut self) -> Result<u64> {
        let Some(m) = message_on_subject(&self.cfg, &self.chain, &self.subject, false).await?
        else {
            return Ok(0);
        };
        let (h, _, _) = codec::decode(&m.payload).map_err(|e| JetStreamError::BadRecord {
            server: self.cfg.url.clone(),
            subject: self.subject.clone(),
            stream_seq: m.sequence,
            reason: e.to_string(),
        })?;
        let count = self.subject_count().await?;
        if count == h.seq {
            return Ok(h.seq);
        }
        self.scan_contiguous(count).await
    }

    async fn subject_count(&self) -> Result<u64> {
        let err = |reason: String| JetStreamError::Stream {
            server: self.cfg.url.clone(),
            stream: self.cfg.stream.clone(),
            reason: format!("counting messages on {}: {reason}", self.subject),
        };
        let mut subjects = self
            .chain
            .info_with_subjects(&self.subject)
            .await
            .map_err(|e| err(e.to_string()))?;
        let mut count = 0u64;
        while let Some(item) = subjects.next().await {
            let (subj, n) = item.map_err(|e| err(e.to_string()))?;
            if subj == self.subject {
                count = n as u64;
            }
        }
        Ok(count)
    }

    /// Reads every record on the subject (at most `count`, each within the timeout) and
    /// returns the end of the run of seqs 1, 2, 3, ... present.
    async fn scan_contiguous(&self, count: u64) -> Result<u64> {
        let err = |reason: String| JetStreamError::Stream {
            server: self.cfg.url.clone(),
            stream: self.cfg.stream.clone(),
            reason: format!("scanning {} for a hole: {reason}", self.subject),
        };
        let consumer = self
            .chain
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.subject.clone(),
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| err(e.to_string()))?;
        let mut messages = consumer.messages().await.map_err(|e| err(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..count {
            let next = tokio::time::timeout(self.cfg.timeout, messages.next())
                .await
                .map_err(|_| err("timed out".into()))?;
            let Some(msg) = next else { break };
            let msg = msg.map_err(|e| err(e.to_string()))?;
            if let Ok((h, _, _)) = codec::decode(&msg.payload) {
                seen.insert(h.seq);
            }
        }
        let mut upto = 0u64;
        for s in seen {
            if s == upto + 1 {
                upto = s;
            } else if s > upto + 1 {
                break;
            }
        }
        Ok(upto)
    }

    /// Publishes whole encoded records `(seq, bytes)` in order, pipelined (a window is sent,
    /// then its acks awaited together), with `Nats-Msg-Id = <device>:<chain id>:<seq>` so a
    /// resend is de-duplicated by the server. Returns the highest seq acknowledged
    /// contiguously from the start of the batch (a duplicate ack counts: it was stored
    /// before); records after the first failure must be sent again. Fails when the first
    /// record of the batch is not acknowledged. `enroll` must have been called.
    pub async fn send<B: AsRef<[u8]>>(&mut self, records: &[(u64, B)]) -> Result<u64> {
        let chain_id = self.chain_id.clone().ok_or_else(|| {
            JetStreamError::Usage(format!(
                "device {}: enroll the chain's first key before sending",
                self.device
            ))
        })?;
        let mut acked: Option<u64> = None;
        for window in records.chunks(PIPELINE_WINDOW) {
            let mut pending = Vec::with_capacity(window.len());
            let mut send_error = None;
            for (seq, bytes) in window {
                let bytes = bytes.as_ref();
                match codec::decode(bytes) {
                    Ok((h, _, used)) if h.seq == *seq && used == bytes.len() => {}
                    Ok((h, _, used)) => {
                        return Err(JetStreamError::Usage(format!(
                        "device {}: record given as seq {seq} holds seq {} ({used} of {} bytes)",
                        self.device,
                        h.seq,
                        bytes.len()
                    )))
                    }
                    Err(e) => {
                        return Err(JetStreamError::Usage(format!(
                            "device {}: record seq {seq} is not a sealed record: {e}",
                            self.device
                        )))
                    }
                }
                let publish = jetstream::message::PublishMessage::build()
                    .payload(Bytes::copy_from_slice(bytes))
                    .message_id(format!("{}:{chain_id}:{seq}", self.device))
                    .expected_stream(self.cfg.stream.as_str());
                match self.js.send_publish(self.subject.clone(), publish).await {
                    Ok(fut) => pending.push((*seq, fut)),
                    Err(e) => {
                        send_error = Some((*seq, e.to_string()));
                        break;
                    }
                }
            }
            let results = futures_util::future::join_all(
                pending
                    .into_iter()
                    .map(|(seq, fut)| async move { (seq, fut.await) }),
            )
            .await;
            for (seq, res) in results {
                match res {
                    Ok(ack) if ack.stream == self.cfg.stream => acked = Some(seq),
                    Ok(ack) => {
                        return self.partial(
                            acked,
                            seq,
                            format!("stored in stream {}, not {}", ack.stream, self.cfg.stream),
                        )
                    }
                    Err(e) => return self.partial(acked, seq, e.to_string()),
                }
            }
            if let Some((seq, reason)) = send_error {
                return self.partial(acked, seq, reason);
            }
        }
        Ok(acked.unwrap_or(0))
    }

    fn partial(&self, acked: Option<u64>, seq: u64, reason: String) -> Result<u64> {
        match acked {
            Some(a) => Ok(a),
            None => Err(JetStreamError::Publish {
                server: self.cfg.url.clone(),
                subject: self.subject.clone(),
                seq,
                reason,
            }),
        }
    }
}

/// The chain's public name in message ids: the first 16 hex characters of the first key's
/// fingerprint.
pub fn chain_id(first_key: &Key) -> String {
    first_key.fingerprint()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One record as the collector received it.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The device, from the subject.
    pub device: String,
    /// The whole encoded record.
    pub bytes: Vec<u8>,
    /// Its position in the stream (acknowledge up to it once stored).
    pub stream_seq: u64,
}

/// The collector side: a durable pull consumer over every device's records.
pub struct JetStreamSource {
    cfg: JetStreamConfig,
    consumer: consumer::Consumer<consumer::pull::Config>,
    keys: stream::Stream,
    /// Delivered but not yet acknowledged, by stream seq (only the handle for acking is used).
    unacked: BTreeMap<u64, jetstream::Message>,
}

impl JetStreamSource {
    /// Opens (or creates) the durable consumer `durable_name` over `<prefix>.>`. Its position
    /// lives on the server: a restarted collector continues after what it acknowledged.
    pub async fn open(cfg: &JetStreamConfig, durable_name: &str) -> Result<JetStreamSource> {
        check_device(durable_name)?;
        let client = connect_client(cfg, &format!("mamori-collector {durable_name}")).await?;
        let js = context(cfg, client);
        let chain = ensure_stream(cfg, &js, chain_stream_config(cfg)).await?;
        let keys = ensure_stream(cfg, &js, keys_stream_config(cfg)).await?;
        let consumer = chain
            .get_or_create_consumer(
                durable_name,
                consumer::pull::Config {
                    durable_name: Some(durable_name.to_string()),
                    filter_subject: format!("{}.>", cfg.subject_prefix),
                    deliver_policy: consumer::DeliverPolicy::All,
                    // Acking a record acknowledges every one delivered before it.
                    ack_policy: consumer::AckPolicy::All,
                    // Short: what a server crash lost on its way to the collector comes again
                    // within this, well inside the intake's reorder wait
                    // (crate::nats_intake::ReorderLimits), so it fills the hole instead of
                    // arriving after it was given up as a gap.
                    ack_wait: CONSUMER_ACK_WAIT,
                    max_ack_pending: 200_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| JetStreamError::Stream {
                server: cfg.url.clone(),
                stream: cfg.stream.clone(),
                reason: format!("durable consumer {durable_name}: {e}"),
            })?;
        Ok(JetStreamSource {
            cfg: cfg.clone(),
            consumer,
            keys,
            unacked: BTreeMap::new(),
        })
    }

    /// Up to `max` records, waiting at most `wait` for them (fewer, or none, when the stream
    /// has no more). Not acknowledged until [`JetStreamSource::ack_through`].
    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>> {
        let err = |reason: String| JetStreamError::Stream {
            server: self.cfg.url.clone(),
            stream: self.cfg.stream.clone(),
            reason: format!("fetching: {reason}"),
        };
        let wait = wait.max(Duration::from_millis(10));
        let mut batch = self
            .consumer
            .batch()
            .max_messages(max.max(1))
            .expires(wait)
            .messages()
            .await
            .map_err(|e| err(e.to_string()))?;
        let prefix = format!("{}.", self.cfg.subject_prefix);
        let mut out = Vec::new();
        // The server ends the batch by `wait`; the extra second only guards a lost end marker.
        let deadline = tokio::time::Instant::now() + wait + Duration::from_secs(1);
        while out.len() < max {
            let next = match tokio::time::timeout_at(deadline, batch.next()).await {
                Ok(n) => n,
                Err(_) => break,
            };
            let Some(msg) = next else { break };
            let msg = msg.map_err(|e| err(e.to_string()))?;
            let stream_seq = msg.info().map_err(|e| err(e.to_string()))?.stream_sequence;
            let subject = msg.subject.as_str();
            let device = subject.strip_prefix(&prefix).unwrap_or(subject).to_string();
            out.push(Delivered {
                device,
                bytes: msg.payload.to_vec(),
                stream_seq,
            });
            self.unacked.insert(stream_seq, msg);
        }
        Ok(out)
    }

    /// Acknowledges every delivered record up to stream seq `stream_seq` (call once they are
    /// stored and verified): the last delivered one at or below it is acked, which (ack policy
    /// all) covers those before it; waits for the server to confirm. Nothing delivered at or
    /// below it: nothing to do.
    pub async fn ack_through(&mut self, stream_seq: u64) -> Result<()> {
        let Some((&at, msg)) = self.unacked.range(..=stream_seq).next_back() else {
            return Ok(());
        };
        msg.double_ack().await.map_err(|e| JetStreamError::Stream {
            server: self.cfg.url.clone(),
            stream: self.cfg.stream.clone(),
            reason: format!("acknowledging through stream seq {at}: {e}"),
        })?;
        self.unacked = self.unacked.split_off(&(at + 1));
        Ok(())
    }

    /// The first key `device` enrolled (the first message on its keys subject), if it did.
    pub async fn first_key(&self, device: &str) -> Result<Option<Key>> {
        check_device(device)?;
        let subject = self.cfg.key_subject(device);
        match message_on_subject(&self.cfg, &self.keys, &subject, true).await? {
            Some(m) => key_from_message(&self.cfg, &m).map(Some),
            None => Ok(None),
        }
    }
}
