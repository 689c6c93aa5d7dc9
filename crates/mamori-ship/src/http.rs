//! The collector's operator endpoint (plain HTTP; bind it to loopback or a management network):
//!
//! - `/metrics`: Prometheus text — per device records stored by kind, last sequence number,
//!   seconds since the last record, findings by kind, duplicates, connection state; handshake
//!   failures and refusals;
//! - `/healthz`;
//! - `/api/devices`: the devices and their chain state, JSON;
//! - `/api/devices/NAME/findings`: the device's `findings.jsonl`;
//! - `/api/devices/NAME/records?kind=audit&follow=1&since=SEQ`: the verified payloads, one per
//!   line, from the store and then live as they are stored — what `mamori trace --log URL`
//!   reads (`follow=0`, the default, ends at the current head).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::stream;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mamori_seal::Kind;
use tokio::sync::{broadcast, mpsc};

use crate::collector::{Collector, DeviceStats, KIND_NAMES};
use crate::store::{valid_device, RecordReader};

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, ctype: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, ctype)
        .body(Full::new(body.into()).boxed())
        .expect("static response parts")
}

/// Binds `listen` and serves until the task is dropped; the bound address.
pub async fn serve(
    listen: &str,
    collector: Arc<Collector>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let collector = Arc::clone(&collector);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let c = Arc::clone(&collector);
                    async move { Ok::<_, Infallible>(route(&c, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

async fn route(c: &Arc<Collector>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match path.as_str() {
        "/metrics" => full(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics_text(c),
        ),
        "/healthz" => full(StatusCode::OK, "text/plain", "ok\n"),
        "/api/devices" => full(StatusCode::OK, "application/json", devices_json(c)),
        _ => {
            let Some(rest) = path.strip_prefix("/api/devices/") else {
                return full(StatusCode::NOT_FOUND, "text/plain", "not found\n");
            };
            let (device, what) = rest.split_once('/').unwrap_or((rest, ""));
            if !valid_device(device) || !c.store_root().join(device).is_dir() {
                return full(StatusCode::NOT_FOUND, "text/plain", "no such device\n");
            }
            match what {
                "findings" => {
                    let p = c.store_root().join(device).join("findings.jsonl");
                    let body = std::fs::read(&p).unwrap_or_default();
                    full(StatusCode::OK, "application/x-ndjson", body)
                }
                "records" => records(c, device, &query),
                _ => full(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
            }
        }
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn kind_wanted(filter: &str, kind: Kind) -> bool {
    filter == "all" || filter.split(',').any(|f| f == kind.name())
}

/// Streams the verified payloads of one device: the store up to its head, then live.
fn records(c: &Arc<Collector>, device: &str, query: &str) -> Response<Body> {
    let kind = query_param(query, "kind").unwrap_or("audit").to_string();
    let follow = matches!(query_param(query, "follow"), Some("1" | "true"));
    let since: u64 = match query_param(query, "since").map(str::parse) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return full(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "since: not a sequence number\n",
            )
        }
    };
    // subscribe before reading the store, so nothing falls between the two
    let mut live = follow.then(|| c.subscribe());
    let head = c.device_stats(device).last_seq.load(Ordering::Relaxed);
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let dir = c.store_root().join(device);
    let device = device.to_string();
    tokio::spawn(async move {
        let k = kind.clone();
        let tx2 = tx.clone();
        let last = tokio::task::spawn_blocking(move || {
            let Ok(reader) = RecordReader::device(&dir) else {
                return since;
            };
            let mut chunk = Vec::with_capacity(1 << 16);
            let mut last = since;
            for item in reader {
                let Ok(r) = item else { continue };
                if r.header.seq <= since || r.header.seq > head {
                    continue;
                }
                last = r.header.seq;
                if kind_wanted(&k, r.header.kind) {
                    chunk.extend_from_slice(&r.payload);
                    chunk.push(b'\n');
                    if chunk.len() >= 1 << 16
                        && tx2
                            .blocking_send(Bytes::from(std::mem::take(&mut chunk)))
                            .is_err()
                    {
                        return last;
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx2.blocking_send(Bytes::from(chunk));
            }
            last.max(head)
        })
        .await
        .unwrap_or(since);
        let Some(live) = live.as_mut() else { return };
        loop {
            match live.recv().await {
                Ok(r) => {
                    if &*r.device != device.as_str() || r.seq <= last || !kind_wanted(&kind, r.kind)
                    {
                        continue;
                    }
                    let mut line = Vec::with_capacity(r.payload.len() + 1);
                    line.extend_from_slice(&r.payload);
                    line.push(b'\n');
                    if tx.send(Bytes::from(line)).await.is_err() {
                        return;
                    }
                }
                // a reader too slow for the live rate: end the stream; it resumes with ?since=
                Err(
                    broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed,
                ) => return,
            }
        }
    });
    let body = StreamBody::new(stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(BodyExt::boxed(body))
        .expect("static response parts")
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A per-device sample's value (None: no sample for that device).
type DeviceValue<'a> = dyn Fn(&DeviceStats) -> Option<u64> + 'a;

/// Writes one metric family: its help and type lines, then its samples.
fn family(out: &mut String, name: &str, ty: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {ty}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The Prometheus text exposition.
pub fn metrics_text(c: &Collector) -> String {
    let devices: Vec<(String, Arc<DeviceStats>)> = c
        .device_stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(k, v)| (k.clone(), Arc::clone(v)))
        .collect();
    let label = |d: &str| format!("{{device=\"{}\"}}", escape_label(d));
    let per_device = |value: &DeviceValue| -> Vec<(String, u64)> {
        devices
            .iter()
            .filter_map(|(d, s)| value(s).map(|v| (label(d), v)))
            .collect()
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    let records: Vec<(String, u64)> = devices
        .iter()
        .flat_map(|(d, s)| {
            KIND_NAMES.iter().enumerate().map(move |(i, k)| {
                (
                    format!("{{device=\"{}\",kind=\"{k}\"}}", escape_label(d)),
                    s.stored[i].load(Ordering::Relaxed),
                )
            })
        })
        .collect();
    family(
        &mut out,
        "mamori_collect_records_total",
        "counter",
        "Verified records stored, by device and kind.",
        &records,
    );
    let findings: Vec<(String, u64)> = devices
        .iter()
        .flat_map(|(d, s)| {
            s.findings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(k, n)| {
                    (
                        format!("{{device=\"{}\",kind=\"{k}\"}}", escape_label(d)),
                        *n,
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    family(
        &mut out,
        "mamori_collect_findings_total",
        "counter",
        "Chain findings (gap, tampered, later_key, broken_link, behind, replay_conflict, damaged), by device and kind.",
        &findings,
    );
    let now = crate::stats::unix_now();
    let per_device_families: [(&str, &str, &str, &DeviceValue); 6] = [
        (
            "mamori_collect_bytes_total",
            "counter",
            "Bytes of verified records stored, by device.",
            &|s| Some(load(&s.stored_bytes)),
        ),
        (
            "mamori_collect_duplicates_total",
            "counter",
            "Resent records already stored (dropped), by device.",
            &|s| Some(load(&s.duplicates)),
        ),
        (
            "mamori_collect_last_seq",
            "gauge",
            "Last sequence number handled, by device.",
            &|s| Some(load(&s.last_seq)),
        ),
        (
            "mamori_collect_last_record_age_seconds",
            "gauge",
            "Seconds since the device's last batch arrived (a silent device grows; heartbeats keep a healthy one low).",
            &|s| {
                let last = load(&s.last_record_unix);
                (last > 0).then(|| now.saturating_sub(last))
            },
        ),
        (
            "mamori_collect_connected",
            "gauge",
            "1 while the device is connected.",
            &|s| Some(load(&s.connected)),
        ),
        (
            "mamori_collect_sessions_total",
            "counter",
            "Sessions accepted, by device.",
            &|s| Some(load(&s.sessions)),
        ),
    ];
    for (name, ty, help, value) in per_device_families {
        family(&mut out, name, ty, help, &per_device(value));
    }
    for (name, help, v) in [
        (
            "mamori_collect_handshake_failures_total",
            "TLS handshakes refused (no certificate, another CA, expired, wrong usage) or timed out.",
            &c.stats.handshake_failures,
        ),
        (
            "mamori_collect_refused_total",
            "Sessions refused after the handshake (another chain under the name, bad hello).",
            &c.stats.refused,
        ),
        (
            "mamori_collect_protocol_errors_total",
            "Sessions ended by a protocol or I/O error.",
            &c.stats.protocol_errors,
        ),
    ] {
        family(&mut out, name, "counter", help, &[(String::new(), load(v))]);
    }
    out
}

fn devices_json(c: &Collector) -> String {
    let devices = c
        .device_stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = crate::stats::unix_now();
    let list: Vec<serde_json::Value> = devices
        .iter()
        .map(|(d, s)| {
            let last = s.last_record_unix.load(Ordering::Relaxed);
            let findings = s
                .findings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            serde_json::json!({
                "device": d,
                "connected": s.connected.load(Ordering::Relaxed) == 1,
                "last_seq": s.last_seq.load(Ordering::Relaxed),
                "records": KIND_NAMES.iter().enumerate()
                    .map(|(i, k)| (k.to_string(), s.stored[i].load(Ordering::Relaxed)))
                    .collect::<std::collections::BTreeMap<_, _>>(),
                "duplicates": s.duplicates.load(Ordering::Relaxed),
                "findings": findings,
                "last_record_age_seconds": (last > 0).then(|| now.saturating_sub(last)),
            })
        })
        .collect();
    serde_json::to_string_pretty(&list).expect("json values serialise") + "\n"
}
