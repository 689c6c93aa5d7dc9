//! Real TLS handshakes over 127.0.0.1 between configurations built from certificates that
//! `certs` generates: who gets in, who is refused, and with which error.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mamori_ship::certs::{self, Role, Validity};
use mamori_ship::tls::{self, TlsError, TlsFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Upper bound for any network step, so a broken handshake fails the test instead of hanging.
const STEP: Duration = Duration::from_secs(10);

/// A CA with a collector (for 127.0.0.1 and localhost) and a device `dev1`, each in its own
/// bundle directory as an operator would copy them.
struct Pki {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ca: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let ca = root.join("ca");
        certs::init_ca(&ca, "mamori test CA", 30, false).unwrap();
        let pki = Pki {
            _tmp: tmp,
            root,
            ca,
        };
        pki.issue(Role::Collector, "collector", Validity::days(30));
        pki.issue(Role::Device, "dev1", Validity::days(30));
        pki
    }

    fn issue(&self, role: Role, name: &str, validity: Validity) -> TlsFiles {
        let out = self.root.join(name);
        let sans = match role {
            Role::Collector => vec!["127.0.0.1".to_string(), "localhost".to_string()],
            Role::Device => vec![],
        };
        certs::issue(&self.ca, &out, role, name, &sans, validity).unwrap();
        TlsFiles::in_dir(&out, name)
    }

    fn files(&self, name: &str) -> TlsFiles {
        TlsFiles::in_dir(&self.root.join(name), name)
    }
}

/// Accepts one connection; on a good handshake reads the client's line and answers with the
/// device name taken from the certificate.
async fn serve_once(config: Arc<ServerConfig>) -> (SocketAddr, JoinHandle<io::Result<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = timeout(STEP, listener.accept()).await??;
        let mut tls = timeout(STEP, TlsAcceptor::from(config).accept(tcp)).await??;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(tls::ALPN));
        let name = tls::peer_name(tls.get_ref().1).map_err(io::Error::other)?;
        let mut line = [0u8; 5];
        timeout(STEP, tls.read_exact(&mut line)).await??;
        assert_eq!(&line, b"ping\n");
        let reply = format!("pong {name}\n");
        timeout(STEP, tls.write_all(reply.as_bytes())).await??;
        timeout(STEP, tls.shutdown()).await??;
        Ok(name)
    });
    (addr, task)
}

/// Connects, sends a line and reads the whole answer. In TLS 1.3 the client finishes its
/// handshake before the server has judged its certificate, so a refusal of the client shows
/// up here as a failed read rather than a failed connect.
async fn ping(config: Arc<ClientConfig>, addr: SocketAddr, server: &str) -> io::Result<String> {
    let tcp = timeout(STEP, TcpStream::connect(addr)).await??;
    let name = ServerName::try_from(server.to_string()).unwrap();
    let mut tls = timeout(STEP, TlsConnector::from(config).connect(name, tcp)).await??;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(tls::ALPN));
    timeout(STEP, tls.write_all(b"ping\n")).await??;
    let mut reply = Vec::new();
    timeout(STEP, tls.read_to_end(&mut reply)).await??;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// The rustls error inside a tokio-rustls I/O error.
fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Runs one connection where the server must refuse the client; returns the server's error.
async fn server_refuses(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> rustls::Error {
    let (addr, task) = serve_once(server).await;
    let client_result = ping(client, addr, "collector").await;
    assert!(
        client_result.is_err(),
        "client got through: {client_result:?}"
    );
    let server_err = timeout(STEP, task).await.unwrap().unwrap().unwrap_err();
    eprintln!("client: {client_result:?}\nserver: {server_err}");
    rustls_error(&server_err)
        .unwrap_or_else(|| panic!("server failed, but not in TLS: {server_err}"))
        .clone()
}

/// Runs one connection where the client must refuse the server; returns the client's error.
async fn client_refuses(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    server_name: &str,
) -> rustls::Error {
    let (addr, task) = serve_once(server).await;
    let client_err = ping(client, addr, server_name).await.unwrap_err();
    let server_result = timeout(STEP, task).await.unwrap().unwrap();
    eprintln!("client: {client_err}\nserver: {server_result:?}");
    assert!(server_result.is_err(), "server went on: {server_result:?}");
    rustls_error(&client_err)
        .unwrap_or_else(|| panic!("client failed, but not in TLS: {client_err}"))
        .clone()
}

#[tokio::test]
async fn device_connects_and_is_named_by_its_certificate() {
    let pki = Pki::new();
    let server = tls::server_config(&pki.files("collector")).unwrap();
    let client = tls::client_config(&pki.files("dev1")).unwrap();
    for host in ["127.0.0.1", "localhost", "collector"] {
        let (addr, task) = serve_once(server.clone()).await;
        let reply = ping(client.clone(), addr, host).await.unwrap();
        assert_eq!(reply, "pong dev1\n");
        assert_eq!(timeout(STEP, task).await.unwrap().unwrap().unwrap(), "dev1");
    }
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let pki = Pki::new();
    let server = tls::server_config(&pki.files("collector")).unwrap();
    let files = pki.files("dev1");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der(&files.ca)).unwrap();
    let mut client = ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![tls::ALPN.to_vec()];
    let err = server_refuses(server, Arc::new(client)).await;
    assert_eq!(err, rustls::Error::NoCertificatesPresented);
}

#[tokio::test]
async fn client_from_another_ca_is_refused() {
    let pki = Pki::new();
    let other = Pki::new();
    let server = tls::server_config(&pki.files("collector")).unwrap();
    // The stranger trusts our CA (so it gets as far as presenting its certificate), but its
    // own certificate comes from another CA, even with the same device name.
    let mut files = other.files("dev1");
    files.ca = pki.files("dev1").ca;
    let client = tls::client_config(&files).unwrap();
    let err = server_refuses(server, client).await;
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
                | rustls::Error::InvalidCertificate(CertificateError::BadSignature)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn expired_client_certificate_is_refused() {
    let pki = Pki::new();
    let files = pki.issue(Role::Device, "old-dev", Validity::expired());
    let server = tls::server_config(&pki.files("collector")).unwrap();
    let client = tls::client_config(&files).unwrap();
    let err = server_refuses(server, client).await;
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            )
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn collector_certificate_is_refused_as_client_certificate() {
    let pki = Pki::new();
    let server = tls::server_config(&pki.files("collector")).unwrap();
    // A second collector tries to ship as if it were a device.
    let files = pki.issue(Role::Collector, "collector2", Validity::days(30));
    let client = tls::client_config(&files).unwrap();
    let err = server_refuses(server, client).await;
    assert!(is_wrong_purpose(&err), "{err:?}");
}

#[tokio::test]
async fn device_certificate_is_refused_as_server_certificate() {
    let pki = Pki::new();
    // dev1's bundle used as a collector; dev2 connects to it by dev1's name, which the
    // certificate does carry, so only the purpose (clientAuth, not serverAuth) is wrong.
    let server = tls::server_config(&pki.files("dev1")).unwrap();
    let dev2 = pki.issue(Role::Device, "dev2", Validity::days(30));
    let client = tls::client_config(&dev2).unwrap();
    let err = client_refuses(server, client, "dev1").await;
    assert!(is_wrong_purpose(&err), "{err:?}");
}

fn is_wrong_purpose(err: &rustls::Error) -> bool {
    matches!(
        err,
        rustls::Error::InvalidCertificate(
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
        )
    )
}

#[tokio::test]
async fn collector_with_another_name_is_refused() {
    let pki = Pki::new();
    let server = tls::server_config(&pki.files("collector")).unwrap();
    let client = tls::client_config(&pki.files("dev1")).unwrap();
    let err = client_refuses(server, client, "collector.elsewhere.example").await;
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn collector_from_another_ca_is_refused() {
    let pki = Pki::new();
    let other = Pki::new();
    let server = tls::server_config(&other.files("collector")).unwrap();
    let client = tls::client_config(&pki.files("dev1")).unwrap();
    let err = client_refuses(server, client, "127.0.0.1").await;
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
                | rustls::Error::InvalidCertificate(CertificateError::BadSignature)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn tls12_only_client_is_refused() {
    let pki = Pki::new();
    let server = tls::server_config(&pki.files("collector")).unwrap();
    let files = pki.files("dev1");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der(&files.ca)).unwrap();
    let chain = vec![ca_der(&files.cert)];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&files.key).unwrap();
    let mut client = ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    client.alpn_protocols = vec![tls::ALPN.to_vec()];
    let (addr, task) = serve_once(server).await;
    let client_err = ping(Arc::new(client), addr, "127.0.0.1").await.unwrap_err();
    let server_err = timeout(STEP, task).await.unwrap().unwrap().unwrap_err();
    eprintln!("client: {client_err}\nserver: {server_err}");
    let err = rustls_error(&server_err).unwrap();
    assert!(matches!(err, rustls::Error::PeerIncompatible(_)), "{err:?}");
    assert!(rustls_error(&client_err).is_some(), "{client_err}");
}

#[tokio::test]
async fn client_with_another_protocol_is_refused() {
    let pki = Pki::new();
    let server = tls::server_config(&pki.files("collector")).unwrap();
    let mut client = (*tls::client_config(&pki.files("dev1")).unwrap()).clone();
    client.alpn_protocols = vec![b"mamori-ship/0".to_vec()];
    let (addr, task) = serve_once(server).await;
    assert!(ping(Arc::new(client), addr, "127.0.0.1").await.is_err());
    let server_err = timeout(STEP, task).await.unwrap().unwrap().unwrap_err();
    let err = rustls_error(&server_err).unwrap();
    assert_eq!(*err, rustls::Error::NoApplicationProtocol);
}

fn ca_der(path: &Path) -> rustls::pki_types::CertificateDer<'static> {
    rustls::pki_types::CertificateDer::from_pem_file(path).unwrap()
}

#[test]
fn load_errors_name_the_file() {
    let pki = Pki::new();
    let good = pki.files("dev1");

    let mut files = good.clone();
    files.cert = pki.root.join("missing.pem");
    let err = tls::client_config(&files).unwrap_err();
    assert!(matches!(err, TlsError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let empty = pki.root.join("empty.pem");
    std::fs::write(&empty, "\n").unwrap();
    let mut files = good.clone();
    files.ca = empty;
    let err = tls::server_config(&files).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: empty file", pki.root.join("empty.pem").display())
    );

    let mut files = good.clone();
    files.key = good.cert.clone(); // a certificate where the key should be
    let err = tls::client_config(&files).unwrap_err().to_string();
    assert!(err.ends_with("dev1.pem: not a PEM private key"), "{err}");

    let mut files = good.clone();
    files.ca = good.key.clone();
    let err = tls::client_config(&files).unwrap_err().to_string();
    assert!(err.ends_with("dev1.key: not a PEM certificate"), "{err}");

    // dev1's certificate with collector's key.
    let mut files = good.clone();
    files.key = pki.files("collector").key;
    let err = tls::server_config(&files).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("collector.key: the key does not belong"),
        "{err}"
    );
}

#[test]
fn peer_name_is_the_certificate_name() {
    use rustls::pki_types::CertificateDer;
    let pki = Pki::new();
    let dev = ca_der(&pki.files("dev1").cert);
    assert_eq!(tls::peer_name_from_certs(&[dev]).unwrap(), "dev1");
    assert!(matches!(
        tls::peer_name_from_certs(&[]),
        Err(TlsError::NoPeerCertificate)
    ));
    assert!(tls::peer_name_from_certs(&[CertificateDer::from(vec![0x30, 0x00])]).is_err());
    // A collector's certificate has several names, the first DNS SAN is its own name.
    let col = ca_der(&pki.files("collector").cert);
    assert_eq!(tls::peer_name_from_certs(&[col]).unwrap(), "collector");
}
