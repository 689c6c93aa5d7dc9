//! The shipping protocol, inside TLS: length-prefixed frames.
//!
//! ```text
//! frame = len:u32le (of type + body) type:u8 body
//! ```
//!
//! The device opens with `Hello` (its chain's fingerprint, and the first key while it has not
//! been confirmed); the collector answers `Welcome` with the last sequence number it has stored
//! (where sending resumes) or `Refused`. Then the device streams `Records` frames (sealed
//! records back to back, [`mamori_seal::codec`]) and the collector answers each with `Ack`
//! (everything through that sequence number is stored on disk). Several frames may be in
//! flight. Who the device is comes from its certificate, never from the frames.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Protocol version in `Hello`.
pub const VERSION: u32 = 1;
/// Largest frame accepted (a batch of records).
pub const MAX_FRAME: usize = 16 << 20;

/// Frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// Device → collector: JSON [`Hello`].
    Hello = 1,
    /// Collector → device: JSON [`Welcome`].
    Welcome = 2,
    /// Device → collector: sealed records.
    Records = 3,
    /// Collector → device: u64le, stored through this sequence number.
    Ack = 4,
    /// Collector → device: JSON [`Refused`], then the connection closes.
    Refused = 5,
}

impl FrameType {
    fn from_byte(b: u8) -> Option<FrameType> {
        Some(match b {
            1 => FrameType::Hello,
            2 => FrameType::Welcome,
            3 => FrameType::Records,
            4 => FrameType::Ack,
            5 => FrameType::Refused,
            _ => return None,
        })
    }
}

/// The device's opening.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// [`VERSION`].
    pub version: u32,
    /// Hex SHA-256 name of the chain's first key.
    pub fingerprint: String,
    /// Hex first key: sent only until the collector has confirmed it holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_key: Option<String>,
    /// The oldest record still in the device's spool.
    pub oldest: u64,
    /// The last record sealed.
    pub committed: u64,
    /// Software that sends.
    pub agent: String,
}

/// The collector's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Welcome {
    /// The device name the collector files this chain under (from the certificate).
    pub device: String,
    /// Last sequence number stored (0: none): sending resumes after it.
    pub stored_through: u64,
    /// The collector holds the chain's first key: the device may erase its copy.
    pub enrolled: bool,
}

/// Why the collector will not take this device's records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refused {
    /// For a human.
    pub reason: String,
}

/// A protocol failure.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The connection failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// A frame over [`MAX_FRAME`].
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// An unknown frame type or an empty frame.
    #[error("unknown frame type {0}")]
    BadType(u8),
    /// A frame of the wrong type here.
    #[error("expected a {expected:?} frame, got {got:?}")]
    Unexpected {
        /// What the protocol expects now.
        expected: FrameType,
        /// What came.
        got: FrameType,
    },
    /// A JSON body that does not parse.
    #[error("bad {what} frame: {why}")]
    BadBody {
        /// Which frame.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// The peer refused.
    #[error("refused by the collector: {0}")]
    Refused(String),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    ty: FrameType,
    body: &[u8],
) -> Result<(), ProtoError> {
    let len = u32::try_from(body.len() + 1).map_err(|_| ProtoError::TooLarge(body.len()))?;
    if body.len() + 1 > MAX_FRAME {
        return Err(ProtoError::TooLarge(body.len() + 1));
    }
    let mut head = [0u8; 5];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4] = ty as u8;
    w.write_all(&head).await?;
    w.write_all(body).await?;
    Ok(())
}

/// Writes a JSON frame.
pub async fn write_json<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    ty: FrameType,
    body: &T,
) -> Result<(), ProtoError> {
    let bytes = serde_json::to_vec(body).expect("protocol bodies serialise");
    write_frame(w, ty, &bytes).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame into `buf` (reused); its type. `Closed` at a clean end between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<FrameType, ProtoError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(ProtoError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::TooLarge(len));
    }
    if len == 0 {
        return Err(ProtoError::BadType(0));
    }
    let mut ty = [0u8; 1];
    r.read_exact(&mut ty).await?;
    let ty = FrameType::from_byte(ty[0]).ok_or(ProtoError::BadType(ty[0]))?;
    buf.clear();
    buf.resize(len - 1, 0);
    r.read_exact(buf).await?;
    Ok(ty)
}

/// Parses a JSON frame body.
pub fn parse_json<T: for<'a> Deserialize<'a>>(
    what: &'static str,
    body: &[u8],
) -> Result<T, ProtoError> {
    serde_json::from_slice(body).map_err(|e| ProtoError::BadBody {
        what,
        why: e.to_string(),
    })
}

/// Reads the next frame, which must be `expected` (a `Refused` instead becomes the error).
pub async fn expect_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    expected: FrameType,
) -> Result<(), ProtoError> {
    let got = read_frame(r, buf).await?;
    if got == FrameType::Refused && expected != FrameType::Refused {
        let why: Refused = parse_json("refused", buf)?;
        return Err(ProtoError::Refused(why.reason));
    }
    if got != expected {
        return Err(ProtoError::Unexpected { expected, got });
    }
    Ok(())
}

/// An `Ack` body.
pub fn ack_body(seq: u64) -> [u8; 8] {
    seq.to_le_bytes()
}

/// Parses an `Ack` body.
pub fn parse_ack(body: &[u8]) -> Result<u64, ProtoError> {
    let b: [u8; 8] = body.try_into().map_err(|_| ProtoError::BadBody {
        what: "ack",
        why: format!("{} bytes, not 8", body.len()),
    })?;
    Ok(u64::from_le_bytes(b))
}
