//! Certificate tooling for shipping: a small private CA, device (client) and collector (server)
//! certificates, written as PEM files that [`crate::tls`] loads.
//!
//! The CA exists only to say "this key belongs to device NAME": the collector trusts nothing
//! else, so there is no public PKI involved. Every key is ECDSA P-256 (small, fast on a
//! gateway, supported by rustls' ring provider). Key files are created with mode 0600.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

/// File name of the CA certificate, in the CA directory and in every issued bundle.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA's private key (only in the CA directory).
pub const CA_KEY_FILE: &str = "ca.key";
/// Longest accepted device or collector name.
pub const MAX_NAME_LEN: usize = 64;

/// Margin subtracted from "now" for not-before, so a peer whose clock is a little behind still
/// accepts a freshly issued certificate.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// What an issued certificate is for; decides the extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A shipper: TLS client, EKU clientAuth only, SAN DNS = its name.
    Device,
    /// A collector: TLS server, EKU serverAuth only, SANs = its name and the extra names.
    Collector,
}

/// When a certificate is valid: from `not_before`, for `days` days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub days: u32,
}

impl Validity {
    /// `n` days starting 5 minutes ago (clock skew between device and collector).
    pub fn days(n: u32) -> Validity {
        Validity {
            not_before: SystemTime::now()
                .checked_sub(CLOCK_SKEW)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            days: n,
        }
    }

    /// Valid from 10 days ago until 1 day ago: an already-expired certificate, for tests
    /// of the expiry check.
    pub fn expired() -> Validity {
        Validity {
            not_before: SystemTime::now()
                .checked_sub(DAY * 10)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            days: 9,
        }
    }

    /// The first moment after the validity period.
    pub fn not_after(&self) -> SystemTime {
        self.not_before + DAY * self.days
    }
}

/// The files [`init_ca`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The files [`issue`] wrote: `ca` is the CA certificate in the output directory (the copy, or
/// the original when the output directory is the CA directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Certificate tooling errors; each names the file or the value that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("no CA in {}: run `mamori certs ca` first", .dir.display())]
    NoCa { dir: PathBuf },
    #[error("a CA already exists in {}: replacing it (--force) makes every certificate it issued untrusted", .dir.display())]
    CaExists { dir: PathBuf },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a PEM {what}", .path.display())]
    NotPem { path: PathBuf, what: &'static str },
    #[error("{}: {what}: {source}", .path.display())]
    Parse {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("{}: the key does not belong to the certificate {}", .key.display(), .cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("invalid name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("invalid subject alternative name {san:?}: {reason}")]
    BadSan { san: String, reason: String },
    #[error("validity of {days} days is out of range")]
    BadValidity { days: u32 },
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
}

/// Checks a device or collector name: 1..=64 characters of `[A-Za-z0-9._-]`, and not `ca`
/// (its files would overwrite the CA's). The name becomes a file name and the directory the
/// collector files the device's records under, so nothing else is allowed.
pub fn validate_name(name: &str) -> Result<(), CertError> {
    let bad = |reason: String| CertError::BadName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad(format!(
            "{} bytes long, at most {MAX_NAME_LEN}",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(bad(format!(
            "character {c:?} is not allowed (only A-Z a-z 0-9 . _ -)"
        )));
    }
    if name == "." || name == ".." {
        return Err(bad("not a usable file name".into()));
    }
    if name.eq_ignore_ascii_case("ca") {
        return Err(bad("reserved for the CA's own files".into()));
    }
    Ok(())
}

/// Creates a CA (ECDSA P-256) in `dir`: `ca.pem` and `ca.key` (0600). Refuses to replace an
/// existing CA unless `force`, since that silently revokes every certificate issued so far.
pub fn init_ca(dir: &Path, name: &str, days: u32, force: bool) -> Result<CaFiles, CertError> {
    let files = CaFiles {
        cert: dir.join(CA_CERT_FILE),
        key: dir.join(CA_KEY_FILE),
    };
    if !force && (files.cert.exists() || files.key.exists()) {
        return Err(CertError::CaExists {
            dir: dir.to_path_buf(),
        });
    }
    if name.is_empty() || name.len() > MAX_NAME_LEN * 2 {
        return Err(CertError::BadName {
            name: name.to_string(),
            reason: format!("a CA name has 1..={} bytes", MAX_NAME_LEN * 2),
        });
    }
    let validity = Validity::days(days);
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, validity)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
        CertError::Generate {
            what: "the CA key",
            source,
        }
    })?;
    let cert = params
        .self_signed(&key)
        .map_err(|source| CertError::Generate {
            what: "the CA certificate",
            source,
        })?;
    create_dir(dir)?;
    // Key first, so that an interrupted run never leaves a ca.pem whose key was not written.
    write_private(&files.key, key.serialize_pem().as_bytes())?;
    write_public(&files.cert, cert.pem().as_bytes())?;
    Ok(files)
}

/// Issues a device or collector certificate signed by the CA in `ca_dir`, writing
/// `out_dir/NAME.pem` (the leaf only) and `out_dir/NAME.key` (0600), and copying `ca.pem` into
/// `out_dir` so that it is a complete bundle. An existing NAME.pem/NAME.key is replaced
/// (renewal). `extra_sans` (DNS names or IP addresses) only apply to collectors.
pub fn issue(
    ca_dir: &Path,
    out_dir: &Path,
    role: Role,
    name: &str,
    extra_sans: &[String],
    validity: Validity,
) -> Result<IssuedFiles, CertError> {
    validate_name(name)?;
    let (ca_params, ca_key) = load_ca(ca_dir)?;

    let mut sans = vec![match role {
        Role::Device => SanType::DnsName(ia5(name)?),
        // A collector named by its address gets an IP SAN, which is what a client connecting
        // to that address checks.
        Role::Collector => parse_san(name)?,
    }];
    if role == Role::Collector {
        for san in extra_sans {
            let parsed = parse_san(san)?;
            if !sans.contains(&parsed) {
                sans.push(parsed);
            }
        }
    } else if let Some(san) = extra_sans.first() {
        // A device is known by exactly one name: the collector files its records under it.
        return Err(CertError::BadSan {
            san: san.clone(),
            reason: "a device certificate carries only the device name".into(),
        });
    }

    let mut params = CertificateParams::default();
    params.distinguished_name = dn(name);
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match role {
        Role::Device => ExtendedKeyUsagePurpose::ClientAuth,
        Role::Collector => ExtendedKeyUsagePurpose::ServerAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, validity)?;

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
        CertError::Generate {
            what: "the key",
            source,
        }
    })?;
    // rcgen signs with an issuer `Certificate`; re-signing the loaded CA params with the CA key
    // gives one with the same subject and key identifier, which is all signing uses.
    let issuer = ca_params
        .self_signed(&ca_key)
        .map_err(|source| CertError::Generate {
            what: "the issuer",
            source,
        })?;
    let cert = params
        .signed_by(&key, &issuer, &ca_key)
        .map_err(|source| CertError::Generate {
            what: "the certificate",
            source,
        })?;

    create_dir(out_dir)?;
    let files = IssuedFiles {
        ca: out_dir.join(CA_CERT_FILE),
        cert: out_dir.join(format!("{name}.pem")),
        key: out_dir.join(format!("{name}.key")),
    };
    write_private(&files.key, key.serialize_pem().as_bytes())?;
    write_public(&files.cert, cert.pem().as_bytes())?;
    let ca_src = ca_dir.join(CA_CERT_FILE);
    if !same_dir(ca_dir, out_dir) {
        let ca_pem = fs::read(&ca_src).map_err(|source| io(&ca_src, source))?;
        write_public(&files.ca, &ca_pem)?;
    }
    Ok(files)
}

/// Loads the CA certificate's parameters and its key, checking that they belong together.
fn load_ca(dir: &Path) -> Result<(CertificateParams, KeyPair), CertError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    if !cert_path.exists() && !key_path.exists() {
        return Err(CertError::NoCa {
            dir: dir.to_path_buf(),
        });
    }
    let cert_pem = read_string(&cert_path)?;
    let key_pem = read_string(&key_path)?;
    if !cert_pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(CertError::NotPem {
            path: cert_path,
            what: "certificate",
        });
    }
    if !key_pem.contains("PRIVATE KEY-----") {
        return Err(CertError::NotPem {
            path: key_path,
            what: "private key",
        });
    }
    let key = KeyPair::from_pem(&key_pem).map_err(|source| CertError::Parse {
        path: key_path.clone(),
        what: "unusable private key",
        source,
    })?;
    let params =
        CertificateParams::from_ca_cert_pem(&cert_pem).map_err(|source| CertError::Parse {
            path: cert_path.clone(),
            what: "unusable CA certificate",
            source,
        })?;
    // The certificate's public key must be the key's, or issued certificates would not chain.
    let spki_matches = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .ok()
        .and_then(|(_, pem)| {
            pem.parse_x509()
                .ok()
                .map(|c| c.public_key().raw == key.public_key_der().as_slice())
        })
        .unwrap_or(false);
    if !spki_matches {
        return Err(CertError::KeyMismatch {
            cert: cert_path,
            key: key_path,
        });
    }
    Ok((params, key))
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Validity) -> Result<(), CertError> {
    if validity.days == 0 || validity.days > 100 * 366 {
        return Err(CertError::BadValidity {
            days: validity.days,
        });
    }
    params.not_before = OffsetDateTime::from(validity.not_before);
    params.not_after = OffsetDateTime::from(validity.not_after());
    Ok(())
}

fn ia5(name: &str) -> Result<rcgen::Ia5String, CertError> {
    rcgen::Ia5String::try_from(name).map_err(|e| CertError::BadSan {
        san: name.to_string(),
        reason: e.to_string(),
    })
}

/// An IP address becomes an IP SAN (clients connecting by address match it), anything else a
/// DNS name of letters, digits, `.`, `-`, `_` (and a leading `*.` wildcard).
fn parse_san(san: &str) -> Result<SanType, CertError> {
    if let Ok(ip) = san.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let bad = |reason: String| CertError::BadSan {
        san: san.to_string(),
        reason,
    };
    let host = san.strip_prefix("*.").unwrap_or(san);
    if host.is_empty() || host.len() > 253 {
        return Err(bad("a DNS name has 1..=253 characters".into()));
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(bad(format!("character {c:?} is not allowed in a DNS name")));
    }
    Ok(SanType::DnsName(ia5(san)?))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn io(path: &Path, source: std::io::Error) -> CertError {
    CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|e| io(dir, e))
}

fn read_string(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|e| io(path, e))
}

fn write_public(path: &Path, data: &[u8]) -> Result<(), CertError> {
    fs::write(path, data).map_err(|e| io(path, e))
}

/// Writes a private key readable by its owner only. The mode is given at creation, so the key
/// is never briefly world-readable, and forced afterwards for a file that already existed.
fn write_private(path: &Path, data: &[u8]) -> Result<(), CertError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut file = opts.open(path).map_err(|e| io(path, e))?;
    #[cfg(unix)]
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| io(path, e))?;
    file.write_all(data).map_err(|e| io(path, e))?;
    file.sync_all().map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["dev1", "gw-01.site_a", "A", &"x".repeat(64)] {
            validate_name(ok).unwrap();
        }
        let err = validate_name("bad/name").unwrap_err().to_string();
        assert!(err.contains("'/'"), "{err}");
        let err = validate_name("caf\u{e9}").unwrap_err().to_string();
        assert!(err.contains("'\u{e9}'"), "{err}");
        assert!(validate_name("").is_err());
        assert!(validate_name(&"x".repeat(65)).is_err());
        assert!(validate_name("has space")
            .unwrap_err()
            .to_string()
            .contains("' '"));
        assert!(validate_name("..").is_err());
        assert!(validate_name("ca").is_err());
    }

    #[test]
    fn sans() {
        assert!(matches!(
            parse_san("127.0.0.1").unwrap(),
            SanType::IpAddress(_)
        ));
        assert!(matches!(parse_san("::1").unwrap(), SanType::IpAddress(_)));
        assert!(matches!(
            parse_san("localhost").unwrap(),
            SanType::DnsName(_)
        ));
        assert!(parse_san("a b").is_err());
        assert!(parse_san("").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_0600() {
        let dir = tempfile::tempdir().unwrap();
        let ca = init_ca(dir.path(), "test CA", 30, false).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ca.key), 0o600);
        let out = dir.path().join("dev1");
        let issued = issue(
            dir.path(),
            &out,
            Role::Device,
            "dev1",
            &[],
            Validity::days(1),
        )
        .unwrap();
        assert_eq!(mode(&issued.key), 0o600);
        // A key file that existed with wider permissions is tightened on renewal.
        fs::set_permissions(&issued.key, fs::Permissions::from_mode(0o644)).unwrap();
        let issued = issue(
            dir.path(),
            &out,
            Role::Device,
            "dev1",
            &[],
            Validity::days(1),
        )
        .unwrap();
        assert_eq!(mode(&issued.key), 0o600);
        assert!(issued.ca.exists());
    }

    #[test]
    fn ca_is_not_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let first = init_ca(dir.path(), "ca one", 30, false).unwrap();
        let before = fs::read(&first.cert).unwrap();
        let err = init_ca(dir.path(), "ca two", 30, false).unwrap_err();
        assert!(matches!(err, CertError::CaExists { .. }), "{err}");
        assert_eq!(fs::read(&first.cert).unwrap(), before);
        init_ca(dir.path(), "ca two", 30, true).unwrap();
        assert_ne!(fs::read(&first.cert).unwrap(), before);
    }

    #[test]
    fn issue_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let err = issue(
            dir.path(),
            dir.path(),
            Role::Device,
            "dev1",
            &[],
            Validity::days(1),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("run `mamori certs ca` first"), "{err}");

        init_ca(dir.path(), "ca", 30, false).unwrap();
        fs::write(dir.path().join(CA_KEY_FILE), "garbage").unwrap();
        let err = issue(
            dir.path(),
            dir.path(),
            Role::Device,
            "dev1",
            &[],
            Validity::days(1),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ca.key: not a PEM private key"), "{err}");

        // The key of another CA next to this ca.pem.
        let other = tempfile::tempdir().unwrap();
        init_ca(other.path(), "other", 30, false).unwrap();
        fs::copy(other.path().join(CA_KEY_FILE), dir.path().join(CA_KEY_FILE)).unwrap();
        let err = issue(
            dir.path(),
            dir.path(),
            Role::Device,
            "dev1",
            &[],
            Validity::days(1),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not belong"), "{err}");
    }

    #[test]
    fn issued_certificates_carry_role_and_names() {
        use x509_parser::pem::parse_x509_pem;
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "ca", 30, false).unwrap();
        let sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let files = issue(
            dir.path(),
            dir.path(),
            Role::Collector,
            "collector",
            &sans,
            Validity::days(2),
        )
        .unwrap();
        let pem = fs::read(&files.cert).unwrap();
        // Leaf only: exactly one certificate in NAME.pem.
        assert_eq!(
            String::from_utf8_lossy(&pem)
                .matches("BEGIN CERTIFICATE")
                .count(),
            1
        );
        let (_, pem) = parse_x509_pem(&pem).unwrap();
        let cert = pem.parse_x509().unwrap();
        let cn: Vec<_> = cert.subject().iter_common_name().collect();
        assert_eq!(cn[0].as_str().unwrap(), "collector");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let names = &cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        assert_eq!(names.len(), 3);

        let err = issue(
            dir.path(),
            dir.path(),
            Role::Device,
            "dev1",
            &sans,
            Validity::days(2),
        )
        .unwrap_err();
        assert!(matches!(err, CertError::BadSan { .. }));
    }
}
