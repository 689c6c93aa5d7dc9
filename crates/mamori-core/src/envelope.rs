//! Model files: a versioned envelope around a JSON body, with a SHA-256 checksum of the body.
//! Every detector file — system-call models and network detectors — uses it.
//!
//! ```text
//! {"format":"mamori-model","kind":"syscall","version":1,"checksum":"sha256:…","body":{…}}
//! ```
//!
//! The body is hashed exactly as written (it is read back as raw text, never re-serialised), so a
//! changed byte — a hand edit, a truncated copy — is an error at load time rather than a model
//! that silently scores differently.

use std::path::Path;

use crate::output::SymlinkPolicy;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// The `format` field of every model file.
pub const FORMAT: &str = "mamori-model";
/// The body layout version this build writes and reads.
pub const VERSION: u32 = 1;

/// What a model file holds: each kind has its own body layout and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A system-call window model (`mamori train`, `mamori learn`).
    Syscall,
    /// A network detector (`mamori net train`).
    Net,
}

impl ModelKind {
    fn command(self) -> &'static str {
        match self {
            ModelKind::Syscall => "`mamori train` / `mamori learn`",
            ModelKind::Net => "`mamori net train`",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Syscall => "system-call model",
            ModelKind::Net => "network detector",
        })
    }
}

fn syscall_kind() -> ModelKind {
    // files from before network detectors shared the envelope hold system-call models
    ModelKind::Syscall
}

#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    format: String,
    #[serde(default = "syscall_kind")]
    kind: ModelKind,
    version: u32,
    checksum: String,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// Why a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not a mamori model file, or damaged JSON.
    #[error("{path}: not a mamori model file: {message}")]
    NotAModel {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// A model of another kind (a network detector given to a system-call command, or back).
    #[error("{path}: this is a {found}, not a {expected}; it was written by {}", found.command())]
    WrongKind {
        /// The file.
        path: String,
        /// Kind in the file.
        found: ModelKind,
        /// Kind wanted.
        expected: ModelKind,
    },
    /// Written by another body version.
    #[error("{path}: model file version {found}, this mamori reads version {expected}; retrain the model")]
    Version {
        /// The file.
        path: String,
        /// Version in the file.
        found: u32,
        /// Version supported.
        expected: u32,
    },
    /// The body does not match its checksum.
    #[error("{path}: checksum mismatch (file says {stored}, body hashes to {actual}); the file was changed or truncated")]
    Checksum {
        /// The file.
        path: String,
        /// Checksum in the envelope.
        stored: String,
        /// Checksum of the body as read.
        actual: String,
    },
    /// Writing the model file failed (see [`crate::output`]).
    #[error(transparent)]
    Output(Box<crate::output::OutputError>),
}

fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Serialises `body` into a model file's text.
pub fn to_string<T: Serialize>(kind: ModelKind, body: &T) -> Result<String, serde_json::Error> {
    let text = serde_json::to_string(body)?;
    let raw = RawValue::from_string(text)?;
    let env = Envelope {
        format: FORMAT.to_string(),
        kind,
        version: VERSION,
        checksum: checksum(raw.get()),
        body: &raw,
    };
    serde_json::to_string(&env)
}

/// Parses a model file's text, checking format, kind, version and checksum; `path` names it in
/// errors.
pub fn from_str<T: DeserializeOwned>(
    kind: ModelKind,
    text: &str,
    path: &str,
) -> Result<T, ModelFileError> {
    let not_a_model = |message: String| ModelFileError::NotAModel {
        path: path.to_string(),
        message,
    };
    let env: Envelope = serde_json::from_str(text).map_err(|e| not_a_model(e.to_string()))?;
    if env.format != FORMAT {
        return Err(not_a_model(format!("format is `{}`", env.format)));
    }
    if env.kind != kind {
        return Err(ModelFileError::WrongKind {
            path: path.to_string(),
            found: env.kind,
            expected: kind,
        });
    }
    if env.version != VERSION {
        return Err(ModelFileError::Version {
            path: path.to_string(),
            found: env.version,
            expected: VERSION,
        });
    }
    let actual = checksum(env.body.get());
    if actual != env.checksum {
        return Err(ModelFileError::Checksum {
            path: path.to_string(),
            stored: env.checksum,
            actual,
        });
    }
    serde_json::from_str(env.body.get()).map_err(|e| not_a_model(format!("body: {e}")))
}

/// Writes a model file (to a temporary name first, so a crash never leaves half a model; see
/// [`crate::output`] for FIFOs, devices and symbolic links, which are refused here).
pub fn save<T: Serialize>(path: &Path, kind: ModelKind, body: &T) -> Result<(), ModelFileError> {
    save_with(path, kind, body, SymlinkPolicy::Refuse)
}

/// [`save`] with a choice for an output path that is a symbolic link.
pub fn save_with<T: Serialize>(
    path: &Path,
    kind: ModelKind,
    body: &T,
    symlinks: SymlinkPolicy,
) -> Result<(), ModelFileError> {
    let text = to_string(kind, body).map_err(|e| ModelFileError::NotAModel {
        path: path.display().to_string(),
        message: format!("cannot serialise: {e}"),
    })?;
    crate::output::write_output(path, text.as_bytes(), symlinks)
        .map_err(|e| ModelFileError::Output(Box::new(e)))
}

/// Reads and checks a model file.
pub fn load<T: DeserializeOwned>(path: &Path, kind: ModelKind) -> Result<T, ModelFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    from_str(kind, &text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Body {
        weights: Vec<f64>,
        name: String,
    }

    #[test]
    fn round_trip_and_tamper_detection() {
        let body = Body {
            weights: vec![0.1, 1e-300, -3.5, f64::MAX],
            name: "hmm".into(),
        };
        let k = ModelKind::Syscall;
        let text = to_string(k, &body).unwrap();
        assert_eq!(from_str::<Body>(k, &text, "m").unwrap(), body);
        let tampered = text.replace("-3.5", "-3.6");
        assert!(matches!(
            from_str::<Body>(k, &tampered, "m"),
            Err(ModelFileError::Checksum { .. })
        ));
        let old = text.replace("\"version\":1", "\"version\":0");
        assert!(matches!(
            from_str::<Body>(k, &old, "m"),
            Err(ModelFileError::Version { found: 0, .. })
        ));
        let err = from_str::<Body>(k, "{\"weights\":[]}", "x.json").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("x.json: not a mamori model file"));
        let net = from_str::<Body>(ModelKind::Net, &text, "m.model").unwrap_err();
        assert!(matches!(net, ModelFileError::WrongKind { .. }));
        assert!(net.to_string().contains("system-call model"), "{net}");
        // files written before the kind was recorded are system-call models
        let old = text.replace("\"kind\":\"syscall\",", "");
        assert_ne!(old, text);
        assert_eq!(from_str::<Body>(k, &old, "m").unwrap(), body);
    }
}
