//! The agent's HTTP endpoint: `/metrics` (Prometheus) and `/healthz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::metrics::MetricsSnapshot;

/// What the detection loop shares with the HTTP thread.
pub struct Shared {
    /// The latest metrics.
    pub metrics: Mutex<MetricsSnapshot>,
    /// When the detection loop last went round.
    pub heartbeat: Mutex<Instant>,
}

/// The detection loop is considered stuck after this long without a heartbeat.
const STALE: Duration = Duration::from_secs(5);

/// Serves until `stop` is set. Returns the address bound (useful with port 0).
pub fn serve(
    listen: &str,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> Result<std::net::SocketAddr> {
    let server =
        tiny_http::Server::http(listen).map_err(|e| anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow!("{listen} is not an IP address"))?;
    std::thread::Builder::new()
        .name("mamori-http".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(200)) else {
                    continue;
                };
                let (status, body, kind) = match request.url() {
                    "/metrics" => {
                        let text = shared
                            .metrics
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .render();
                        (200, text, "text/plain; version=0.0.4")
                    }
                    "/healthz" => {
                        let age = shared
                            .heartbeat
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .elapsed();
                        if age < STALE {
                            (200, "ok\n".to_string(), "text/plain")
                        } else {
                            (
                                503,
                                format!("detection loop stalled for {:.1}s\n", age.as_secs_f64()),
                                "text/plain",
                            )
                        }
                    }
                    _ => (
                        404,
                        "not found: try /metrics or /healthz\n".to_string(),
                        "text/plain",
                    ),
                };
                let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes());
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                if let Ok(h) = header {
                    response.add_header(h);
                }
                let _ = request.respond(response);
            }
        })?;
    Ok(addr)
}
