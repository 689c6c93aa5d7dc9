//! The device's on-disk spool: records are sealed the moment they are read and appended here;
//! the shipper sends from here and deletes only what the collector acknowledged.
//!
//! Layout of the spool directory:
//! - `spool-<first seq>.mrl`: sealed records in [`mamori_seal::codec`] layout;
//! - `state.json` (0600): the sealer's state (next position, the *current* key, last tag), the
//!   first key until the collector confirms it holds it, and each source's read position — all
//!   written together, atomically, after the records they cover are on disk;
//! - `acked.json`: the last sequence number the collector acknowledged.
//!
//! Crash safety: records are appended, then `state.json` is replaced. After a crash, records
//! past the saved state were never handed to the sender; they are cut off and read again from
//! the sources at the saved positions, sealed again with the same keys (the keys for those
//! positions were never erased from disk).

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mamori_audit::FilePos;
use mamori_seal::{codec, Header, Key, Kind, Sealer, SealerState, Tag, HEADER_LEN, KEY_LEN};
use serde::{Deserialize, Serialize};

/// Spool limits.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// Intake pauses when unacknowledged records take this many bytes (the sources keep the
    /// rest; an alert says so).
    pub max_bytes: u64,
    /// A new segment file starts past this size (acknowledged segments are deleted whole).
    pub segment_bytes: u64,
    /// fsync records and state on every commit (off: faster, a power cut may lose the records
    /// of the last commit — they are read again from the sources).
    pub fsync: bool,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            max_bytes: 256 << 20,
            segment_bytes: 16 << 20,
            fsync: true,
        }
    }
}

/// The spool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A state file that cannot be read.
    #[error("{path}: {why}")]
    BadState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A record that cannot be sealed.
    #[error("cannot seal: {0}")]
    Seal(mamori_seal::DecodeError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    next_seq: u64,
    key: String,
    prev: String,
    fingerprint: String,
    /// Present until the collector confirmed enrolment; then erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_key: Option<String>,
    #[serde(default)]
    sources: BTreeMap<String, SavedPos>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
struct SavedPos {
    dev: u64,
    ino: u64,
    offset: u64,
}

#[derive(Serialize, Deserialize, Default)]
struct AckedFile {
    acked: u64,
}

#[derive(Debug, Clone)]
struct Segment {
    first_seq: u64,
    /// Last record in it (first_seq - 1 when empty).
    last_seq: u64,
    path: PathBuf,
    bytes: u64,
}

/// What [`Spool::open`] found and mended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// A new chain was started (no state before).
    pub new_chain: bool,
    /// Bytes cut off the end: records sealed after the last saved state (read again from the
    /// sources) and any half-written record.
    pub cut_bytes: u64,
    /// Whole records among them.
    pub cut_records: u64,
}

/// The spool (one writer: the intake; the sender reads with [`SpoolCursor`]).
pub struct Spool {
    dir: PathBuf,
    opts: SpoolOptions,
    sealer: Sealer,
    first_key: Option<Key>,
    fingerprint: [u8; 32],
    segments: VecDeque<Segment>,
    writer: BufWriter<File>,
    sources: BTreeMap<String, FilePos>,
    acked: u64,
    committed: u64,
    report: OpenReport,
}

fn segment_name(first_seq: u64) -> String {
    format!("spool-{first_seq:020}.mrl")
}

/// Writes `bytes` to `path` through a temporary file, fsync'd, renamed over it.
pub(crate) fn replace_file(path: &Path, bytes: &[u8], mode: u32, fsync: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, path)
}

fn fresh_key() -> Result<Key, SpoolError> {
    let mut k = [0u8; KEY_LEN];
    getrandom::getrandom(&mut k).map_err(|e| SpoolError::BadState {
        path: PathBuf::from("(random source)"),
        why: format!("no randomness for a first key: {e}"),
    })?;
    Ok(Key::from_bytes(k))
}

fn parse_hex<const N: usize>(path: &Path, field: &str, text: &str) -> Result<[u8; N], SpoolError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|e| SpoolError::BadState {
        path: path.to_path_buf(),
        why: format!("`{field}`: {e}"),
    })?;
    Ok(out)
}

impl Spool {
    /// Opens (or starts) the spool in `dir`, mending a crash's leftovers.
    pub fn open(dir: &Path, opts: SpoolOptions) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let state_path = dir.join("state.json");
        let mut report = OpenReport::default();
        let (sealer, first_key, fingerprint, sources) = match fs::read(&state_path) {
            Ok(bytes) => {
                let st: StateFile =
                    serde_json::from_slice(&bytes).map_err(|e| SpoolError::BadState {
                        path: state_path.clone(),
                        why: e.to_string(),
                    })?;
                let key = Key::from_bytes(parse_hex(&state_path, "key", &st.key)?);
                let prev: Tag = parse_hex(&state_path, "prev", &st.prev)?;
                let fingerprint = parse_hex(&state_path, "fingerprint", &st.fingerprint)?;
                let first_key = match &st.first_key {
                    Some(h) => Some(Key::from_bytes(parse_hex(&state_path, "first_key", h)?)),
                    None => None,
                };
                let sources = st
                    .sources
                    .iter()
                    .map(|(k, p)| {
                        (
                            k.clone(),
                            FilePos {
                                dev: p.dev,
                                ino: p.ino,
                                offset: p.offset,
                            },
                        )
                    })
                    .collect();
                let sealer = Sealer::resume(SealerState {
                    next_seq: st.next_seq,
                    key,
                    prev,
                });
                (sealer, first_key, fingerprint, sources)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                report.new_chain = true;
                let k0 = fresh_key()?;
                let fp = k0.fingerprint();
                (Sealer::new(k0.clone()), Some(k0), fp, BTreeMap::new())
            }
            Err(e) => return Err(io_err(&state_path)(e)),
        };
        let acked_path = dir.join("acked.json");
        let acked = match fs::read(&acked_path) {
            Ok(b) => {
                serde_json::from_slice::<AckedFile>(&b)
                    .map_err(|e| SpoolError::BadState {
                        path: acked_path.clone(),
                        why: e.to_string(),
                    })?
                    .acked
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(&acked_path)(e)),
        };
        let committed = sealer.next_seq() - 1;
        let segments = scan_segments(dir, committed, &mut report)?;
        let (segments, writer) = open_writer(dir, segments, sealer.next_seq())?;
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            opts,
            sealer,
            first_key,
            fingerprint,
            segments,
            writer,
            sources,
            acked,
            committed,
            report,
        };
        if spool.report.new_chain {
            spool.save_state()?;
        }
        spool.drop_acked_segments()?;
        Ok(spool)
    }

    /// What opening found and mended.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The chain's public name (fingerprint of its first key).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The first key, while the collector has not yet confirmed it holds it.
    pub fn first_key(&self) -> Option<&Key> {
        self.first_key.as_ref()
    }

    /// The collector holds the first key: erase it here, for good.
    pub fn enrolled(&mut self) -> Result<(), SpoolError> {
        if self.first_key.take().is_some() {
            self.save_state()?;
        }
        Ok(())
    }

    /// Where source `name` was read up to, as last committed.
    pub fn source_position(&self, name: &str) -> Option<FilePos> {
        self.sources.get(name).copied()
    }

    /// Seals one record and appends it (visible to the sender after [`Spool::commit`]).
    pub fn append(&mut self, kind: Kind, time_ns: i64, payload: &[u8]) -> Result<u64, SpoolError> {
        let header = self
            .sealer
            .seal(kind, time_ns, payload)
            .map_err(SpoolError::Seal)?;
        let seg_path = self.current_segment().path.clone();
        self.writer
            .write_all(&header.encode(payload.len()))
            .and_then(|()| self.writer.write_all(payload))
            .map_err(io_err(&seg_path))?;
        let seg = self.segments.back_mut().expect("a current segment");
        seg.last_seq = header.seq;
        seg.bytes += (HEADER_LEN + payload.len()) as u64;
        Ok(header.seq)
    }

    /// Records source `name` as read up to `pos` (saved with the next commit).
    pub fn set_source_position(&mut self, name: &str, pos: FilePos) {
        self.sources.insert(name.to_string(), pos);
    }

    /// Puts the appended records on disk, then the state that covers them; the sender may then
    /// read them. Starts a new segment when the current one is full.
    pub fn commit(&mut self) -> Result<u64, SpoolError> {
        let seg_path = self.current_segment().path.clone();
        self.writer.flush().map_err(io_err(&seg_path))?;
        if self.opts.fsync {
            self.writer
                .get_ref()
                .sync_data()
                .map_err(io_err(&seg_path))?;
        }
        self.save_state()?;
        self.committed = self.sealer.next_seq() - 1;
        if self.current_segment().bytes >= self.opts.segment_bytes {
            let next = self.sealer.next_seq();
            let path = self.dir.join(segment_name(next));
            self.writer = BufWriter::with_capacity(1 << 16, create_segment(&path)?);
            self.segments.push_back(Segment {
                first_seq: next,
                last_seq: next - 1,
                path,
                bytes: 0,
            });
        }
        Ok(self.committed)
    }

    fn current_segment(&self) -> &Segment {
        self.segments.back().expect("a current segment")
    }

    fn save_state(&self) -> Result<(), SpoolError> {
        let st = self.sealer.state();
        let file = StateFile {
            version: 1,
            next_seq: st.next_seq,
            key: hex::encode(st.key.as_bytes()),
            prev: hex::encode(st.prev),
            fingerprint: hex::encode(self.fingerprint),
            first_key: self.first_key.as_ref().map(|k| hex::encode(k.as_bytes())),
            sources: self
                .sources
                .iter()
                .map(|(k, p)| {
                    (
                        k.clone(),
                        SavedPos {
                            dev: p.dev,
                            ino: p.ino,
                            offset: p.offset,
                        },
                    )
                })
                .collect(),
        };
        let path = self.dir.join("state.json");
        let bytes = serde_json::to_vec_pretty(&file).expect("state serialises");
        replace_file(&path, &bytes, 0o600, self.opts.fsync).map_err(io_err(&path))
    }

    /// Last sequence number on disk and visible to the sender.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Last sequence number the collector acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The collector stored everything through `seq`: remember it and delete whole segments
    /// that hold nothing newer.
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        let seq = seq.min(self.committed);
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq;
        let path = self.dir.join("acked.json");
        let bytes = serde_json::to_vec(&AckedFile { acked: seq }).expect("serialises");
        // not fsync'd: if lost, records are sent again and the collector drops the duplicates
        replace_file(&path, &bytes, 0o644, false).map_err(io_err(&path))?;
        self.drop_acked_segments()
    }

    fn drop_acked_segments(&mut self) -> Result<(), SpoolError> {
        while self.segments.len() > 1 && self.segments[0].last_seq <= self.acked {
            let seg = self.segments.pop_front().expect("checked");
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
        }
        Ok(())
    }

    /// Bytes of records not yet acknowledged (roughly: whole segments).
    pub fn pending_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Records sealed but not yet acknowledged.
    pub fn pending_records(&self) -> u64 {
        self.committed.saturating_sub(self.acked)
    }

    /// True when intake should pause.
    pub fn is_full(&self) -> bool {
        self.pending_bytes() >= self.opts.max_bytes
    }

    /// The oldest sequence number still in the spool.
    pub fn oldest(&self) -> u64 {
        self.segments.front().map_or(1, |s| s.first_seq)
    }

    /// The segments' (first seq, path), oldest first, for a cursor.
    fn segment_list(&self) -> Vec<(u64, PathBuf)> {
        self.segments
            .iter()
            .map(|s| (s.first_seq, s.path.clone()))
            .collect()
    }
}

fn create_segment(path: &Path) -> Result<File, SpoolError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))
}

/// Lists the segments, cutting off what lies past `committed` or is half-written.
fn scan_segments(
    dir: &Path,
    committed: u64,
    report: &mut OpenReport,
) -> Result<VecDeque<Segment>, SpoolError> {
    let mut names: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(n) = name.to_str() else { continue };
        if let Some(seq) = n
            .strip_prefix("spool-")
            .and_then(|r| r.strip_suffix(".mrl"))
            .and_then(|d| d.parse::<u64>().ok())
        {
            names.push((seq, entry.path()));
        }
    }
    names.sort();
    let mut out = VecDeque::new();
    for (first_seq, path) in names {
        if first_seq > committed {
            let len = fs::metadata(&path).map_err(io_err(&path))?.len();
            report.cut_bytes += len;
            report.cut_records += count_records(&path)?;
            fs::remove_file(&path).map_err(io_err(&path))?;
            continue;
        }
        let (keep, last_seq, cut_records) = valid_prefix(&path, committed)?;
        let len = fs::metadata(&path).map_err(io_err(&path))?.len();
        if keep < len {
            report.cut_bytes += len - keep;
            report.cut_records += cut_records;
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            f.set_len(keep).map_err(io_err(&path))?;
            f.sync_all().map_err(io_err(&path))?;
        }
        out.push_back(Segment {
            first_seq,
            last_seq: last_seq.unwrap_or(first_seq - 1),
            path,
            bytes: keep,
        });
    }
    Ok(out)
}

/// Bytes of `path` that hold whole records up to `committed`, the last seq among them, and how
/// many whole records lie beyond.
fn valid_prefix(path: &Path, committed: u64) -> Result<(u64, Option<u64>, u64), SpoolError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let mut pos = 0u64;
    let mut last = None;
    let mut beyond = 0u64;
    let mut keep = None;
    let mut hdr = [0u8; HEADER_LEN];
    while pos + HEADER_LEN as u64 <= len {
        f.seek(SeekFrom::Start(pos)).map_err(io_err(path))?;
        f.read_exact(&mut hdr).map_err(io_err(path))?;
        let Ok((h, plen)) = Header::decode(&hdr) else {
            break;
        };
        let end = pos + (HEADER_LEN + plen) as u64;
        if end > len {
            break;
        }
        if h.seq > committed {
            keep.get_or_insert(pos);
            beyond += 1;
        } else if keep.is_none() {
            last = Some(h.seq);
        }
        pos = end;
    }
    Ok((keep.unwrap_or(pos), last, beyond))
}

fn count_records(path: &Path) -> Result<u64, SpoolError> {
    Ok(valid_prefix(path, 0)?.2)
}

fn open_writer(
    dir: &Path,
    mut segments: VecDeque<Segment>,
    next_seq: u64,
) -> Result<(VecDeque<Segment>, BufWriter<File>), SpoolError> {
    if segments.is_empty() {
        let path = dir.join(segment_name(next_seq));
        segments.push_back(Segment {
            first_seq: next_seq,
            last_seq: next_seq - 1,
            path,
            bytes: 0,
        });
    }
    let path = segments.back().expect("one at least").path.clone();
    let file = create_segment(&path)?;
    Ok((segments, BufWriter::with_capacity(1 << 16, file)))
}

/// A batch of committed records, encoded back to back, for one send.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// First record's sequence number.
    pub first_seq: u64,
    /// Last record's sequence number.
    pub last_seq: u64,
    /// Records in it.
    pub records: u32,
    /// The encoded records.
    pub bytes: Vec<u8>,
}

/// The sender's read position in the spool.
pub struct SpoolCursor {
    next_seq: u64,
    file: Option<(PathBuf, BufReader<File>, u64)>,
    /// Bytes skipped because they were not a record (a damaged spool): the records in them
    /// will show as a gap at the collector.
    pub damaged_bytes: u64,
}

impl SpoolCursor {
    /// A cursor that will read from `next_seq`.
    pub fn new(next_seq: u64) -> SpoolCursor {
        SpoolCursor {
            next_seq,
            file: None,
            damaged_bytes: 0,
        }
    }

    /// Next sequence number to read.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Moves to `seq` (after a reconnect: the collector's resume point).
    pub fn seek(&mut self, seq: u64) {
        if seq != self.next_seq {
            self.next_seq = seq;
            self.file = None;
        }
    }

    /// Reads committed records from the cursor on, up to `max_records` / about `max_bytes`.
    /// `spool` is locked only to learn the segment list and the committed point.
    pub fn read(
        &mut self,
        spool: &std::sync::Mutex<Spool>,
        max_records: u32,
        max_bytes: usize,
    ) -> Result<Batch, SpoolError> {
        let (committed, segments, oldest) = {
            let s = spool
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (s.committed(), s.segment_list(), s.oldest())
        };
        let mut batch = Batch::default();
        if self.next_seq < oldest {
            // the records before are gone from the spool (acknowledged, or the collector lost
            // what it had acknowledged): continue with what exists; the collector sees a gap
            self.seek(oldest);
        }
        while batch.records < max_records && batch.bytes.len() < max_bytes {
            if self.next_seq > committed {
                break;
            }
            if self.file.is_none() {
                let Some((_, path)) = segments
                    .iter()
                    .rev()
                    .find(|(first, _)| *first <= self.next_seq)
                else {
                    break;
                };
                let f = File::open(path).map_err(io_err(path))?;
                self.file = Some((path.clone(), BufReader::with_capacity(1 << 16, f), 0));
            }
            let (path, f, pos) = self.file.as_mut().expect("opened");
            let mut hdr = [0u8; HEADER_LEN];
            match read_full(f, &mut hdr).map_err(io_err(path))? {
                0 => {
                    // end of this segment: on to the next one
                    let here = segments.iter().position(|(_, p)| p == path);
                    let next = here.and_then(|i| segments.get(i + 1));
                    match next {
                        Some((_, p)) => {
                            let nf = File::open(p).map_err(io_err(p))?;
                            self.file = Some((p.clone(), BufReader::with_capacity(1 << 16, nf), 0));
                            continue;
                        }
                        None => break,
                    }
                }
                n if n < HEADER_LEN => {
                    // a record being written by a commit that has not finished: come back later
                    f.seek(SeekFrom::Start(*pos)).map_err(io_err(path))?;
                    break;
                }
                _ => {}
            }
            let (h, plen) = match Header::decode(&hdr) {
                Ok(x) => x,
                Err(_) => {
                    // damaged: skip to the next record header in this segment
                    let skipped = skip_damage(f, *pos).map_err(io_err(path))?;
                    self.damaged_bytes += skipped;
                    *pos += skipped;
                    continue;
                }
            };
            let mut payload = vec![0u8; plen];
            if read_full(f, &mut payload).map_err(io_err(path))? < plen {
                f.seek(SeekFrom::Start(*pos)).map_err(io_err(path))?;
                break;
            }
            *pos += (HEADER_LEN + plen) as u64;
            if h.seq < self.next_seq {
                continue; // before the cursor (after a seek within a segment)
            }
            if h.seq > committed {
                f.seek(SeekFrom::Start(*pos - (HEADER_LEN + plen) as u64))
                    .map_err(io_err(path))?;
                *pos -= (HEADER_LEN + plen) as u64;
                break;
            }
            if batch.records == 0 {
                batch.first_seq = h.seq;
            }
            batch.last_seq = h.seq;
            batch.records += 1;
            batch.bytes.extend_from_slice(&hdr);
            batch.bytes.extend_from_slice(&payload);
            self.next_seq = h.seq + 1;
        }
        Ok(batch)
    }
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_full(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// From damaged bytes at `pos`, the distance to the next record's magic (or the file's end);
/// leaves the file there.
fn skip_damage(f: &mut BufReader<File>, pos: u64) -> io::Result<u64> {
    let len = f.get_ref().metadata()?.len();
    f.seek(SeekFrom::Start(pos))?;
    let mut rest = Vec::new();
    f.by_ref().take(len - pos).read_to_end(&mut rest)?;
    let skip = codec::resync(&rest, 0).unwrap_or(rest.len()) as u64;
    f.seek(SeekFrom::Start(pos + skip))?;
    Ok(skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_seal::Verifier;
    use std::sync::Mutex;

    fn opts() -> SpoolOptions {
        SpoolOptions {
            max_bytes: 1 << 20,
            segment_bytes: 2_000,
            fsync: false,
        }
    }

    /// Decodes a batch and checks it against a verifier.
    fn verify(v: &mut Verifier, batch: &Batch) -> Vec<u64> {
        let mut seqs = Vec::new();
        let mut at = 0;
        while at < batch.bytes.len() {
            let (h, p, used) = codec::decode(&batch.bytes[at..]).unwrap();
            assert!(v.check(&h, p).clean(), "seq {}", h.seq);
            seqs.push(h.seq);
            at += used;
        }
        seqs
    }

    #[test]
    fn sealed_records_round_trip_across_segments_acks_and_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), opts()).unwrap();
        assert!(spool.open_report().new_chain);
        let k0 = spool.first_key().unwrap().clone();
        for i in 0..100 {
            spool
                .append(Kind::Audit, i, format!("line {i} ........").as_bytes())
                .unwrap();
            if i % 10 == 9 {
                spool.commit().unwrap();
            }
        }
        assert!(spool.segments.len() > 2);
        let spool = Mutex::new(spool);
        let mut cur = SpoolCursor::new(1);
        let mut v = Verifier::new(k0.clone());
        let b = cur.read(&spool, 30, 1 << 20).unwrap();
        assert_eq!((b.first_seq, b.last_seq, b.records), (1, 30, 30));
        assert_eq!(verify(&mut v, &b), (1..=30).collect::<Vec<_>>());
        spool.lock().unwrap().ack(30).unwrap();
        let b = cur.read(&spool, 1000, 1 << 20).unwrap();
        assert_eq!((b.first_seq, b.last_seq), (31, 100));
        verify(&mut v, &b);

        // a restart continues the chain; the first key is still there until enrolment
        let mut spool = spool.into_inner().unwrap();
        spool.enrolled().unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), opts()).unwrap();
        assert!(spool.first_key().is_none(), "erased after enrolment");
        assert_eq!((spool.acked(), spool.committed()), (30, 100));
        spool.append(Kind::Alert, 0, b"{}").unwrap();
        spool.commit().unwrap();
        let spool = Mutex::new(spool);
        let mut cur = SpoolCursor::new(101);
        assert_eq!(
            verify(&mut v, &cur.read(&spool, 10, 1 << 20).unwrap()),
            vec![101]
        );
        // acknowledged whole segments are gone, the rest stays readable from the oldest
        spool.lock().unwrap().ack(100).unwrap();
        assert!(spool.lock().unwrap().oldest() > 30);
    }

    #[test]
    fn a_crash_before_commit_cuts_the_unsaved_records_and_reseals_the_same_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), opts()).unwrap();
        let k0 = spool.first_key().unwrap().clone();
        spool.set_source_position(
            "audit",
            FilePos {
                dev: 1,
                ino: 2,
                offset: 10,
            },
        );
        spool.append(Kind::Audit, 1, b"a").unwrap();
        spool.commit().unwrap();
        spool.set_source_position(
            "audit",
            FilePos {
                dev: 1,
                ino: 2,
                offset: 20,
            },
        );
        spool.append(Kind::Audit, 2, b"b").unwrap();
        spool.append(Kind::Audit, 3, b"c").unwrap();
        drop(spool); // BufWriter flushes: two records past the saved state are on disk
                     // and half a record, as a crash mid-write leaves it
        let seg = dir.path().join(segment_name(1));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"MR\x01\x01").unwrap();
        drop(f);
        let mut spool = Spool::open(dir.path(), opts()).unwrap();
        assert_eq!(spool.open_report().cut_records, 2);
        assert!(spool.open_report().cut_bytes > 4);
        assert_eq!(spool.committed(), 1);
        assert_eq!(spool.source_position("audit").unwrap().offset, 10);
        spool.append(Kind::Audit, 2, b"b").unwrap();
        spool.commit().unwrap();
        let spool = Mutex::new(spool);
        let b = SpoolCursor::new(1).read(&spool, 10, 1 << 20).unwrap();
        assert_eq!(verify(&mut Verifier::new(k0), &b), vec![1, 2]);
    }

    #[test]
    fn uncommitted_records_are_not_read_and_fullness_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(
            dir.path(),
            SpoolOptions {
                max_bytes: 500,
                ..opts()
            },
        )
        .unwrap();
        spool.append(Kind::Audit, 1, &[b'x'; 300]).unwrap();
        spool.commit().unwrap();
        spool.append(Kind::Audit, 2, &[b'y'; 300]).unwrap();
        spool.writer.flush().unwrap(); // on disk, but not committed
        assert!(spool.is_full());
        let spool = Mutex::new(spool);
        let mut cur = SpoolCursor::new(1);
        let b = cur.read(&spool, 10, 1 << 20).unwrap();
        assert_eq!((b.first_seq, b.last_seq), (1, 1));
        assert_eq!(cur.read(&spool, 10, 1 << 20).unwrap().records, 0);
        spool.lock().unwrap().commit().unwrap();
        assert_eq!(cur.read(&spool, 10, 1 << 20).unwrap().first_seq, 2);
    }
}
