//! The alert webhook: each alert POSTed as one JSON document (`application/json`), with the
//! hyper-util client on the same hyper stack as `/metrics` and the Docker client.
//!
//! Only `http://` URLs are accepted, and an `https://` one is refused when the configuration is
//! checked ([`check_url`]): mamori has no TLS client (no rustls connector for hyper is in the
//! build), and a webhook that silently fails every delivery would be worse than a clear error.
//! Point it at a relay on the gateway or the LAN that forwards over TLS when needed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mamori_core::sink::{AlertSink, Output, SinkError};
use mamori_core::{Alert, Incident};

/// How long one delivery may take, connecting and reading the answer included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting or sending failed.
    #[error("{0}")]
    Request(String),
    /// The far end answered with an error status.
    #[error("answered {0}")]
    Status(StatusCode),
}

/// An HTTP endpoint that receives alerts (and, if asked, incidents) as JSON.
pub struct Webhook {
    url: Uri,
    timeout: Duration,
    incidents: bool,
    failures: Arc<AtomicU64>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Drives the client while a delivery is under way (deliveries are synchronous).
    runtime: tokio::runtime::Runtime,
}

/// The URL as the webhook will use it, or why it cannot be used.
pub fn check_url(url: &str) -> Result<Uri> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("alert webhook {url:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => bail!(
            "alert webhook {url}: https is not supported (mamori has no TLS client); \
             use an http:// URL, e.g. a relay that forwards over TLS"
        ),
        _ => bail!("alert webhook {url:?} must be an http:// URL"),
    }
    if uri.host().is_none_or(str::is_empty) {
        bail!("alert webhook {url:?} has no host");
    }
    Ok(uri)
}

impl Webhook {
    /// A webhook posting to `url` (see [`check_url`]), with a [`TIMEOUT`] per delivery.
    pub fn new(url: &str) -> Result<Self> {
        let url = check_url(url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the webhook's runtime")?;
        let client = Client::builder(TokioExecutor::new())
            // a fresh connection per delivery: alerts are rare, and a pooled connection the
            // receiver has closed meanwhile would turn into a spurious failure
            .pool_max_idle_per_host(0)
            .build(HttpConnector::new());
        Ok(Webhook {
            url,
            timeout: TIMEOUT,
            incidents: false,
            failures: Arc::new(AtomicU64::new(0)),
            client,
            runtime,
        })
    }

    /// Also POST incidents (as the `Output::Incident` record); by default only alerts go out.
    // used where the webhook is an `AlertSink` behind a fan-out; the agent's deliver loop posts
    // its own alert lines and needs neither this nor `failures` (it keeps the sink stats)
    #[allow(dead_code)]
    pub fn with_incidents(mut self, incidents: bool) -> Self {
        self.incidents = incidents;
        self
    }

    /// Another time limit per delivery (tests).
    #[cfg(test)]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Counts failed deliveries into `counter` (the agent's /metrics) instead of a counter of
    /// its own.
    pub fn counting_into(mut self, counter: Arc<AtomicU64>) -> Self {
        self.failures = counter;
        self
    }

    /// Deliveries that failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// POSTs one JSON document; a failure is counted. Succeeds on a 2xx answer.
    pub fn post_json(&mut self, body: impl Into<Bytes>) -> Result<(), PostError> {
        let result = self.post(body.into());
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn post(&self, body: Bytes) -> Result<(), PostError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("mamori/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body))
            .map_err(|e| PostError::Request(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| PostError::Request(mamori_core::error::chain(&e)))?;
            let status = response.status();
            // read the answer to its end (and drop it) so the receiver sees a clean close
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame.map_err(|e| PostError::Request(mamori_core::error::chain(&e)))?;
            }
            if status.is_success() {
                Ok(())
            } else {
                Err(PostError::Status(status))
            }
        };
        self.runtime
            .block_on(async { tokio::time::timeout(self.timeout, exchange).await })
            .unwrap_or(Err(PostError::Timeout(self.timeout)))
    }

    fn post_record(&mut self, record: Output<'_>) -> Result<(), SinkError> {
        let sent = serde_json::to_vec(&record)
            .map_err(|e| e.to_string())
            .and_then(|line| self.post_json(line).map_err(|e| e.to_string()));
        sent.map_err(|message| SinkError::Delivery {
            sink: format!("webhook {}", self.url),
            message,
        })
    }
}

/// Each record is the same tagged JSON line [`mamori_core::sink::JsonLines`] writes (without the
/// newline), one POST per record. Nothing is buffered, so `flush` has nothing to do.
impl AlertSink for Webhook {
    fn alert(&mut self, alert: &Alert) -> Result<(), SinkError> {
        self.post_record(Output::Alert(alert))
    }

    fn incident(&mut self, incident: &Incident) -> Result<(), SinkError> {
        if self.incidents {
            self.post_record(Output::Incident(incident))
        } else {
            Ok(())
        }
    }
}

/// A webhook receiver for tests, on the same stack.
#[cfg(test)]
pub(crate) mod fake {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::mpsc;

    use http_body_util::{BodyExt, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;

    /// One request the receiver got.
    #[derive(Debug)]
    pub(crate) struct Received {
        pub(crate) method: String,
        pub(crate) path: String,
        pub(crate) content_type: String,
        pub(crate) body: String,
    }

    /// Listens on a free loopback port and answers every request with `status` (after `delay`).
    /// Requests arrive on the returned channel; the receiver runs until the test process ends.
    pub(crate) fn receiver(
        status: StatusCode,
        delay: std::time::Duration,
    ) -> (SocketAddr, mpsc::Receiver<Received>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
        let addr = listener.local_addr().expect("address");
        listener.set_nonblocking(true).expect("non-blocking");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                while let Ok((stream, _)) = listener.accept().await {
                    let tx = tx.clone();
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let content_type = req
                                .headers()
                                .get(hyper::header::CONTENT_TYPE)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            let body = req.into_body().collect().await.expect("body").to_bytes();
                            let _ = tx.send(Received {
                                method,
                                path,
                                content_type,
                                body: String::from_utf8_lossy(&body).into_owned(),
                            });
                            tokio::time::sleep(delay).await;
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = status;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        (addr, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_core::alert::{Evidence, Severity};
    use mamori_core::Subject;
    use std::time::Instant;

    fn alert() -> Alert {
        Alert {
            time: mamori_core::time::rfc3339(5),
            time_ns: 5,
            subject: Subject::Device {
                address: "10.0.0.7".into(),
            },
            source: "network".into(),
            detector: "svm".into(),
            model_path: "svm.model".into(),
            score: 1.5,
            threshold: 0.0,
            flagged_units: 1,
            run_start_ns: 5,
            severity: Severity::Warning,
            evidence: Evidence::Traffic {
                entity_kind: "device".into(),
                entity: "10.0.0.7".into(),
                input: "lab.pcap".into(),
                start_ns: 0,
                end_ns: 5,
                packets: 300,
            },
        }
    }

    #[test]
    fn https_and_other_schemes_are_refused_when_configured() {
        let err = check_url("https://hooks.example/alert").expect_err("https");
        assert!(err.to_string().contains("https is not supported"), "{err}");
        assert!(check_url("ftp://x/y").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("http:///path").is_err());
        assert_eq!(
            check_url("http://127.0.0.1:9/hook").expect("http").path(),
            "/hook"
        );
        assert!(Webhook::new("https://hooks.example/alert").is_err());
    }

    #[test]
    fn an_alert_is_posted_as_the_tagged_json_line_the_file_gets() {
        let (addr, received) = fake::receiver(StatusCode::NO_CONTENT, Duration::ZERO);
        let mut hook = Webhook::new(&format!("http://{addr}/hook")).expect("webhook");
        hook.alert(&alert()).expect("delivered");
        let got = received
            .recv_timeout(Duration::from_secs(10))
            .expect("request");
        assert_eq!(got.method, "POST");
        assert_eq!(got.path, "/hook");
        assert_eq!(got.content_type, "application/json");
        let mut file = mamori_core::sink::JsonLines::new("mem", Vec::new(), false);
        file.alert(&alert()).expect("written");
        let line = String::from_utf8(file.into_inner()).expect("UTF-8");
        assert_eq!(format!("{}\n", got.body), line);
        let v: serde_json::Value = serde_json::from_str(&got.body).expect("JSON");
        assert_eq!(v["record"], "alert");
        assert_eq!(hook.failures(), 0);
        // incidents are not posted unless asked for
        let incident = Incident {
            id: "x".into(),
            subject: alert().subject,
            kind: "anomaly".into(),
            severity: Severity::Warning,
            summary: "s".into(),
            opened_ns: 5,
            closed_ns: None,
            alerts: vec![alert()],
            actions: Vec::new(),
            evidence: Default::default(),
        };
        hook.incident(&incident).expect("ignored");
        assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
        let mut hook = hook.with_incidents(true);
        hook.incident(&incident).expect("delivered");
        let got = received
            .recv_timeout(Duration::from_secs(10))
            .expect("request");
        let v: serde_json::Value = serde_json::from_str(&got.body).expect("JSON");
        assert_eq!(v["record"], "incident");
    }

    #[test]
    fn error_statuses_timeouts_and_refusals_are_counted_failures() {
        let (addr, _received) = fake::receiver(StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO);
        let mut hook = Webhook::new(&format!("http://{addr}/hook")).expect("webhook");
        let err = hook.alert(&alert()).expect_err("500");
        assert!(err.to_string().contains("500"), "{err}");
        assert_eq!(hook.failures(), 1);

        let (addr, _received) = fake::receiver(StatusCode::OK, Duration::from_secs(30));
        let mut hook = Webhook::new(&format!("http://{addr}/hook"))
            .expect("webhook")
            .with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let err = hook.post_json("{}").expect_err("too slow");
        assert!(matches!(err, PostError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(hook.failures(), 1);

        // a port nothing listens on: bind one, then free it
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut hook = Webhook::new(&format!("http://127.0.0.1:{port}/hook")).expect("webhook");
        let err = hook.post_json("{}").expect_err("refused");
        assert!(matches!(err, PostError::Request(_)), "{err}");
        assert_eq!(hook.failures(), 1);
    }
}
