//! Gzip input that ends, rather than fails, where the compressed stream is cut short or corrupt,
//! and notes where: the reader then keeps every record that decompressed and reports the damage
//! (lenient) or names the packet it cut (strict). Errors of the underlying reader stay errors.

use std::io::{self, BufReader, Read};
use std::sync::{Arc, Mutex};

use flate2::bufread::MultiGzDecoder;

/// Where and how a gzip stream broke.
#[derive(Debug, Clone)]
pub(crate) struct GzDamage {
    /// Compressed bytes the decoder had taken when it failed.
    pub(crate) compressed_offset: u64,
    /// Whether the stream simply ends early (else its data is corrupt).
    pub(crate) truncated: bool,
    /// The decoder's message, stripped of control characters.
    pub(crate) message: String,
}

/// Shared between the decoder (which notes the damage) and the reader (which reports it).
pub(crate) type DamageSlot = Arc<Mutex<Option<GzDamage>>>;

/// Counts the compressed bytes read and remembers whether the source itself failed.
struct Counting {
    inner: Box<dyn Read + Send>,
    read: u64,
    failed: bool,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = true;
                }
                Err(e)
            }
        }
    }
}

/// Decompresses `inner` (gzip, possibly several members); see the module docs.
pub(crate) struct GzReader {
    dec: MultiGzDecoder<BufReader<Counting>>,
    damage: DamageSlot,
    ended: bool,
}

impl GzReader {
    pub(crate) fn new(inner: Box<dyn Read + Send>, damage: DamageSlot) -> Self {
        let counting = Counting {
            inner,
            read: 0,
            failed: false,
        };
        GzReader {
            dec: MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counting)),
            damage,
            ended: false,
        }
    }
}

impl Read for GzReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        match self.dec.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let src = self.dec.get_ref();
                if src.get_ref().failed {
                    return Err(e);
                }
                let compressed_offset = src.get_ref().read - src.buffer().len() as u64;
                // A cut stream shows as UnexpectedEof, or as a decoder error once the source
                // has nothing more to give.
                let truncated = e.kind() == io::ErrorKind::UnexpectedEof;
                let message: String = e
                    .to_string()
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .take(200)
                    .collect();
                if let Ok(mut slot) = self.damage.lock() {
                    *slot = Some(GzDamage {
                        compressed_offset,
                        truncated,
                        message,
                    });
                }
                self.ended = true;
                Ok(0)
            }
        }
    }
}
