//! The collector's per-device store: `STORE/<device>/`.
//!
//! ```text
//! chain.json                 the first key, written once at enrolment (mode 0600)
//! segment-<seq:020>.mrl      sealed records in the codec layout, append-only, named by the
//!                            first record's seq; a new one starts once the current exceeds
//!                            `rotate_bytes`
//! head.json                  last acknowledged seq and tag, record count, first kept seq;
//!                            replaced atomically on every commit — the anchor against a cut
//!                            or rewritten tail
//! findings.jsonl             what live verification flagged
//! rejected.mrl               records that failed verification, kept for forensics
//! retention.jsonl            one line per segment removed by retention
//! ```
//!
//! The store does not verify: the collector checks each record with a
//! [`mamori_seal::Verifier`] and then calls [`DeviceStore::append`] or
//! [`DeviceStore::reject`]. What it guarantees is that what was committed stays as it was and
//! that a crash between append and commit leaves nothing half-written behind.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use mamori_seal::codec::{self, DecodeError};
use mamori_seal::{Header, Key, Tag, FIRST_SEQ, HEADER_LEN, KEY_LEN, MAGIC, TAG_LEN};
use serde::{Deserialize, Serialize};

use crate::finding::{Finding, FindingKind};

/// The first key's file.
pub const CHAIN_FILE: &str = "chain.json";
/// The acknowledged head's file.
pub const HEAD_FILE: &str = "head.json";
/// Live verification's findings.
pub const FINDINGS_FILE: &str = "findings.jsonl";
/// Records that failed verification.
pub const REJECTED_FILE: &str = "rejected.mrl";
/// The log of segments removed by retention.
pub const RETENTION_FILE: &str = "retention.jsonl";

/// How a store writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Start a new segment once the current one holds at least this many bytes.
    pub rotate_bytes: u64,
    /// Keep at most this many segments, removing the oldest whole ones (0: keep all).
    pub keep_segments: usize,
    /// fsync segments and head.json on commit (off only for tests and benchmarks).
    pub fsync: bool,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            rotate_bytes: 64 << 20,
            keep_segments: 0,
            fsync: true,
        }
    }
}

/// Why a store operation failed; every variant names the file (and the offset where it
/// matters).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The device name is unusable as a directory name.
    #[error("device name {0:?} is not 1 to 64 of [A-Za-z0-9._-] (and not . or ..)")]
    BadDevice(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file's content is not what the store wrote.
    #[error("{}{}: {what}", path.display(), offset.map(|o| format!(" @ {o}")).unwrap_or_default())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where, if known.
        offset: Option<u64>,
        /// What is wrong.
        what: String,
    },
    /// `enroll` with a key other than the enrolled one.
    #[error(
        "{}: device {device:?} is enrolled with another first key (fingerprint {enrolled}, \
         offered {offered}); re-enrolment needs the operator to move the old chain away first",
        path.display()
    )]
    KeyMismatch {
        /// chain.json.
        path: PathBuf,
        /// The device.
        device: String,
        /// Fingerprint on file.
        enrolled: String,
        /// Fingerprint offered.
        offered: String,
    },
    /// Appending before enrolment.
    #[error("{}: device is not enrolled (no {CHAIN_FILE})", dir.display())]
    NotEnrolled {
        /// The device directory.
        dir: PathBuf,
    },
    /// A record at or behind the stored chain's end: replays belong in `reject`.
    #[error("{}: record seq {seq} is not after the stored chain's last seq {last_seq}", dir.display())]
    OutOfOrder {
        /// The device directory.
        dir: PathBuf,
        /// The record's seq.
        seq: u64,
        /// The last stored seq.
        last_seq: u64,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The acknowledged end of a device's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Seq of the last committed record.
    pub last_seq: u64,
    /// Its tag.
    pub last_tag: Tag,
    /// Records committed since enrolment (including ones retention removed since).
    pub records: u64,
}

/// What opening a store cut from a torn or unacknowledged tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes removed.
    pub bytes: u64,
    /// Whole records among them.
    pub records: u64,
}

/// chain.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainFile {
    /// The device's name.
    pub device: String,
    /// The chain's first key (the key of seq 1), hex.
    pub first_key: String,
    /// `Key::fingerprint` of it, hex.
    pub fingerprint: String,
    /// The first seq this store holds (1 unless enrolled mid-chain).
    pub first_seq: u64,
    /// When it was enrolled.
    pub enrolled: String,
}

impl ChainFile {
    /// Reads and checks chain.json (the fingerprint must match the key).
    pub fn read(path: &Path) -> Result<(ChainFile, Key), StoreError> {
        let text = fs::read_to_string(path).map_err(io_err(path))?;
        let chain: ChainFile = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: None,
            what: format!("not a chain file: {e}"),
        })?;
        let bad = |what: &str| StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: None,
            what: what.to_string(),
        };
        let bytes: [u8; KEY_LEN] = hex::decode(&chain.first_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("first_key is not 32 bytes of hex"))?;
        let key = Key::from_bytes(bytes);
        if hex::encode(key.fingerprint()) != chain.fingerprint.to_ascii_lowercase() {
            return Err(bad("fingerprint does not match first_key"));
        }
        Ok((chain, key))
    }
}

/// head.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadFile {
    /// Seq of the last committed record (first_seq - 1 before any).
    pub last_seq: u64,
    /// Its tag, hex (zeros before any record).
    pub last_tag: String,
    /// Records committed since enrolment.
    pub records: u64,
    /// When it was written.
    pub updated: String,
    /// First seq still stored: above the chain's first seq once retention removed segments.
    /// Verification starts here without reporting a gap.
    #[serde(default)]
    pub first_kept: Option<u64>,
}

impl HeadFile {
    /// Reads head.json.
    pub fn read(path: &Path) -> Result<HeadFile, StoreError> {
        let text = fs::read_to_string(path).map_err(io_err(path))?;
        let head: HeadFile = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: None,
            what: format!("not a head file: {e}"),
        })?;
        head.tag().ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            offset: None,
            what: "last_tag is not 32 bytes of hex".into(),
        })?;
        Ok(head)
    }

    /// `last_tag` as bytes.
    pub fn tag(&self) -> Option<Tag> {
        hex::decode(&self.last_tag)
            .ok()
            .and_then(|b| b.try_into().ok())
    }
}

/// A segment's file name for its first seq.
pub fn segment_name(first_seq: u64) -> String {
    format!("segment-{first_seq:020}.mrl")
}

/// The first seq in a segment's file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".mrl")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A device directory's segments, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The devices in a store root (directories with a valid name), sorted.
pub fn list_devices(root: &Path) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).map_err(io_err(root))? {
        let entry = entry.map_err(io_err(root))?;
        let is_dir = entry.file_type().map_err(io_err(&entry.path()))?.is_dir();
        if let Some(name) = entry.file_name().to_str() {
            if is_dir && valid_device(name) {
                out.push(name.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A device name is a directory name: no separators, no "..", no surprises in a shell.
pub fn valid_device(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

struct Segment {
    path: PathBuf,
    size: u64,
    out: BufWriter<File>,
}

/// One device's store, open for appending. Dropping it without [`DeviceStore::commit`] leaves
/// the appended records on disk but unacknowledged; the next open cuts them.
pub struct DeviceStore {
    dir: PathBuf,
    device: String,
    opts: StoreOptions,
    key: Option<Key>,
    first_seq: u64,
    /// What head.json says.
    committed: HeadFile,
    /// The head including appended, uncommitted records.
    pending: Head,
    /// Segments on disk, oldest first (first seq, path).
    segments: VecDeque<(u64, PathBuf)>,
    current: Option<Segment>,
    recovered: Option<Recovery>,
}

impl DeviceStore {
    /// Opens (creating if needed) `root/device`, and cuts a tail that was never acknowledged:
    /// whole segments after head.json's last seq, records after it in the last segment, or a
    /// partial record left by a crash mid-write. The device resends all of those.
    pub fn open(root: &Path, device: &str, opts: StoreOptions) -> Result<DeviceStore, StoreError> {
        if !valid_device(device) {
            return Err(StoreError::BadDevice(device.to_string()));
        }
        let dir = root.join(device);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let chain_path = dir.join(CHAIN_FILE);
        let (key, first_seq) = if chain_path.exists() {
            let (chain, key) = ChainFile::read(&chain_path)?;
            (Some(key), chain.first_seq)
        } else {
            (None, FIRST_SEQ)
        };
        let head_path = dir.join(HEAD_FILE);
        let segments: VecDeque<_> = list_segments(&dir)?.into();
        let committed = if head_path.exists() {
            HeadFile::read(&head_path)?
        } else if segments.is_empty() {
            empty_head(first_seq)
        } else {
            // A store always has head.json once it has records; without it nobody knows what
            // was acknowledged, and guessing could destroy evidence.
            return Err(StoreError::Corrupt {
                path: head_path,
                offset: None,
                what: "missing while segments exist; refusing to guess what was acknowledged"
                    .into(),
            });
        };
        let mut store = DeviceStore {
            pending: Head {
                last_seq: committed.last_seq,
                last_tag: committed.tag().unwrap_or([0; TAG_LEN]),
                records: committed.records,
            },
            dir,
            device: device.to_string(),
            opts,
            key,
            first_seq,
            committed,
            segments,
            current: None,
            recovered: None,
        };
        store.recover()?;
        if let Some(r) = store.recovered {
            store.note(&Finding::new(
                None,
                FindingKind::Recovered {
                    bytes: r.bytes,
                    records: r.records,
                },
                format!(
                    "opening the store cut {} bytes ({} whole records) written after the last \
                     acknowledged seq {}",
                    r.bytes, r.records, store.committed.last_seq
                ),
            ))?;
        }
        Ok(store)
    }

    fn recover(&mut self) -> Result<(), StoreError> {
        let head_seq = self.committed.last_seq;
        let head_tag = self.committed.tag();
        let mut cut = Recovery {
            bytes: 0,
            records: 0,
        };
        // Whole segments that start after the head were never acknowledged.
        while let Some((seq, path)) = self.segments.back().cloned() {
            if seq <= head_seq {
                break;
            }
            let (records, bytes) = count_records(&path)?;
            cut.records += records;
            cut.bytes += bytes;
            fs::remove_file(&path).map_err(io_err(&path))?;
            self.segments.pop_back();
        }
        if let Some((_, path)) = self.segments.back().cloned() {
            // Cut after the head record (its last copy, should one have been appended later),
            // else only a trailing record that the file ends in the middle of.
            let mut head_end = None;
            let mut incomplete_at = None;
            for item in RecordReader::files(vec![path.clone()]) {
                match item {
                    Ok(p) => {
                        if p.header.seq == head_seq && Some(p.header.tag) == head_tag {
                            head_end = Some(p.end());
                        }
                        incomplete_at = None;
                    }
                    Err(ReadError::Damaged(d)) => {
                        incomplete_at = (d.incomplete && d.to_end).then_some(d.offset);
                    }
                    Err(e @ ReadError::Io { .. }) => return Err(e.into_store()),
                }
            }
            let len = fs::metadata(&path).map_err(io_err(&path))?.len();
            let cut_at = head_end.or(incomplete_at).filter(|&at| at < len);
            if let Some(at) = cut_at {
                for p in RecordReader::files(vec![path.clone()]).flatten() {
                    if p.offset >= at {
                        cut.records += 1;
                    }
                }
                cut.bytes += len - at;
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                f.set_len(at).map_err(io_err(&path))?;
                f.sync_all().map_err(io_err(&path))?;
            }
        }
        if cut.bytes > 0 {
            self.recovered = Some(cut);
        }
        Ok(())
    }

    /// What opening cut, if anything.
    pub fn recovered(&self) -> Option<Recovery> {
        self.recovered
    }

    /// Records the device's first key. Idempotent for the same key; refuses another one, since
    /// a new key means a new chain and the old one is evidence.
    pub fn enroll(&mut self, first_key: &Key) -> Result<(), StoreError> {
        self.enroll_at(first_key, FIRST_SEQ)
    }

    /// [`DeviceStore::enroll`] for a store that starts at `first_seq` of a chain whose first
    /// key (the key of seq 1) is `first_key`.
    pub fn enroll_at(&mut self, first_key: &Key, first_seq: u64) -> Result<(), StoreError> {
        let path = self.dir.join(CHAIN_FILE);
        if let Some(key) = &self.key {
            if key == first_key {
                return Ok(());
            }
            return Err(StoreError::KeyMismatch {
                path,
                device: self.device.clone(),
                enrolled: hex::encode(key.fingerprint()),
                offered: hex::encode(first_key.fingerprint()),
            });
        }
        let first_seq = first_seq.max(FIRST_SEQ);
        let chain = ChainFile {
            device: self.device.clone(),
            first_key: hex::encode(first_key.as_bytes()),
            fingerprint: hex::encode(first_key.fingerprint()),
            first_seq,
            enrolled: mamori_core::time::rfc3339(mamori_core::time::now_ns()),
        };
        write_atomic(&path, &json_bytes(&chain), true)?;
        self.key = Some(first_key.clone());
        self.first_seq = first_seq;
        if self.segments.is_empty() && self.committed.records == 0 {
            self.committed = empty_head(first_seq);
            self.pending.last_seq = self.committed.last_seq;
            write_atomic(
                &self.dir.join(HEAD_FILE),
                &json_bytes(&self.committed),
                true,
            )?;
        }
        Ok(())
    }

    /// The enrolled first key.
    pub fn first_key(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    /// The first seq this store holds.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The committed (acknowledgeable) head; None before the first committed record. A
    /// collector resumes its verifier with `Verifier::at(key, last_seq + 1, Some(last_tag))`.
    pub fn head(&self) -> Option<Head> {
        (self.committed.records > 0).then(|| Head {
            last_seq: self.committed.last_seq,
            last_tag: self.committed.tag().unwrap_or([0; TAG_LEN]),
            records: self.committed.records,
        })
    }

    /// Appends a verified record (buffered; durable at [`DeviceStore::commit`]). Its seq must
    /// be after the last one stored (gaps are allowed, the collector reports them).
    pub fn append(&mut self, header: &Header, payload: &[u8]) -> Result<(), StoreError> {
        if self.key.is_none() {
            return Err(StoreError::NotEnrolled {
                dir: self.dir.clone(),
            });
        }
        let stored_any = self.pending.records > 0;
        if (stored_any && header.seq <= self.pending.last_seq) || header.seq < self.first_seq {
            return Err(StoreError::OutOfOrder {
                dir: self.dir.clone(),
                seq: header.seq,
                last_seq: self.pending.last_seq,
            });
        }
        if self.current.is_none() {
            self.open_current(header.seq)?;
        }
        if self
            .current
            .as_ref()
            .is_some_and(|s| s.size >= self.opts.rotate_bytes)
        {
            self.finish_segment()?;
            self.new_segment(header.seq)?;
        }
        let Some(seg) = self.current.as_mut() else {
            unreachable!("a segment was just opened")
        };
        let bytes = header.encode(payload.len());
        seg.out
            .write_all(&bytes)
            .and_then(|()| seg.out.write_all(payload))
            .map_err(io_err(&seg.path))?;
        seg.size += (bytes.len() + payload.len()) as u64;
        self.pending = Head {
            last_seq: header.seq,
            last_tag: header.tag,
            records: self.pending.records + 1,
        };
        Ok(())
    }

    /// After opening: continue the newest segment (it is checked for room on append), or
    /// start the first one.
    fn open_current(&mut self, seq: u64) -> Result<(), StoreError> {
        let Some((_, path)) = self.segments.back() else {
            return self.new_segment(seq);
        };
        let size = fs::metadata(path).map_err(io_err(path))?.len();
        let f = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        self.current = Some(Segment {
            path: path.clone(),
            size,
            out: BufWriter::new(f),
        });
        Ok(())
    }

    fn new_segment(&mut self, seq: u64) -> Result<(), StoreError> {
        let path = self.dir.join(segment_name(seq));
        let f = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.segments.push_back((seq, path.clone()));
        self.current = Some(Segment {
            path,
            size: 0,
            out: BufWriter::new(f),
        });
        Ok(())
    }

    /// Flushes (and fsyncs) the current segment and forgets it.
    fn finish_segment(&mut self) -> Result<(), StoreError> {
        if let Some(mut seg) = self.current.take() {
            self.flush_segment(&mut seg)?;
        }
        Ok(())
    }

    fn flush_segment(&self, seg: &mut Segment) -> Result<(), StoreError> {
        seg.out.flush().map_err(io_err(&seg.path))?;
        if self.opts.fsync {
            seg.out.get_ref().sync_data().map_err(io_err(&seg.path))?;
        }
        Ok(())
    }

    /// Makes everything appended durable, then moves head.json to it; the collector
    /// acknowledges to the device only after this returns. Retention runs here, after the new
    /// head (with the new first kept seq) is on disk.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(mut seg) = self.current.take() {
            let r = self.flush_segment(&mut seg);
            self.current = Some(seg);
            r?;
        }
        let keep = self.opts.keep_segments;
        let drop_n = if keep > 0 {
            self.segments.len().saturating_sub(keep)
        } else {
            0
        };
        let first_kept = match self.segments.get(drop_n) {
            Some(&(seq, _)) if drop_n > 0 => Some(seq),
            _ => self.committed.first_kept,
        };
        if self.pending.records == self.committed.records && first_kept == self.committed.first_kept
        {
            return Ok(());
        }
        self.committed = HeadFile {
            last_seq: self.pending.last_seq,
            last_tag: hex::encode(self.pending.last_tag),
            records: self.pending.records,
            updated: mamori_core::time::rfc3339(mamori_core::time::now_ns()),
            first_kept,
        };
        write_atomic(
            &self.dir.join(HEAD_FILE),
            &json_bytes(&self.committed),
            self.opts.fsync,
        )?;
        for _ in 0..drop_n {
            let Some((seq, path)) = self.segments.pop_front() else {
                break;
            };
            let (records, bytes) = count_records(&path)?;
            fs::remove_file(&path).map_err(io_err(&path))?;
            let line = serde_json::json!({
                "removed": path.file_name().and_then(|n| n.to_str()),
                "first_seq": seq,
                "records": records,
                "bytes": bytes,
                "at": mamori_core::time::rfc3339(mamori_core::time::now_ns()),
            });
            append_line(&self.dir.join(RETENTION_FILE), &line.to_string())?;
        }
        Ok(())
    }

    /// Appends a finding to findings.jsonl (with the time it was noted).
    pub fn note(&mut self, finding: &Finding) -> Result<(), StoreError> {
        let path = self.dir.join(FINDINGS_FILE);
        let mut value = serde_json::to_value(finding).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            offset: None,
            what: format!("finding not serializable: {e}"),
        })?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "noted".into(),
                mamori_core::time::rfc3339(mamori_core::time::now_ns()).into(),
            );
        }
        append_line(&path, &value.to_string())?;
        if self.opts.fsync {
            sync_file(&path)?;
        }
        Ok(())
    }

    /// Keeps a record that failed verification, outside the chain, for forensics.
    pub fn reject(&mut self, header: &Header, payload: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(REJECTED_FILE);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut buf = header.encode(payload.len()).to_vec();
        buf.extend_from_slice(payload);
        f.write_all(&buf).map_err(io_err(&path))?;
        if self.opts.fsync {
            f.sync_data().map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// The device's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }
}

fn empty_head(first_seq: u64) -> HeadFile {
    HeadFile {
        last_seq: first_seq.saturating_sub(1),
        last_tag: hex::encode([0; TAG_LEN]),
        records: 0,
        updated: mamori_core::time::rfc3339(mamori_core::time::now_ns()),
        first_kept: None,
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).expect("plain structs serialize");
    v.push(b'\n');
    v
}

/// Whole records and bytes in a file (damage counted in bytes only).
fn count_records(path: &Path) -> Result<(u64, u64), StoreError> {
    let bytes = fs::metadata(path).map_err(io_err(path))?.len();
    let mut records = 0;
    for item in RecordReader::files(vec![path.to_path_buf()]) {
        match item {
            Ok(_) => records += 1,
            Err(ReadError::Damaged(_)) => {}
            Err(e @ ReadError::Io { .. }) => return Err(e.into_store()),
        }
    }
    Ok((records, bytes))
}

/// Replaces `path` with `bytes` so that a reader sees the old or the new file, never a mix:
/// temp file (mode 0600), fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8], fsync: bool) -> Result<(), StoreError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    if fsync {
        f.sync_all().map_err(io_err(&tmp))?;
    }
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    if fsync {
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(dir))?;
        }
    }
    Ok(())
}

fn append_line(path: &Path, line: &str) -> Result<(), StoreError> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(format!("{line}\n").as_bytes())
        .map_err(io_err(path))
}

fn sync_file(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_data())
        .map_err(io_err(path))
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A record read from a file, with where it was.
#[derive(Debug, Clone)]
pub struct Positioned {
    /// The file.
    pub file: PathBuf,
    /// Byte offset of its header.
    pub offset: u64,
    /// Its header.
    pub header: Header,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Positioned {
    /// Offset just after it.
    pub fn end(&self) -> u64 {
        self.offset + (HEADER_LEN + self.payload.len()) as u64
    }
}

/// Bytes that are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file.
    pub file: PathBuf,
    /// Where the bad bytes start.
    pub offset: u64,
    /// How many bytes were skipped before the next record (or the end of the file).
    pub length: u64,
    /// Why the first of them did not decode.
    pub reason: String,
    /// They start with a valid header whose record the file ends in the middle of.
    pub incomplete: bool,
    /// They run to the end of the file.
    pub to_end: bool,
}

/// Why reading stopped short of a record.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Undecodable bytes were skipped; reading goes on.
    #[error("{} @ {}: {} damaged bytes ({})", .0.file.display(), .0.offset, .0.length, .0.reason)]
    Damaged(Damage),
    /// The file could not be read; reading goes on with the next file.
    #[error("{} @ {offset}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// How far it was read.
        offset: u64,
        /// The error.
        source: io::Error,
    },
}

impl ReadError {
    fn into_store(self) -> StoreError {
        match self {
            ReadError::Io { file, source, .. } => StoreError::Io { path: file, source },
            ReadError::Damaged(d) => StoreError::Corrupt {
                path: d.file,
                offset: Some(d.offset),
                what: d.reason,
            },
        }
    }
}

const CHUNK: usize = 64 << 10;

/// Reads records from segment files in the given order, streaming (memory: one record plus a
/// read buffer). Undecodable bytes come out as one [`ReadError::Damaged`] per run, and reading
/// resumes at the next position where a whole record decodes, so nothing intact after damage
/// is lost.
pub struct RecordReader {
    files: VecDeque<PathBuf>,
    cur: Option<Cursor>,
    queued: Option<Positioned>,
}

struct Cursor {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    pos: usize,
    eof: bool,
}

impl RecordReader {
    /// A reader over these files, in this order.
    pub fn files(files: Vec<PathBuf>) -> RecordReader {
        RecordReader {
            files: files.into(),
            cur: None,
            queued: None,
        }
    }

    /// A reader over a device directory's segments, oldest first.
    pub fn device(dir: &Path) -> Result<RecordReader, StoreError> {
        Ok(RecordReader::files(
            list_segments(dir)?.into_iter().map(|(_, p)| p).collect(),
        ))
    }

    /// The file being read now.
    pub fn current_file(&self) -> Option<&Path> {
        self.cur.as_ref().map(|c| c.path.as_path())
    }
}

impl Cursor {
    fn avail(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads until `need` bytes are available from `pos` or the file ends.
    fn fill(&mut self, need: usize) -> io::Result<()> {
        while self.avail() < need && !self.eof {
            if self.pos > CHUNK {
                self.buf.drain(..self.pos);
                self.base += self.pos as u64;
                self.pos = 0;
            }
            let old = self.buf.len();
            let want = (need - self.avail()).max(CHUNK);
            self.buf.resize(old + want, 0);
            let n = loop {
                match self.file.read(&mut self.buf[old..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r,
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            };
            self.buf.truncate(old + n);
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The record at `pos`, if a whole one decodes there.
    fn try_record(&mut self) -> io::Result<Result<(Header, usize), DecodeError>> {
        self.fill(HEADER_LEN)?;
        let (header, len) = match Header::decode(&self.buf[self.pos..]) {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        self.fill(HEADER_LEN + len)?;
        if self.avail() < HEADER_LEN + len {
            return Ok(Err(DecodeError::Short {
                needed: HEADER_LEN + len,
            }));
        }
        Ok(Ok((header, len)))
    }

    /// Moves `pos` to the next "MR" after it; false at the end of the file.
    fn resync(&mut self) -> io::Result<bool> {
        loop {
            if let Some(at) = codec::resync(&self.buf, self.pos) {
                self.pos = at;
                return Ok(true);
            }
            if self.eof {
                self.pos = self.buf.len();
                return Ok(false);
            }
            // resync searches after pos: keep the last byte, it may be the "M" of a split magic
            self.pos = self.buf.len().saturating_sub(2).max(self.pos);
            let need = self.avail() + CHUNK;
            self.fill(need)?;
        }
    }
}

impl Iterator for RecordReader {
    type Item = Result<Positioned, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(p) = self.queued.take() {
            return Some(Ok(p));
        }
        loop {
            if self.cur.is_none() {
                let path = self.files.pop_front()?;
                match File::open(&path) {
                    Ok(file) => {
                        self.cur = Some(Cursor {
                            path,
                            file,
                            buf: Vec::new(),
                            base: 0,
                            pos: 0,
                            eof: false,
                        })
                    }
                    Err(source) => {
                        return Some(Err(ReadError::Io {
                            file: path,
                            offset: 0,
                            source,
                        }))
                    }
                }
            }
            let cur = self.cur.as_mut().expect("set above");
            match read_one(cur) {
                Ok(Some(item)) => {
                    return Some(match item {
                        Step::Record(p) => Ok(p),
                        Step::Damaged(d, next) => {
                            self.queued = next;
                            Err(ReadError::Damaged(d))
                        }
                    })
                }
                Ok(None) => self.cur = None,
                Err(source) => {
                    let (file, offset) = (cur.path.clone(), cur.offset());
                    self.cur = None;
                    return Some(Err(ReadError::Io {
                        file,
                        offset,
                        source,
                    }));
                }
            }
        }
    }
}

enum Step {
    Record(Positioned),
    Damaged(Damage, Option<Positioned>),
}

fn take_record(cur: &mut Cursor, header: Header, len: usize) -> Positioned {
    let offset = cur.offset();
    let payload = cur.buf[cur.pos + HEADER_LEN..cur.pos + HEADER_LEN + len].to_vec();
    cur.pos += HEADER_LEN + len;
    Positioned {
        file: cur.path.clone(),
        offset,
        header,
        payload,
    }
}

/// The next record or damaged run in the file; None at its end.
fn read_one(cur: &mut Cursor) -> io::Result<Option<Step>> {
    cur.fill(MAGIC.len())?;
    if cur.avail() == 0 {
        return Ok(None);
    }
    let first_err = match cur.try_record()? {
        Ok((header, len)) => return Ok(Some(Step::Record(take_record(cur, header, len)))),
        Err(e) => e,
    };
    let start = cur.offset();
    let incomplete = matches!(first_err, DecodeError::Short { .. }) && cur.eof;
    let damage = |cur: &Cursor, to_end: bool| Damage {
        file: cur.path.clone(),
        offset: start,
        length: cur.offset() - start,
        reason: first_err.to_string(),
        incomplete,
        to_end,
    };
    while cur.resync()? {
        if let Ok((header, len)) = cur.try_record()? {
            let d = damage(cur, false);
            let p = take_record(cur, header, len);
            return Ok(Some(Step::Damaged(d, Some(p))));
        }
    }
    Ok(Some(Step::Damaged(damage(cur, true), None)))
}
