//! TLS configurations for shipping: TLS 1.3 only, mutual authentication against the private CA
//! of [`crate::certs`], ALPN `mamori-ship/1`.
//!
//! Both sides trust only `ca.pem` (never the system roots): a collector accepts a device only
//! if its certificate chains to the CA and carries the clientAuth EKU, and a device sends its
//! records only to a collector whose certificate chains to the CA, carries serverAuth and names
//! the host the device connects to. [`peer_name`] gives the device name the collector files
//! records under, taken from the verified certificate.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::certs;

/// The application protocol both sides announce; a later incompatible protocol gets a new one.
pub const ALPN: &[u8] = b"mamori-ship/1";

/// Where a side's CA certificate, own certificate and own key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The layout [`certs::issue`] writes: `dir/ca.pem`, `dir/NAME.pem`, `dir/NAME.key`.
    pub fn in_dir(dir: &Path, name: &str) -> TlsFiles {
        TlsFiles {
            ca: dir.join(certs::CA_CERT_FILE),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

/// Loading and peer-identity errors; load errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: empty file", .path.display())]
    Empty { path: PathBuf },
    #[error("{}: not a PEM {what}{}", .path.display(), .detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NotPem {
        path: PathBuf,
        what: &'static str,
        detail: Option<String>,
    },
    #[error("{}: unusable CA certificate: {source}", .path.display())]
    BadCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{}: the key does not belong to the certificate {}", .key.display(), .cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{}, {}: {source}", .cert.display(), .key.display())]
    CertKey {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("client verifier for {}: {source}", .ca.display())]
    Verifier {
        ca: PathBuf,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    #[error("the peer certificate cannot be read: {0}")]
    BadPeerCertificate(String),
    #[error("the peer certificate names no device: {0}")]
    BadPeerName(String),
}

/// The collector's configuration: TLS 1.3, a client certificate chaining to `files.ca` is
/// required (no anonymous devices), ALPN `mamori-ship/1`.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let roots = Arc::new(load_roots(&files.ca)?);
    // No `allow_unauthenticated()`: a client without a certificate fails the handshake.
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|source| TlsError::Verifier {
            ca: files.ca.clone(),
            source,
        })?;
    let (chain, key) = load_cert_and_key(files)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| cert_key_error(files, e))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The device's configuration: TLS 1.3, trusts only `files.ca`, presents the device
/// certificate, ALPN `mamori-ship/1`.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots(&files.ca)?;
    let (chain, key) = load_cert_and_key(files)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| cert_key_error(files, e))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The authenticated device name of a finished server-side handshake.
///
/// It comes from the client certificate that the verifier checked against the CA (the only
/// thing a device cannot forge), never from anything the client sends in the protocol.
pub fn peer_name(conn: &rustls::ServerConnection) -> Result<String, TlsError> {
    let certs = conn
        .peer_certificates()
        .ok_or(TlsError::NoPeerCertificate)?;
    peer_name_from_certs(certs)
}

/// The device name in a verified chain (leaf first): its DNS SAN, else its CN; if both are
/// present they must agree, so that a certificate cannot mean two devices. The name must pass
/// [`certs::validate_name`], since the collector uses it as a directory name.
pub fn peer_name_from_certs(chain: &[CertificateDer<'_>]) -> Result<String, TlsError> {
    use x509_parser::extensions::GeneralName;

    let leaf = chain.first().ok_or(TlsError::NoPeerCertificate)?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| TlsError::BadPeerCertificate(e.to_string()))?;
    let mut cns = cert.subject().iter_common_name();
    let cn = match cns.next() {
        Some(attr) => Some(
            attr.as_str()
                .map_err(|e| TlsError::BadPeerName(format!("common name: {e}")))?
                .to_string(),
        ),
        None => None,
    };
    if cns.next().is_some() {
        return Err(TlsError::BadPeerName("more than one common name".into()));
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|e| TlsError::BadPeerCertificate(e.to_string()))?
        .and_then(|ext| {
            ext.value.general_names.iter().find_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
        });
    let name = match (san, cn) {
        (Some(san), Some(cn)) if san != cn => {
            return Err(TlsError::BadPeerName(format!(
                "DNS name {san:?} and common name {cn:?} differ"
            )))
        }
        (Some(name), _) | (None, Some(name)) => name,
        (None, None) => return Err(TlsError::BadPeerName("no DNS name, no common name".into())),
    };
    certs::validate_name(&name).map_err(|e| TlsError::BadPeerName(e.to_string()))?;
    Ok(name)
}

/// ring, the provider the workspace already builds; passed explicitly so that no process-wide
/// default has to be installed. rustls 0.23.48 deprecates it for lacking post-quantum key
/// exchange; the alternative (aws-lc-rs) would be a second crypto stack with a C build, which
/// the workspace keeps out for now.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_nonempty(path: &Path) -> Result<Vec<u8>, TlsError> {
    let data = fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(TlsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(data)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = read_nonempty(path)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NotPem {
            path: path.to_path_buf(),
            what: "certificate",
            detail: Some(e.to_string()),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NotPem {
            path: path.to_path_buf(),
            what: "certificate",
            detail: None,
        });
    }
    Ok(certs)
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
}

fn load_cert_and_key(
    files: &TlsFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = load_certs(&files.cert)?;
    let data = read_nonempty(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&data).map_err(|e| TlsError::NotPem {
        path: files.key.clone(),
        what: "private key",
        detail: match e {
            rustls_pki_types::pem::Error::NoItemsFound => None,
            e => Some(e.to_string()),
        },
    })?;
    Ok((chain, key))
}

/// rustls compares the key with the certificate's public key when loading them; say which
/// files disagree.
fn cert_key_error(files: &TlsFiles, e: rustls::Error) -> TlsError {
    match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            }
        }
        source => TlsError::CertKey {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        },
    }
}
