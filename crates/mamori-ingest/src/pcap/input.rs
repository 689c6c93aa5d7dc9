//! A refillable window over the input, so records can be handed out as slices of one buffer.
//!
//! `std::io::BufReader` cannot hand out a contiguous record that straddles two refills; this
//! window compacts the unread tail to the front and reads more behind it, so a record is always
//! one slice and the reader never copies packet bytes or allocates per packet.

use std::io::{self, Read};

/// Bytes read from the input per `read` call (and the initial window size).
pub(crate) const WINDOW: usize = 1 << 20;

pub(crate) struct Input {
    inner: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// First unread byte.
    pos: usize,
    /// End of the bytes read so far.
    end: usize,
    /// Absolute file offset of `buf[0]`.
    base: u64,
    /// The reader has returned 0: no more bytes will come.
    eof: bool,
}

impl Input {
    pub(crate) fn new(inner: Box<dyn Read + Send>) -> Self {
        Input {
            inner,
            buf: vec![0; WINDOW],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// Swaps the underlying reader, dropping anything buffered (used once, to wrap gzip input
    /// after its magic was seen).
    pub(crate) fn take_buffered_and_inner(&mut self) -> (Vec<u8>, Box<dyn Read + Send>) {
        let buffered = self.buf[self.pos..self.end].to_vec();
        self.pos = 0;
        self.end = 0;
        self.eof = false;
        let inner = std::mem::replace(&mut self.inner, Box::new(io::empty()));
        (buffered, inner)
    }

    pub(crate) fn set_inner(&mut self, inner: Box<dyn Read + Send>) {
        self.inner = inner;
    }

    /// Absolute offset of the next unread byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Buffered, unread bytes.
    #[inline]
    pub(crate) fn available(&self) -> usize {
        self.end - self.pos
    }

    /// Makes at least `n` unread bytes available; `Ok(false)` when the input ends first (what
    /// there is stays available).
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.pos >= n {
            return Ok(true);
        }
        self.fill_slow(n)
    }

    #[cold]
    fn fill_slow(&mut self, n: usize) -> io::Result<bool> {
        // Past the end nothing is read, and nothing is moved: resynchronising asks for a large
        // `n` at every byte near the end of a file.
        if self.eof {
            return Ok(false);
        }
        if self.pos + n > self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
            if n > self.buf.len() / 2 {
                // A window of `n` plus slack, so that asking for `n` bytes a byte further on
                // (resynchronising) does not move everything again. Callers bound `n` (record
                // and block maxima), so this stays bounded.
                self.buf.resize(self.buf.len().max(n + WINDOW), 0);
            }
        }
        while self.end - self.pos < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The next `n` unread bytes; `n` must not exceed [`Input::available`].
    #[inline]
    pub(crate) fn peek(&self, n: usize) -> &[u8] {
        &self.buf[self.pos..self.pos + n]
    }

    /// Index in the window of the next unread byte (valid until the next `fill`).
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// `len` bytes at window index `start`, as returned by [`Input::pos`] before consuming them.
    #[inline]
    pub(crate) fn slice(&self, start: usize, len: usize) -> &[u8] {
        &self.buf[start..start + len]
    }

    /// Marks `n` available bytes as read.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.available());
        self.pos += n;
    }

    /// Discards `n` bytes without keeping them; returns how many there were before the input
    /// ended.
    pub(crate) fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut left = n;
        loop {
            let here = (self.available() as u64).min(left);
            self.pos += here as usize;
            left -= here;
            if left == 0 {
                return Ok(n);
            }
            self.base += self.end as u64;
            self.pos = 0;
            self.end = 0;
            match self.inner.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(n - left);
                }
                Ok(k) => self.end = k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads a `u16` at `at` in the given byte order (`at + 2` must be in bounds).
#[inline]
pub(crate) fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    let v = [b[at], b[at + 1]];
    if big {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

/// Reads a `u32` at `at` in the given byte order (`at + 4` must be in bounds).
#[inline]
pub(crate) fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `chunk` bytes per read, to exercise refills and compaction.
    struct Dribble {
        data: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Dribble {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(out.len()).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn fill_compacts_grows_and_skips() {
        let data: Vec<u8> = (0..3 * WINDOW + 7).map(|i| (i % 251) as u8).collect();
        let mut input = Input::new(Box::new(Dribble {
            data: data.clone(),
            at: 0,
            chunk: 1000,
        }));
        assert!(input.fill(10).unwrap());
        assert_eq!(input.peek(3), &data[..3]);
        assert!(input.fill(WINDOW - 5).unwrap());
        input.consume(WINDOW - 5);
        // Straddles the end of the window: compacts.
        assert!(input.fill(100).unwrap());
        assert_eq!(input.offset(), (WINDOW - 5) as u64);
        assert_eq!(input.peek(100), &data[WINDOW - 5..WINDOW + 95]);
        // Larger than the window: grows.
        assert!(input.fill(WINDOW + 10).unwrap());
        assert_eq!(input.peek(WINDOW + 10)[WINDOW + 9], data[2 * WINDOW + 4]);
        assert_eq!(input.skip(WINDOW as u64 + 12).unwrap(), WINDOW as u64 + 12);
        assert_eq!(input.offset(), (2 * WINDOW + 7) as u64);
        assert!(input.fill(1).unwrap());
        assert_eq!(input.peek(1)[0], data[2 * WINDOW + 7]);
        let rest = (data.len() - (2 * WINDOW + 7)) as u64;
        assert_eq!(input.skip(rest + 5).unwrap(), rest);
        assert!(!input.fill(1).unwrap());
        assert_eq!(input.available(), 0);
    }
}
