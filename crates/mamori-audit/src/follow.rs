//! Live input: a log file followed like `tail -F` ([`Follow`], [`follow_path`]) and the audisp
//! `af_unix` plugin's socket ([`Audisp`], [`connect_audisp`]).
//!
//! Both are blocking [`Read`]ers that an [`AuditReader`] turns into events: they return data as
//! it comes, `WouldBlock` once when the input has been quiet for
//! [`FollowOptions::quiet_after`] (so the reader flushes events still open), and end-of-input
//! once stopped through a [`StopHandle`].
//!
//! Rotation: auditd renames `audit.log` to `audit.log.1` and creates a new `audit.log`. The
//! follower notices a different file (device and inode) at the path once it has read the old
//! one to its end, reads whatever the old one still got, then reads the new one from its start.
//! Truncation (the file shorter than what was read, as `copytruncate` leaves it) restarts at 0.
//!
//! The audisp plugin is configured in `/etc/audit/plugins.d/af_unix.conf` with
//! `args = 0640 /var/run/audispd_events string`; it sends the same lines as the log. When auditd
//! restarts, the socket closes and the reader reconnects every poll interval.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::reader::{AuditReader, ReaderOptions};

/// The audisp `af_unix` plugin's default socket.
pub const AUDISP_SOCKET: &str = "/var/run/audispd_events";

/// Asks a follower to end: shared, cloneable, checked every poll interval.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A handle not yet stopped.
    pub fn new() -> StopHandle {
        StopHandle::default()
    }

    /// Asks the follower to finish: it reads what is already there, then ends.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl From<Arc<AtomicBool>> for StopHandle {
    fn from(flag: Arc<AtomicBool>) -> StopHandle {
        StopHandle(flag)
    }
}

/// Where following a file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// At the file's start (files that appear later are always read from their start).
    Beginning,
    /// At the file's current end: only what is written from now on.
    #[default]
    End,
    /// Where an earlier run stopped ([`Follow::position`]): in the file at the path if it is
    /// still the same file, else in the rotated `PATH.1` if that is it (read to its end, then
    /// the new file from its start), else at the start of the file now at the path
    /// ([`Follow::resumed`] tells which).
    At(FilePos),
}

/// A position in a followed file: which file (device, inode) and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilePos {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Bytes of it already read.
    pub offset: u64,
}

/// How a [`Start::At`] resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// Not asked to resume.
    NotAsked,
    /// In the same file, at the saved offset.
    SameFile,
    /// In the rotated file (`PATH.1`), at the saved offset.
    RotatedFile,
    /// The saved file is gone (rotated twice, or deleted) or shorter than the offset: started
    /// at the current file's start; what was written in between may be lost.
    Lost,
}

/// How to follow.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// How often to look for new data, a rotated file or a stop when there is nothing to read.
    pub poll: Duration,
    /// After this long with no data, open events are flushed (reported once per quiet spell).
    pub quiet_after: Duration,
    /// Where to start in the file followed first.
    pub start: Start,
    /// Ends the follower.
    pub stop: StopHandle,
    /// Line and grouping limits.
    pub reader: ReaderOptions,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            poll: Duration::from_millis(200),
            quiet_after: Duration::from_secs(1),
            start: Start::End,
            stop: StopHandle::new(),
            reader: ReaderOptions::default(),
        }
    }
}

/// Tells a quiet spell once: `WouldBlock` when it has lasted long enough.
#[derive(Debug)]
struct Quiet {
    after: Duration,
    since: Instant,
    told: bool,
}

impl Quiet {
    fn new(after: Duration) -> Quiet {
        Quiet {
            after,
            since: Instant::now(),
            told: false,
        }
    }

    fn data(&mut self) {
        self.since = Instant::now();
        self.told = false;
    }

    fn check(&mut self) -> io::Result<()> {
        if !self.told && self.since.elapsed() >= self.after {
            self.told = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

/// A log file followed across rotation and truncation; see the module docs.
#[derive(Debug)]
pub struct Follow {
    path: PathBuf,
    file: Option<File>,
    id: Option<(u64, u64)>,
    pos: u64,
    poll: Duration,
    quiet: Quiet,
    stop: StopHandle,
    rotations: u64,
    truncations: u64,
    /// Started at the end of a file whose last line was still being written: its rest is not a
    /// whole line, so it is dropped up to the next newline.
    skip_partial: bool,
    resumed: Resumed,
}

impl Follow {
    /// Follows `path`; it need not exist yet (it is read from its start when it appears).
    pub fn open(path: impl AsRef<Path>, opts: &FollowOptions) -> io::Result<Follow> {
        let path = path.as_ref().to_path_buf();
        let mut f = Follow {
            path,
            file: None,
            id: None,
            pos: 0,
            poll: opts.poll.max(Duration::from_millis(1)),
            quiet: Quiet::new(opts.quiet_after),
            stop: opts.stop.clone(),
            rotations: 0,
            truncations: 0,
            skip_partial: false,
            resumed: Resumed::NotAsked,
        };
        if let Start::At(at) = opts.start {
            f.resume(at)?;
            return Ok(f);
        }
        match File::open(&f.path) {
            Ok(mut file) => {
                let m = file.metadata()?;
                f.id = Some((m.dev(), m.ino()));
                if opts.start == Start::End {
                    f.pos = file.seek(SeekFrom::End(0))?;
                    if f.pos > 0 {
                        let mut last = [0u8; 1];
                        file.seek(SeekFrom::End(-1))?;
                        file.read_exact(&mut last)?;
                        f.skip_partial = last[0] != b'\n';
                    }
                }
                f.file = Some(file);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(f)
    }

    /// Opens the saved file (at the path or rotated beside it) at its saved offset.
    fn resume(&mut self, at: FilePos) -> io::Result<()> {
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(".1");
        for (candidate, how) in [
            (self.path.clone(), Resumed::SameFile),
            (PathBuf::from(rotated), Resumed::RotatedFile),
        ] {
            let Ok(mut file) = File::open(&candidate) else {
                continue;
            };
            let m = file.metadata()?;
            if (m.dev(), m.ino()) == (at.dev, at.ino) && m.len() >= at.offset {
                self.pos = file.seek(SeekFrom::Start(at.offset))?;
                self.id = Some((at.dev, at.ino));
                self.file = Some(file);
                self.resumed = how;
                return Ok(());
            }
        }
        self.resumed = Resumed::Lost;
        match File::open(&self.path) {
            Ok(file) => {
                let m = file.metadata()?;
                self.id = Some((m.dev(), m.ino()));
                self.file = Some(file);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The file being read and how far: where a later run can resume ([`Start::At`]). None
    /// before any file exists.
    pub fn position(&self) -> Option<FilePos> {
        self.id.map(|(dev, ino)| FilePos {
            dev,
            ino,
            offset: self.pos,
        })
    }

    /// How a [`Start::At`] resumed.
    pub fn resumed(&self) -> Resumed {
        self.resumed
    }

    /// Times a new file replaced the followed one.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Times the followed file was found truncated.
    pub fn truncations(&self) -> u64 {
        self.truncations
    }

    /// The stop handle this follower checks.
    pub fn stop_handle(&self) -> &StopHandle {
        &self.stop
    }

    fn read_current(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(f) = self.file.as_mut() else {
            return Ok(0);
        };
        let n = loop {
            match f.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        self.pos += n as u64;
        if n > 0 {
            self.quiet.data();
        }
        Ok(n)
    }

    /// At the end of the current file: a rotation or truncation to act on? Returns true when
    /// there is something new to read.
    fn check_path(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let m = match fs::metadata(&self.path) {
            Ok(m) => m,
            // Between the rename and the new file's creation: keep the old one.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let id = (m.dev(), m.ino());
        if self.id != Some(id) {
            // Whatever reached the old file between our last read and the rename comes first.
            let n = self.read_current(buf)?;
            if n > 0 {
                return Ok(Some(n));
            }
            let file = match File::open(&self.path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            // The id of what was opened, in case the path changed again in between.
            let m = file.metadata()?;
            self.skip_partial = false;
            if self.file.is_some() {
                self.rotations += 1;
            }
            self.id = Some((m.dev(), m.ino()));
            self.file = Some(file);
            self.pos = 0;
            return Ok(Some(0));
        }
        if m.len() < self.pos {
            if let Some(f) = self.file.as_mut() {
                f.seek(SeekFrom::Start(0))?;
            }
            self.pos = 0;
            self.truncations += 1;
            return Ok(Some(0));
        }
        Ok(None)
    }
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut n = self.read_current(buf)?;
            if self.skip_partial && n > 0 {
                match memchr::memchr(b'\n', &buf[..n]) {
                    Some(i) => {
                        self.skip_partial = false;
                        buf.copy_within(i + 1..n, 0);
                        n -= i + 1;
                    }
                    None => n = 0,
                }
                if n == 0 {
                    continue;
                }
            }
            if n > 0 {
                return Ok(n);
            }
            match self.check_path(buf)? {
                Some(0) => continue,
                Some(n) => return Ok(n),
                None => {}
            }
            // Stopped: everything written so far has been read.
            if self.stop.is_stopped() {
                return Ok(0);
            }
            self.quiet.check()?;
            std::thread::sleep(self.poll);
        }
    }
}

/// Follows a log file (see [`Follow`]): a blocking iterator of events that ends once
/// `opts.stop` is stopped and the file is read to its end.
pub fn follow_path(
    path: impl AsRef<Path>,
    opts: FollowOptions,
) -> io::Result<AuditReader<BufReader<Follow>>> {
    let follow = Follow::open(path, &opts)?;
    Ok(AuditReader::with_options(
        BufReader::with_capacity(64 << 10, follow),
        opts.reader,
    ))
}

/// The audisp `af_unix` plugin's socket, reconnected when auditd restarts; see the module docs.
#[derive(Debug)]
pub struct Audisp {
    path: PathBuf,
    stream: Option<UnixStream>,
    poll: Duration,
    quiet: Quiet,
    stop: StopHandle,
    reconnects: u64,
}

impl Audisp {
    /// Connects to the socket at `path` (an error if it cannot now; later drops reconnect).
    pub fn connect(path: impl AsRef<Path>, opts: &FollowOptions) -> io::Result<Audisp> {
        let poll = opts.poll.max(Duration::from_millis(1));
        let path = path.as_ref().to_path_buf();
        let stream = Self::dial(&path, poll)?;
        Ok(Audisp {
            path,
            stream: Some(stream),
            poll,
            quiet: Quiet::new(opts.quiet_after),
            stop: opts.stop.clone(),
            reconnects: 0,
        })
    }

    fn dial(path: &Path, poll: Duration) -> io::Result<UnixStream> {
        let s = UnixStream::connect(path)?;
        // Reads wake up every poll interval to check the stop flag.
        s.set_read_timeout(Some(poll))?;
        Ok(s)
    }

    /// Times the connection was re-established.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }
}

impl Read for Audisp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.stop.is_stopped() {
                return Ok(0);
            }
            let Some(stream) = self.stream.as_mut() else {
                match Self::dial(&self.path, self.poll) {
                    Ok(s) => {
                        self.stream = Some(s);
                        self.reconnects += 1;
                    }
                    Err(_) => {
                        self.quiet.check()?;
                        std::thread::sleep(self.poll);
                    }
                }
                continue;
            };
            match stream.read(buf) {
                Ok(0) => self.stream = None,
                Ok(n) => {
                    self.quiet.data();
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.quiet.check()?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset connection is auditd going away: reconnect.
                Err(_) => self.stream = None,
            }
        }
    }
}

/// Reads events from the audisp `af_unix` plugin socket (`/var/run/audispd_events` by default,
/// [`AUDISP_SOCKET`]) until `opts.stop` is stopped.
pub fn connect_audisp(
    path: impl AsRef<Path>,
    opts: FollowOptions,
) -> io::Result<AuditReader<BufReader<Audisp>>> {
    let audisp = Audisp::connect(path, &opts)?;
    Ok(AuditReader::with_options(
        BufReader::with_capacity(64 << 10, audisp),
        opts.reader,
    ))
}
