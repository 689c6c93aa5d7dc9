//! The evolving MAC key.

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// Length of a key.
pub const KEY_LEN: usize = 32;

/// A sealing key; zeroed when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A key from its bytes (the first key comes from the device's random source).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// The key's bytes (to persist the current key, or hand the first one to the verifier).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The next key: one-way, so a key says nothing about the ones before it.
    pub fn evolve(&self) -> Key {
        let mut h = Sha256::new();
        h.update(b"mamori-seal evolve v1");
        h.update(self.0);
        Key(h.finalize().into())
    }

    /// The key `steps` positions later.
    pub fn evolve_by(&self, steps: u64) -> Key {
        let mut k = self.clone();
        for _ in 0..steps {
            k = k.evolve();
        }
        k
    }

    /// A public name for a chain's first key (SHA-256 of it, domain-separated), so a collector
    /// and a device can tell whether they speak of the same chain without showing the key.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"mamori-seal fingerprint v1");
        h.update(self.0);
        h.finalize().into()
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Key(..)")
    }
}
