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
    /// A reply declared as text was not UTF-8.
    #[error("reply is not UTF-8 text: {message}; starts {start}")]
    NotText {
        /// The decoder's message.
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
            FetchError::NotText { .. } => "not-text",
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

impl Reply {
    /// A value decoded from a reply to a request sent at `started`.
    fn after(started: Instant, value: Value) -> Self {
        Self {
            value,
            latency: started.elapsed(),
        }
    }
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

    /// GET `url` whose form declares a text content type (`text/plain`, `text/html`): the body
    /// is the value, as a JSON string.
    pub async fn get_text(
        &self,
        url: &str,
        auth: Auth,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<Reply, FetchError> {
        let started = Instant::now();
        let (_, body) = self
            .exchange(Method::GET, url, None, auth, credentials, timeout)
            .await?;
        let value = String::from_utf8(body.to_vec())
            .map(Value::String)
            .map_err(|e| FetchError::NotText {
                message: e.to_string(),
                start: escaped_start(&body, 60),
            })?;
        Ok(Reply::after(started, value))
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
        let (content_type, body) = self
            .exchange(method, url, body, auth, credentials, timeout)
            .await?;
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| FetchError::NotJson {
                content_type,
                message: e.to_string(),
                start: escaped_start(&body, 60),
            })?
        };
        Ok(Reply::after(started, value))
    }

    /// Sends a request; a successful reply's content type and body.
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        auth: Auth,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Result<(String, Bytes), FetchError> {
        let request = build_request(method, url, body, auth, credentials)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Connect {
                    message: mamori_core::error::chain(&e),
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
        // a 204's body is nothing, whatever whitespace a server sends with it
        if status == StatusCode::NO_CONTENT && body.iter().all(u8::is_ascii_whitespace) {
            return Ok((content_type, Bytes::new()));
        }
        Ok((content_type, body))
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection https server on loopback with a certificate from a fresh CA; returns
    /// its port and the CA as PEM.
    async fn tls_server(body: &'static str) -> (u16, String) {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            for _ in 0..2 {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        (port, ca.pem())
    }

    #[tokio::test]
    async fn https_properties_are_read_with_a_private_ca_and_refused_without() {
        let (port, ca_pem) = tls_server("{\"celsius\": 21.5}").await;
        let dir = std::env::temp_dir().join(format!("mamori-wot-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("CA written");
        let url = format!("https://127.0.0.1:{port}/properties/temperature");
        let none = Credentials::default();
        let timeout = Duration::from_secs(5);
        let trusting = HttpClient::new(Some(&ca_file), 1 << 20).expect("client");
        let reply = trusting
            .get_json(&url, Auth::None, &none, timeout)
            .await
            .expect("read");
        assert_eq!(reply.value["celsius"], 21.5);
        let stranger = HttpClient::new(None, 1 << 20).expect("client");
        let err = stranger
            .get_json(&url, Auth::None, &none, timeout)
            .await
            .expect_err("an unknown CA is refused");
        assert!(matches!(err, FetchError::Connect { .. }), "{err}");
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn missing_credentials_are_named_before_sending() {
        let err = build_request(
            Method::GET,
            "http://127.0.0.1/x",
            None,
            Auth::Bearer,
            &Credentials::default(),
        )
        .expect_err("no token");
        assert!(err.to_string().contains("configure bearer_token"), "{err}");
        let ok = build_request(
            Method::GET,
            "http://127.0.0.1/x",
            None,
            Auth::Basic,
            &Credentials {
                basic_user: "op".into(),
                basic_password: "pw".into(),
                ..Credentials::default()
            },
        )
        .expect("request");
        assert_eq!(ok.headers()[AUTHORIZATION], "Basic b3A6cHc=");
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = std::env::temp_dir().join(format!("mamori-wot-badca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("empty.pem");
        std::fs::write(&f, "not a certificate").expect("written");
        let err = HttpClient::new(Some(&f), 1024).expect_err("no certificate");
        assert!(
            err.to_string().contains("empty.pem: holds no certificate"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
