//! The agent's HTTP endpoint: `/metrics` (Prometheus) and `/healthz`, served by hyper (HTTP/1.1)
//! on a small tokio runtime of its own thread: the same HTTP stack as the Docker client and the
//! alert webhook.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::metrics::{Exposition, Format, MetricsSnapshot};

/// What the detection loop shares with the HTTP thread.
#[derive(Debug)]
pub struct Shared {
    /// The latest metrics.
    pub metrics: Mutex<MetricsSnapshot>,
    /// When the detection loop last went round.
    pub heartbeat: Mutex<Instant>,
    /// The Thing monitor's status and the agent's incidents, for the JSON API.
    pub things: std::sync::OnceLock<ThingBoards>,
}

/// The boards behind `/api/things` and `/api/incidents`.
#[derive(Debug, Clone)]
pub struct ThingBoards {
    /// Things and their recovery incidents.
    pub monitor: Arc<mamori_wot::status::Board>,
    /// Incidents of responses to syscall or network alerts.
    pub responses: Arc<mamori_wot::status::Board>,
}

/// The detection loop is considered stuck after this long without a heartbeat.
const STALE: Duration = Duration::from_secs(5);

/// How often the accept loop looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// A client that has not sent its request head by then is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `listen` now (errors are returned here; port 0 picks a free port) and serves on a
/// thread of its own until `stop` is set. Returns the address bound.
pub fn serve(listen: &str, shared: Arc<Shared>, stop: Arc<AtomicBool>) -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the HTTP runtime")?;
    std::thread::Builder::new()
        .name("mamori-http".into())
        .spawn(move || runtime.block_on(accept_loop(listener, Endpoint::new(shared), stop)))?;
    Ok(addr)
}

/// What a request can see.
struct Endpoint {
    shared: Arc<Shared>,
    exposition: Exposition,
}

impl Endpoint {
    fn new(shared: Arc<Shared>) -> Arc<Self> {
        let latest = Arc::clone(&shared);
        // the lock is held for a clone only: a slow scrape never makes the loop wait
        let exposition = Exposition::new(move || {
            latest
                .metrics
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        });
        Arc::new(Endpoint { shared, exposition })
    }

    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        match request.uri().path() {
            "/metrics" => {
                let accept = request.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
                let format = Format::negotiate(accept);
                match self.exposition.render(format) {
                    Ok(text) => reply(StatusCode::OK, text, format.content_type()),
                    Err(e) => reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("encoding the metrics failed: {e}\n"),
                        "text/plain",
                    ),
                }
            }
            "/healthz" => {
                let age = self
                    .shared
                    .heartbeat
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .elapsed();
                if age < STALE {
                    reply(StatusCode::OK, "ok\n".into(), "text/plain")
                } else {
                    reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("detection loop stalled for {:.1}s\n", age.as_secs_f64()),
                        "text/plain",
                    )
                }
            }
            path if path.starts_with("/api/") => self.api(path),
            _ => reply(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /healthz, /api/things or /api/incidents\n".into(),
                "text/plain",
            ),
        }
    }
}

impl Endpoint {
    /// The JSON API: `/api/things`, `/api/things/NAME`, `/api/incidents`.
    fn api(&self, path: &str) -> Response<Full<Bytes>> {
        let json = |status, value: serde_json::Value| {
            let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
            reply(status, text, "application/json")
        };
        let boards = self.shared.things.get();
        match path.trim_end_matches('/') {
            "/api/things" => json(
                StatusCode::OK,
                serde_json::to_value(boards.map(|b| b.monitor.things()).unwrap_or_default())
                    .unwrap_or_default(),
            ),
            "/api/incidents" => {
                let mut all = boards
                    .map(|b| {
                        let mut v = b.monitor.incidents();
                        v.extend(b.responses.incidents());
                        v
                    })
                    .unwrap_or_default();
                all.sort_by_key(|i| i.opened_ns);
                json(
                    StatusCode::OK,
                    serde_json::to_value(all).unwrap_or_default(),
                )
            }
            p => match p.strip_prefix("/api/things/") {
                Some(name) => {
                    let name = percent_decode(name);
                    let found = boards
                        .and_then(|b| b.monitor.things().into_iter().find(|t| t.name == name));
                    match found {
                        Some(t) => {
                            json(StatusCode::OK, serde_json::to_value(t).unwrap_or_default())
                        }
                        None => json(
                            StatusCode::NOT_FOUND,
                            serde_json::json!({"error": format!("no thing named {name}")}),
                        ),
                    }
                }
                None => json(
                    StatusCode::NOT_FOUND,
                    serde_json::json!({"error": "try /api/things, /api/things/NAME or /api/incidents"}),
                ),
            },
        }
    }
}

/// `%2F` → `/` (Thing names may hold any character).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reply(status: StatusCode, body: String, kind: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    response
}

async fn accept_loop(
    listener: std::net::TcpListener,
    endpoint: Arc<Endpoint>,
    stop: Arc<AtomicBool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mamori: the HTTP endpoint cannot start: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(STOP_POLL);
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&endpoint)));
                }
                // out of file descriptors and the like: back off instead of spinning
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = tick.tick() => {}
        }
    }
    // returning drops the runtime with the connections still open
}

async fn serve_connection(stream: tokio::net::TcpStream, endpoint: Arc<Endpoint>) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let response = endpoint.respond(&request);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    // a client that goes away mid-request is its own business
    let _ = connection.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{om_value, sample_snapshot};
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use std::io::{Read, Write};

    /// GET over real TCP with the hyper-util client: (status, content type, body).
    fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> (u16, String, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let mut request = Request::get(format!("http://{addr}{path}"));
            if let Some(a) = accept {
                request = request.header(ACCEPT, a);
            }
            let response = tokio::time::timeout(
                Duration::from_secs(10),
                client.request(request.body(Full::default()).expect("request")),
            )
            .await
            .expect("answers in time")
            .expect("response");
            let status = response.status().as_u16();
            let kind = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = response.into_body().collect().await.expect("body");
            let body = String::from_utf8(body.to_bytes().to_vec()).expect("UTF-8");
            (status, kind, body)
        })
    }

    fn start(heartbeat: Instant) -> (SocketAddr, Arc<Shared>, Arc<AtomicBool>) {
        let shared = Arc::new(Shared {
            metrics: Mutex::new(sample_snapshot()),
            heartbeat: Mutex::new(heartbeat),
            things: std::sync::OnceLock::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let addr = serve("127.0.0.1:0", Arc::clone(&shared), Arc::clone(&stop)).expect("serves");
        assert_ne!(addr.port(), 0, "the bound port is returned");
        (addr, shared, stop)
    }

    #[test]
    fn metrics_healthz_and_not_found_over_tcp() {
        let (addr, shared, stop) = start(Instant::now());

        // as Prometheus asks
        let (status, kind, body) = get(
            addr,
            "/metrics",
            Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"),
        );
        assert_eq!(status, 200);
        assert_eq!(kind, Format::OpenMetrics.content_type());
        let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&body)
            .unwrap_or_else(|e| panic!("{e:?}\n{body}"));
        let cam = [
            ("container", "cam\"1"),
            ("image", "motion"),
            ("model", "stide"),
        ];
        assert_eq!(om_value(&parsed.families, "mamori_events", &cam), 42.0);

        // the snapshot the loop publishes is what the next scrape shows
        shared.metrics.lock().expect("lock").containers[0].events = 43;
        let (_, _, body) = get(addr, "/metrics", Some("application/openmetrics-text"));
        let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&body).expect("parses");
        assert_eq!(om_value(&parsed.families, "mamori_events", &cam), 43.0);

        // without an Accept header: the Prometheus text format
        let (status, kind, body) = get(addr, "/metrics", None);
        assert_eq!(status, 200);
        assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8");
        let parsed = openmetrics_parser::prometheus::parse_prometheus(&body)
            .unwrap_or_else(|e| panic!("{e:?}\n{body}"));
        assert!(parsed.families.contains_key("mamori_events_total"));

        assert_eq!(
            get(addr, "/healthz", None),
            (200, "text/plain".into(), "ok\n".into())
        );
        let (status, _, body) = get(addr, "/nope", None);
        assert_eq!(
            (status, body.as_str()),
            (
                404,
                "not found: try /metrics, /healthz, /api/things or /api/incidents\n"
            )
        );

        // the JSON API, before and after the Thing monitor publishes its boards
        let (status, kind, body) = get(addr, "/api/things", None);
        assert_eq!(
            (status, kind.as_str(), body.trim()),
            (200, "application/json", "[]")
        );
        let monitor = Arc::new(mamori_wot::status::Board::default());
        monitor.update("pump/1", |t| t.rounds = 7);
        let incident = mamori_core::Incident::open(
            mamori_core::Subject::Host { name: "gw".into() },
            "recovery",
            mamori_core::alert::Severity::Warning,
            "test",
            5,
        );
        monitor.incident(&incident);
        let boards = ThingBoards {
            monitor,
            responses: Arc::new(mamori_wot::status::Board::default()),
        };
        shared.things.set(boards).expect("set once");
        let (_, _, body) = get(addr, "/api/things", None);
        let things: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(things[0]["name"], "pump/1");
        let (status, _, body) = get(addr, "/api/things/pump%2F1", None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["rounds"],
            7
        );
        let (status, _, body) = get(addr, "/api/things/none", None);
        assert_eq!(status, 404);
        assert!(body.contains("no thing named none"), "{body}");
        let (_, _, body) = get(addr, "/api/incidents", None);
        let incidents: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(incidents[0]["kind"], "recovery");

        stop.store(true, Ordering::Relaxed);
        std::thread::sleep(STOP_POLL * 3);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "the listener is closed once stopped"
        );
    }

    #[test]
    fn a_stalled_loop_fails_the_health_check() {
        let (addr, _shared, stop) = start(Instant::now() - Duration::from_secs(30));
        let (status, _, body) = get(addr, "/healthz", None);
        assert_eq!(status, 503);
        assert!(body.starts_with("detection loop stalled for 30."), "{body}");
        stop.store(true, Ordering::Relaxed);
    }

    #[test]
    fn an_http_1_0_client_reading_to_the_end_gets_the_whole_body() {
        // how the Docker integration test (and many shell scripts) read /metrics
        let (addr, _shared, stop) = start(Instant::now());
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
        let mut text = String::new();
        s.read_to_string(&mut text)
            .expect("the server closes the connection");
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
        let body = text.split("\r\n\r\n").nth(1).expect("body");
        assert!(
            body.contains("mamori_probe_dropped_total{cpu=\"0\"} 0\n"),
            "{body}"
        );
        openmetrics_parser::prometheus::parse_prometheus(body).expect("parses");
        stop.store(true, Ordering::Relaxed);
    }

    #[test]
    fn a_taken_port_is_an_error_at_once() {
        let (addr, _shared, stop) = start(Instant::now());
        let shared = Arc::new(Shared {
            metrics: Mutex::default(),
            heartbeat: Mutex::new(Instant::now()),
            things: std::sync::OnceLock::new(),
        });
        let err = serve(&addr.to_string(), shared, Arc::clone(&stop)).expect_err("port in use");
        assert!(err.to_string().contains("cannot listen on"), "{err}");
        stop.store(true, Ordering::Relaxed);
    }
}
