//! The collector's JetStream intake: a durable pull consumer feeds every device's records into
//! the same verify/store path as a TLS session ([`Collector::ingest`]), and JetStream is
//! acknowledged only through what the store committed.
//!
//! Why a reorder buffer here, and not ordered publishing at the device: a nats-server that dies
//! mid pipelined window loses what was on the wire, while publishes still queued inside the
//! client go out after the reconnect; the device then resends the lost ones, so the stream can
//! hold 1-2000, 2137-2250, 2001-2136, ... (each seq once: `Nats-Msg-Id` de-duplicates). Preventing
//! that at the source would need every publish to name its predecessor's *stream* sequence
//! (`Nats-Expected-Last-Subject-Sequence`), which is only known once the previous ack is back:
//! one record per round trip, no pipelining. Instead each device's records are put back in chain
//! order here: a record ahead of the next expected seq is held (not acknowledged, so a collector
//! restart gets it again) until the missing ones arrive. Only when the hole outlives
//! [`ReorderLimits`] (records held or seconds waited) is it a real gap: what is held is then
//! released in order and the verifier reports the gap, as for a TLS session.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mamori_seal::codec;
use tokio::sync::watch;

use crate::collector::Collector;
use crate::nats::{Delivered, JetStreamConfig, JetStreamSource};

/// How long a hole in a device's chain may wait for the records that fill it.
#[derive(Debug, Clone, Copy)]
pub struct ReorderLimits {
    /// Records held ahead of a hole, per device, before the hole is taken as a gap. Keep it
    /// below the consumer's max ack pending (200,000): held records are not acknowledged.
    pub max_records: usize,
    /// Time a hole may stay open. Must cover a device noticing a lost publish ack (its
    /// JetStream timeout), reconnecting and resending, and a delivery lost on the way to the
    /// collector coming again ([`crate::nats::CONSUMER_ACK_WAIT`]).
    pub max_wait: Duration,
}

impl Default for ReorderLimits {
    fn default() -> Self {
        ReorderLimits {
            max_records: 100_000,
            max_wait: Duration::from_secs(30),
        }
    }
}

/// Records of one device held ahead of a hole, by (chain seq, stream seq).
#[derive(Default)]
struct Reorder {
    /// The next chain seq the collector expects.
    next: u64,
    held: BTreeMap<(u64, u64), Vec<u8>>,
    /// When the oldest hole opened (or last made progress).
    since: Option<Instant>,
}

impl Reorder {
    /// Moves held records that are now in order (or behind: the store judges those) to `out`.
    fn release(&mut self, out: &mut Vec<u8>) {
        while let Some(entry) = self.held.first_entry() {
            let seq = entry.key().0;
            if seq > self.next {
                break;
            }
            out.extend_from_slice(&entry.remove());
            if seq == self.next {
                self.next += 1;
            }
        }
    }

    /// Gives up on the hole: everything held goes out in chain order.
    fn flush(&mut self, out: &mut Vec<u8>) {
        for ((seq, _), bytes) in std::mem::take(&mut self.held) {
            out.extend_from_slice(&bytes);
            self.next = self.next.max(seq + 1);
        }
        self.since = None;
    }

    fn lowest_stream_seq(&self) -> Option<u64> {
        self.held.keys().map(|(_, s)| *s).min()
    }
}

/// The intake's state across batches.
struct Intake {
    collector: Arc<Collector>,
    limits: ReorderLimits,
    devices: HashMap<String, Reorder>,
}

impl Intake {
    /// Orders a delivered batch per device and stores what is in order; returns the stream seq
    /// through which everything is handled (below the oldest held record), if any.
    fn take(&mut self, batch: Vec<Delivered>, now: Instant) -> std::io::Result<Option<u64>> {
        let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let highest = batch.iter().map(|d| d.stream_seq).max();
        for d in batch {
            if !self.devices.contains_key(&d.device) {
                self.collector.recall_recent(&d.device)?;
                let (_, processed) = self.collector.position(&d.device)?;
                let stats = self.collector.device_stats(&d.device);
                stats.sessions.fetch_add(1, Ordering::Relaxed);
                stats.connected.store(1, Ordering::Relaxed);
                self.devices.insert(
                    d.device.clone(),
                    Reorder {
                        next: processed + 1,
                        ..Reorder::default()
                    },
                );
            }
            let Some(state) = self.devices.get_mut(&d.device) else {
                continue;
            };
            let buf = out.entry(d.device.clone()).or_default();
            match codec::decode(&d.bytes) {
                Ok((h, _, _)) if h.seq > state.next => {
                    if state.held.is_empty() {
                        state.since = Some(now);
                    }
                    state.held.insert((h.seq, d.stream_seq), d.bytes);
                }
                Ok((h, _, _)) => {
                    buf.extend_from_slice(&d.bytes);
                    if h.seq == state.next {
                        state.next += 1;
                        let before = state.held.len();
                        state.release(buf);
                        if state.held.len() < before {
                            state.since = (!state.held.is_empty()).then_some(now);
                        }
                    }
                }
                // not a record: the store notes it as damaged
                Err(_) => buf.extend_from_slice(&d.bytes),
            }
        }
        self.expire(now, &mut out);
        for (device, bytes) in out {
            if !bytes.is_empty() {
                self.collector.ingest(&device, &bytes)?;
            }
        }
        let floor = self
            .devices
            .values()
            .filter_map(Reorder::lowest_stream_seq)
            .min();
        Ok(match (floor, highest) {
            (Some(f), _) => Some(f.saturating_sub(1)),
            (None, h) => h,
        })
    }

    /// Holes older or larger than the limits become gaps.
    fn expire(&mut self, now: Instant, out: &mut BTreeMap<String, Vec<u8>>) {
        for (device, state) in &mut self.devices {
            let too_old = state
                .since
                .is_some_and(|t| now.duration_since(t) >= self.limits.max_wait);
            if !state.held.is_empty() && (too_old || state.held.len() > self.limits.max_records) {
                eprintln!(
                    "mamori collect: {device}: JetStream: seq {} never came ({} records held ahead of it); taking it as a gap",
                    state.next,
                    state.held.len()
                );
                state.flush(out.entry(device.clone()).or_default());
            }
        }
    }
}

/// Enrols every device of a batch not enrolled here yet, from JetStream's keys stream.
async fn enroll_new(
    collector: &Collector,
    source: &JetStreamSource,
    batch: &[Delivered],
) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for d in batch {
        if seen.contains(&d.device.as_str()) {
            continue;
        }
        seen.push(&d.device);
        let (enrolled, _) = collector.position(&d.device).map_err(|e| e.to_string())?;
        if enrolled {
            continue;
        }
        match source
            .first_key(&d.device)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(k) => collector.enroll(&d.device, &k)?,
            None => {
                return Err(format!(
                    "device {}: records at stream seq {} but no first key on its keys subject",
                    d.device, d.stream_seq
                ))
            }
        }
    }
    Ok(())
}

/// Consumes `cfg`'s chain stream with the durable consumer `durable` until `stop` turns true.
/// Errors (a server restart) are logged and retried with backoff; the consumer's position
/// lives on the server, so nothing acknowledged is read twice and nothing unacknowledged is lost.
pub async fn run(
    collector: Arc<Collector>,
    cfg: JetStreamConfig,
    durable: String,
    limits: ReorderLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut intake = Intake {
        collector: Arc::clone(&collector),
        limits,
        devices: HashMap::new(),
    };
    let mut source: Option<JetStreamSource> = None;
    let mut backoff = Duration::from_millis(200);
    let mut last_error = String::new();
    while !*stop.borrow() {
        let result = async {
            if source.is_none() {
                source = Some(
                    JetStreamSource::open(&cfg, &durable)
                        .await
                        .map_err(|e| e.to_string())?,
                );
                eprintln!(
                    "mamori collect: consuming {} (stream {}, durable consumer {durable})",
                    cfg.url, cfg.stream
                );
            }
            let Some(src) = source.as_mut() else {
                return Err("no source".to_string());
            };
            let batch = src
                .next_batch(4096, Duration::from_millis(500))
                .await
                .map_err(|e| e.to_string())?;
            enroll_new(&collector, src, &batch).await?;
            let through = intake
                .take(batch, Instant::now())
                .map_err(|e| e.to_string())?;
            if let Some(s) = through {
                src.ack_through(s).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }
        .await;
        match result {
            Ok(()) => {
                backoff = Duration::from_millis(200);
                last_error.clear();
            }
            Err(e) => {
                if e != last_error {
                    eprintln!("mamori collect: JetStream {}: {e}; retrying", cfg.url);
                    last_error = e;
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    for device in intake.devices.keys() {
        collector
            .device_stats(device)
            .connected
            .store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64) -> Vec<u8> {
        seq.to_be_bytes().to_vec()
    }

    #[test]
    fn release_puts_held_records_back_in_order() {
        let mut r = Reorder {
            next: 3,
            ..Reorder::default()
        };
        r.held.insert((5, 10), rec(5));
        r.held.insert((4, 11), rec(4));
        r.held.insert((2, 12), rec(2));
        let mut out = Vec::new();
        r.release(&mut out);
        // 2 is behind (the store judges it), 3 is still missing: 4 and 5 stay
        assert_eq!(out, rec(2));
        assert_eq!(r.lowest_stream_seq(), Some(10));
        r.next = 4;
        out.clear();
        r.release(&mut out);
        assert_eq!(out, [rec(4), rec(5)].concat());
        assert_eq!(r.next, 6);
        assert!(r.held.is_empty());
    }

    #[test]
    fn flush_gives_up_on_the_hole() {
        let mut r = Reorder {
            next: 3,
            ..Reorder::default()
        };
        r.held.insert((7, 1), rec(7));
        r.held.insert((6, 2), rec(6));
        let mut out = Vec::new();
        r.flush(&mut out);
        assert_eq!(out, [rec(6), rec(7)].concat());
        assert_eq!(r.next, 8);
    }
}
