//! HTTP(S) for talking to Things: one pooled hyper client (keep-alive, so polling a thousand
//! properties a second does not open a thousand connections a second), rustls for https with
//! the system's roots plus an optional CA file (devices often carry a private CA), every request
//! bounded in time and every reply bounded in size.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Credentials for a Thing's `securityDefinitions` (basic and bearer; nosec needs none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Credentials {
    /// User for `basic`.
    pub basic_user: String,
    /// Password for `basic`.
    pub basic_password: String,
    /// Token for `bearer`.
    pub bearer_token: String,
}

/// Which scheme a request must satisfy, resolved from the TD's security names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    None,
    /// HTTP Basic.
    Basic,
    /// `Authorization: Bearer`.
    Bearer,
}

/// Why a request to a Thing failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "error", rename_all = "kebab-case")]
pub enum FetchError {
    /// No complete reply within the timeout.
    #[error("no reply within {timeout_ms} ms")]
    Timeout {
        /// The timeout.
        timeout_ms: u64,
    },
    /// Could not connect or the connection broke.
    #[error("connection failed: {message}")]
    Connect {
        /// What the transport said.
        message: String,
    },
    /// An HTTP status other than 2xx.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the reply body.
        body: String,
    },
    /// The reply exceeded the size limit.
    #[error("reply larger than {limit} bytes (refused; limits.max_reply_bytes)")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The reply was not JSON.
    #[error("reply is not JSON ({content_type}): {message}; starts {start}")]
    NotJson {
        /// The reply's content type.
        content_type: String,
        /// The parser's message.
        message: String,
        /// Its first bytes, escaped.
        start: String,
    },
    /// The URL or the request could not be built.
    #[error("{message}")]
    Request {
        /// What is wrong.
        message: String,
    },
    /// The TD asks for credentials that were not configured.
    #[error("the Thing requires {scheme} authentication; configure {hint}")]
    NoCredentials {
        /// `basic` or `bearer`.
        scheme: String,
        /// The config keys to set.
        hint: String,
    },
}

impl FetchError {
    /// A short label for metrics and state reasons.
    pub fn label(&self) -> &'static str {
        match self {
            FetchError::Timeout { .. } => "timeout",
            FetchError::Connect { .. } => "connect",
            FetchError::Status { .. } => "status",
            FetchError::TooLarge { .. } => "too-large",
            FetchError::NotJson { .. } => "not-json",
            FetchError::Request { .. } => "request",
            FetchError::NoCredentials { .. } => "credentials",
        }
    }
}

/// A JSON reply and how long it took.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The decoded body (`null` for an empty one).
    pub value: Value,
    /// From sending the request to the last byte.
    pub latency: Duration,
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled HTTP(S) client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    max_reply_bytes: usize,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("max_reply_bytes", &self.max_reply_bytes)
            .finish()
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup: {0}")]
    Tls(String),
}

impl HttpClient {
    /// A client trusting the system's roots and, when given, the certificates in `ca_file`
    /// (PEM); replies over `max_reply_bytes` are refused.
    pub fn new(ca_file: Option<&Path>, max_reply_bytes: usize) -> Result<Self, ClientError> {
        // ring, not aws-lc-rs: it builds without cmake on a small gateway's toolchain; the
        // deprecation is about post-quantum key exchange, which device firmware does not offer.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system roots only matter for https Things without a CA file.
        let native = rustls_native_certs_or_empty();
        roots.add_parsable_certificates(native);
        if let Some(path) = ca_file {
            let ca_err = |message: String| ClientError::CaFile {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ca_err(format!("not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(ca_err("holds no certificate".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpClient {
            client,
            max_reply_bytes,
        })
    }

    /// The size limit of replies.
    pub fn max_reply_bytes(&self) -> usize {
        self.max_reply_bytes
    }

    /// GET `url` and decode JSON.
    pub async fn get_json(
        &self,
        url: &str,
        auth: Auth,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<Reply, FetchError> {
        self.send(Method::GET, url, None, auth, credentials, timeout)
            .await
    }

    /// Sends a request with an optional JSON body and decodes a JSON reply (an empty body is
    /// `null`).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        auth: Auth,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<Reply, FetchError> {
        let started = Instant::now();
        let request = build_request(method, url, body, auth, credentials)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Connect {
                    message: error_chain(&e),
                })?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no content type")
                .to_string();
            let body = Limited::new(response.into_body(), self.max_reply_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<LengthLimitError>().is_some() {
                        FetchError::TooLarge {
                            limit: self.max_reply_bytes,
                        }
                    } else {
                        FetchError::Connect {
                            message: e.to_string(),
                        }
                    }
                })?
                .to_bytes();
            Ok::<_, FetchError>((status, content_type, body))
        };
        let (status, content_type, body) =
            tokio::time::timeout(timeout, exchange)
                .await
                .map_err(|_| FetchError::Timeout {
                    timeout_ms: timeout.as_millis() as u64,
                })??;
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                body: escaped_start(&body, 120),
            });
        }
        let value = if body.iter().all(u8::is_ascii_whitespace) && status == StatusCode::NO_CONTENT
            || body.is_empty()
        {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| FetchError::NotJson {
                content_type,
                message: e.to_string(),
                start: escaped_start(&body, 60),
            })?
        };
        Ok(Reply {
            value,
            latency: started.elapsed(),
        })
    }
}

fn build_request(
    method: Method,
    url: &str,
    body: Option<&Value>,
    auth: Auth,
    credentials: &Credentials,
) -> Result<Request<Full<Bytes>>, FetchError> {
    let uri: hyper::Uri = url.parse().map_err(|e| FetchError::Request {
        message: format!("bad URL {url}: {e}"),
    })?;
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(ACCEPT, HeaderValue::from_static("application/json"));
    match auth {
        Auth::None => {}
        Auth::Basic => {
            if credentials.basic_user.is_empty() {
                return Err(FetchError::NoCredentials {
                    scheme: "basic".into(),
                    hint: "basic_user and basic_password".into(),
                });
            }
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                credentials.basic_user, credentials.basic_password
            ));
            builder = builder.header(AUTHORIZATION, format!("Basic {token}"));
        }
        Auth::Bearer => {
            if credentials.bearer_token.is_empty() {
                return Err(FetchError::NoCredentials {
                    scheme: "bearer".into(),
                    hint: "bearer_token".into(),
                });
            }
            builder = builder.header(
                AUTHORIZATION,
                format!("Bearer {}", credentials.bearer_token),
            );
        }
    }
    let bytes = match body {
        Some(v) => {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    builder
        .body(Full::new(bytes))
        .map_err(|e| FetchError::Request {
            message: format!("cannot build a request for {url}: {e}"),
        })
}

/// The error and its causes, `a: b: c` (hyper's top-level message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The first `n` bytes of a body, printable (control bytes escaped).
pub fn escaped_start(body: &[u8], n: usize) -> String {
    let head = &body[..body.len().min(n)];
    let mut text: String = String::from_utf8_lossy(head)
        .chars()
        .flat_map(char::escape_default)
        .collect();
    if body.len() > n {
        text.push('…');
    }
    text
}

/// The system's trusted roots from the usual bundle locations (Debian, Fedora, Alpine); an
/// empty set when none is readable.
fn rustls_native_certs_or_empty() -> Vec<rustls_pki_types::CertificateDer<'static>> {
    const BUNDLES: [&str; 3] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ];
    for path in BUNDLES {
        if let Ok(pem) = std::fs::read(path) {
            let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .collect();
            if !certs.is_empty() {
                return certs;
            }
        }
    }
    Vec::new()
}
