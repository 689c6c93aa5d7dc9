//! Offline verification of a stored chain: walks every segment with the device's first key,
//! streaming (memory stays bounded however large the store), and checks the tail against
//! head.json.
//!
//! Retention: a store that removed its oldest segments records the first seq it still holds in
//! head.json (`first_kept`). Verification starts there (mid-chain, the link of the first record
//! unchecked) and reports the removed range as `retention`, which is information, not a fault.
//! Records missing below the oldest segment that head.json does not account for are a `gap`.
//! When explicit segment files are given instead of a device directory, records before the
//! first file are `not_given` (also information): the user chose what to check.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use mamori_seal::{Checked, Fault, Key, Kind, Tag, Verifier, FIRST_SEQ};
use serde::Serialize;

use crate::finding::{range_words, Finding, FindingKind};
use crate::store::{
    list_segments, parse_segment_name, ChainFile, HeadFile, Positioned, ReadError, RecordReader,
    StoreError, CHAIN_FILE, HEAD_FILE,
};

/// How many recent records are remembered (seq and tag) to tell a duplicate from a conflicting
/// replay, and how long a gap waits for its missing records to arrive late (reordering).
pub const WINDOW: usize = 1 << 16;

/// Keys are kept every this many positions once a record behind the chain must be checked,
/// so a late or replayed record costs at most this many hashes.
const KEY_STRIDE: u64 = 1 << 16;

/// Where to find what the inputs do not hold.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// chain.json to take the first key from (default: in the device directory, or beside
    /// the segment files).
    pub key: Option<PathBuf>,
    /// head.json to check the tail against (default: as for `key`; with segment files a
    /// missing head.json only skips the tail check).
    pub head: Option<PathBuf>,
}

/// What was decided about one record, for a caller printing records as they are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The seal verifier's result.
    pub checked: Checked,
    /// Its tag verifies for its position (also checked for records behind the chain, which the
    /// seal verifier does not authenticate).
    pub authentic: bool,
}

/// Why verification could not run at all (everything it can run past is a [`Finding`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Nothing to verify.
    #[error("no inputs given")]
    NoInputs,
    /// A path that does not exist, or a directory among files.
    #[error("{}: {what}", path.display())]
    BadInput {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },
    /// No chain.json: without the first key nothing can be verified.
    #[error("{}: no first key here (chain.json); give one with the key option", path.display())]
    NoKey {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A file of the store could not be read or parsed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A segment could not be read.
    #[error(transparent)]
    Read(ReadError),
}

/// Records per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// auditd lines.
    pub audit: u64,
    /// Alerts.
    pub alert: u64,
    /// Incidents.
    pub incident: u64,
    /// Shipper notices.
    pub notice: u64,
    /// Heartbeats.
    pub heartbeat: u64,
    /// Other kind numbers.
    pub other: u64,
}

impl KindCounts {
    fn add(&mut self, kind: Kind) {
        let slot = match kind {
            Kind::Audit => &mut self.audit,
            Kind::Alert => &mut self.alert,
            Kind::Incident => &mut self.incident,
            Kind::Notice => &mut self.notice,
            Kind::Heartbeat => &mut self.heartbeat,
            Kind::Other(_) => &mut self.other,
        };
        *slot += 1;
    }
}

/// The outcome of verifying a store or some segments.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The device (its directory's name), when a device directory was verified.
    pub device: Option<String>,
    /// Segment files read, in order.
    pub files: Vec<String>,
    /// Records read (authentic or not).
    pub records: u64,
    /// Records whose tag verified for their position.
    pub authentic: u64,
    /// Seq the verification started at.
    pub start_seq: Option<u64>,
    /// Highest seq reached in order.
    pub last_seq: Option<u64>,
    /// Records per kind.
    pub kinds: KindCounts,
    /// head.json's last seq, when there was one to check the tail against.
    pub head_seq: Option<u64>,
    /// Everything found, in file order (tail findings last).
    pub findings: Vec<Finding>,
}

impl Report {
    /// No fault found (information such as retention does not count).
    pub fn clean(&self) -> bool {
        self.faults().next().is_none()
    }

    /// The findings that are faults.
    pub fn faults(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.kind.is_fault())
    }

    /// A human summary: a verdict line, the counts, then every finding.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let who = self
            .device
            .as_deref()
            .map_or_else(|| "segments".to_string(), |d| format!("device {d}"));
        let faults = self.faults().count();
        let verdict = if faults == 0 {
            "CLEAN".to_string()
        } else {
            format!("{faults} PROBLEM{}", if faults == 1 { "" } else { "S" })
        };
        let range = match (self.start_seq, self.last_seq) {
            (Some(a), Some(b)) => format!(", seq {a}..={b}"),
            _ => String::new(),
        };
        s += &format!(
            "{who}: {verdict} — {} records ({} authentic{range}) in {} file{}\n",
            self.records,
            self.authentic,
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" }
        );
        let k = &self.kinds;
        s += &format!(
            "  audit {}, alert {}, incident {}, notice {}, heartbeat {}, other {}\n",
            k.audit, k.alert, k.incident, k.notice, k.heartbeat, k.other
        );
        match self.head_seq {
            Some(h) => s += &format!("  head.json: last seq {h}\n"),
            None => s += "  head.json: none, tail not checked\n",
        }
        for f in &self.findings {
            let tag = if f.kind.is_fault() { "!" } else { "i" };
            s += &format!("  {tag} {f}\n");
        }
        s
    }
}

/// Verifies a device directory (one input) or segment files (in the order given; a shell glob
/// of `segment-*.mrl` sorts them by seq).
pub fn verify(inputs: &[PathBuf], opts: &VerifyOptions) -> Result<Report, VerifyError> {
    verify_each(inputs, opts, |_, _| {})
}

/// [`verify`], calling `on_record` with every record as it is checked (to print verified
/// payloads while streaming).
pub fn verify_each(
    inputs: &[PathBuf],
    opts: &VerifyOptions,
    mut on_record: impl FnMut(&Positioned, &Verdict),
) -> Result<Report, VerifyError> {
    let first = inputs.first().ok_or(VerifyError::NoInputs)?;
    let dir_mode = inputs.len() == 1 && first.is_dir();
    let (device, beside, files) = if dir_mode {
        let device = first
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string);
        let files = list_segments(first)?;
        (device, first.clone(), files)
    } else {
        let mut files = Vec::new();
        for p in inputs {
            if !p.is_file() {
                return Err(VerifyError::BadInput {
                    path: p.clone(),
                    what: "not a segment file (give one device directory, or segment files)",
                });
            }
            let seq = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_segment_name);
            files.push((seq.unwrap_or(0), p.clone()));
        }
        let beside = first
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        (None, beside, files)
    };

    let key_path = opts.key.clone().unwrap_or_else(|| beside.join(CHAIN_FILE));
    if !key_path.exists() {
        return Err(VerifyError::NoKey { path: key_path });
    }
    let (chain, key) = ChainFile::read(&key_path)?;
    let head_path = opts.head.clone().unwrap_or_else(|| beside.join(HEAD_FILE));
    let head = if opts.head.is_some() || head_path.exists() {
        Some(HeadFile::read(&head_path)?)
    } else {
        None
    };

    let names: Vec<String> = files
        .iter()
        .map(|(_, p)| {
            if dir_mode {
                p.file_name()
                    .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
            } else {
                p.display().to_string()
            }
        })
        .collect();
    let mut walk = Walk::new(&key, names.clone());
    walk.head_seq = head.as_ref().filter(|h| h.records > 0).map(|h| h.last_seq);
    if dir_mode && head.is_none() {
        walk.push_end(Finding::new(
            None,
            FindingKind::HeadMissing,
            "the store has no head.json: a cut or rewritten tail cannot be detected",
        ));
    }

    // Where the walk starts (see the module doc on retention).
    let chain_first = chain.first_seq.max(FIRST_SEQ);
    let oldest = files.first().map(|&(seq, _)| seq).filter(|&s| s > 0);
    let recorded = head.as_ref().and_then(|h| h.first_kept);
    let mut start = chain_first;
    if let Some(s0) = oldest.filter(|&s0| s0 > chain_first) {
        let covered = recorded.unwrap_or(chain_first).max(chain_first);
        start = if dir_mode { s0.min(covered) } else { s0 };
        if start > chain_first {
            let (kind, why) = if recorded.is_some_and(|r| r >= start) {
                (
                    FindingKind::Retention {
                        first: chain_first,
                        last: start - 1,
                    },
                    "removed by the store's retention (recorded in head.json)",
                )
            } else {
                (
                    FindingKind::NotGiven {
                        first: chain_first,
                        last: start - 1,
                    },
                    "not among the files given; verification starts after them",
                )
            };
            let mut f = Finding::new(
                Some(chain_first),
                kind,
                format!("{} {why}", range_words(chain_first, start - 1)),
            );
            f.file = names.first().cloned();
            f.offset = Some(0);
            walk.push_start(f);
        }
    }
    walk.start(start);

    for item in RecordReader::files(files.iter().map(|(_, p)| p.clone()).collect()) {
        match item {
            Ok(p) => {
                let verdict = walk.record(&p);
                on_record(&p, &verdict);
            }
            Err(ReadError::Damaged(d)) => walk.damaged(&d),
            Err(e @ ReadError::Io { .. }) => return Err(VerifyError::Read(e)),
        }
    }
    walk.flush_gaps(u64::MAX);

    // The tail against head.json.
    let tail_len = match files.last() {
        Some((_, p)) => fs::metadata(p)
            .map_err(|source| StoreError::Io {
                path: p.clone(),
                source,
            })?
            .len(),
        None => 0,
    };
    let last_file = names.last().cloned();
    if let Some(h) = &head {
        walk.check_head(h, start, last_file, tail_len);
    }

    Ok(walk.report(device, names, head.map(|h| h.last_seq)))
}

#[derive(Clone, Copy, Debug)]
struct Loc {
    file: usize,
    offset: u64,
}

struct PendingGap {
    first: u64,
    last: u64,
    /// The record after the hole.
    at_seq: u64,
    at: Loc,
    /// Missing records that arrived later: (seq, where, right after the record at the hole).
    late: Vec<(u64, Loc, bool)>,
}

/// The state of one walk along the chain.
struct Walk {
    first_key: Key,
    verifier: Verifier,
    keys: Vec<(u64, Key)>,
    names: Vec<String>,
    file_idx: usize,
    /// (seq, tag, where) of the latest records in chain order.
    recent: VecDeque<(u64, Tag, Loc)>,
    gaps: VecDeque<PendingGap>,
    prev_seq: Option<u64>,
    max_seq: Option<u64>,
    start_seq: Option<u64>,
    records: u64,
    authentic: u64,
    kinds: KindCounts,
    head_seen: Option<(u64, Tag, Loc)>,
    head_seq: Option<u64>,
    /// (sort key, finding); the key orders by position, start notes first and tail ones last.
    findings: Vec<((usize, u64), Finding)>,
}

impl Walk {
    fn new(first_key: &Key, names: Vec<String>) -> Walk {
        Walk {
            first_key: first_key.clone(),
            verifier: Verifier::new(first_key.clone()),
            keys: vec![(FIRST_SEQ, first_key.clone())],
            names,
            file_idx: 0,
            recent: VecDeque::new(),
            gaps: VecDeque::new(),
            prev_seq: None,
            max_seq: None,
            start_seq: None,
            records: 0,
            authentic: 0,
            kinds: KindCounts::default(),
            head_seen: None,
            head_seq: None,
            findings: Vec::new(),
        }
    }

    fn start(&mut self, seq: u64) {
        if seq > FIRST_SEQ {
            self.verifier = Verifier::at(&self.first_key, seq, None);
        }
    }

    fn push_start(&mut self, f: Finding) {
        self.findings.push(((0, 0), f));
    }

    fn push_end(&mut self, f: Finding) {
        self.findings.push(((usize::MAX, u64::MAX), f));
    }

    fn push_at(&mut self, loc: Loc, f: Finding) {
        let f = f.at(self.names[loc.file].clone(), loc.offset);
        self.findings.push(((loc.file, loc.offset), f));
    }

    /// The index of `file` among the inputs (they are read in order).
    fn locate(&mut self, file: &Path, offset: u64) -> Loc {
        while self.file_idx + 1 < self.names.len() && !self.is_current(file) {
            self.file_idx += 1;
        }
        Loc {
            file: self.file_idx,
            offset,
        }
    }

    fn is_current(&self, file: &Path) -> bool {
        let name = &self.names[self.file_idx];
        file.display().to_string() == *name
            || file
                .file_name()
                .is_some_and(|n| n.to_string_lossy() == **name)
    }

    /// The key of position `seq`, from the nearest kept one; keeps one every KEY_STRIDE.
    fn key_at(&mut self, seq: u64) -> Key {
        let i = self.keys.partition_point(|(s, _)| *s <= seq) - 1;
        let (mut s, mut k) = self.keys[i].clone();
        while s < seq {
            k = k.evolve();
            s += 1;
            if s % KEY_STRIDE == 0 {
                let at = self.keys.partition_point(|(x, _)| *x < s);
                if self.keys.get(at).map_or(true, |(x, _)| *x != s) {
                    self.keys.insert(at, (s, k.clone()));
                }
            }
        }
        k
    }

    fn record(&mut self, p: &Positioned) -> Verdict {
        let loc = self.locate(&p.file, p.offset);
        let h = &p.header;
        self.records += 1;
        self.kinds.add(h.kind);
        let checked = self.verifier.check(h, &p.payload);
        let mut authentic = checked.fault.is_none() || checked.fault == Some(Fault::BrokenLink);
        if let Some(Fault::Gap { first, last }) = checked.gap {
            self.gaps.push_back(PendingGap {
                first,
                last,
                at_seq: h.seq,
                at: loc,
                late: Vec::new(),
            });
        }
        match checked.fault {
            None => {}
            Some(Fault::Behind { expected }) => {
                authentic = mamori_seal::tag(&self.key_at(h.seq), h, &p.payload) == h.tag;
                self.behind(p, loc, expected, authentic);
            }
            Some(fault) => self.push_at(loc, Finding::from_fault(h, fault)),
        }
        if !matches!(checked.fault, Some(Fault::Behind { .. })) {
            self.start_seq.get_or_insert(h.seq);
            // as far as the chain moved (a tampered record claiming a far position does not)
            self.max_seq = Some(self.verifier.next_seq().saturating_sub(1));
            if self.recent.len() == WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back((h.seq, h.tag, loc));
            if Some(h.seq) == self.head_seq {
                self.head_seen = Some((h.seq, h.tag, loc));
            }
            self.flush_gaps(h.seq);
        }
        self.prev_seq = Some(h.seq);
        if authentic {
            self.authentic += 1;
        }
        Verdict { checked, authentic }
    }

    /// A record behind the chain: a late arrival into a gap (reordered), a copy of a record
    /// seen (duplicate), another record for a filled position (replay conflict), or else plain
    /// behind.
    fn behind(&mut self, p: &Positioned, loc: Loc, expected: u64, authentic: bool) {
        let h = &p.header;
        let prev_seq = self.prev_seq;
        if authentic {
            if let Some(g) = self.gaps.iter_mut().find(|g| {
                (g.first..=g.last).contains(&h.seq) && !g.late.iter().any(|l| l.0 == h.seq)
            }) {
                g.late.push((h.seq, loc, prev_seq == Some(g.at_seq)));
                return;
            }
        }
        let i = self.recent.partition_point(|(s, _, _)| *s < h.seq);
        let seen = self.recent.get(i).filter(|(s, _, _)| *s == h.seq).copied();
        let f = match seen {
            Some((_, tag, at)) => {
                let there = format!("{} @ {}", self.names[at.file], at.offset);
                if tag == h.tag {
                    Finding::new(
                        Some(h.seq),
                        FindingKind::Duplicate,
                        format!("a copy of the record already stored at {there} (a replay)"),
                    )
                } else if authentic {
                    Finding::new(
                        Some(h.seq),
                        FindingKind::ReplayConflict,
                        format!(
                            "a second authentic record for this position, different from the \
                             one at {there}: the device sealed two histories (fork)"
                        ),
                    )
                } else {
                    Finding::new(
                        Some(h.seq),
                        FindingKind::Tampered,
                        format!(
                            "an altered copy of the record at {there}: its tag does not match \
                             its content"
                        ),
                    )
                }
            }
            None => Finding::new(
                Some(h.seq),
                FindingKind::Behind { expected },
                format!(
                    "behind the chain (expected {expected}), {}",
                    if authentic {
                        "authentic: an old record replayed or stored out of order"
                    } else {
                        "and its tag does not match its content"
                    }
                ),
            ),
        };
        self.push_at(loc, f);
    }

    /// Reports the gaps that can no longer be filled by late records (all, at the end).
    fn flush_gaps(&mut self, now: u64) {
        while let Some(g) = self.gaps.front() {
            if now != u64::MAX && g.at_seq.saturating_add(WINDOW as u64) > now {
                break;
            }
            let Some(mut g) = self.gaps.pop_front() else {
                break;
            };
            g.late.sort_by_key(|l| l.0);
            let at_name = self.names[g.at.file].clone();
            // what is still missing, as ranges
            let mut next = g.first;
            let mut missing = Vec::new();
            for &(seq, _, _) in &g.late {
                if seq > next {
                    missing.push((next, seq - 1));
                }
                next = seq + 1;
            }
            if next <= g.last {
                missing.push((next, g.last));
            }
            for (first, last) in missing {
                let whole_segment = g.at.offset == 0 && g.at.file > 0;
                let detail = format!(
                    "{} missing before seq {}{}",
                    range_words(first, last),
                    g.at_seq,
                    if whole_segment {
                        " (at a segment boundary: a whole segment may have been removed)"
                    } else {
                        ""
                    }
                );
                self.push_at(
                    g.at,
                    Finding::new(Some(first), FindingKind::Gap { first, last }, detail),
                );
            }
            for (seq, loc, adjacent) in g.late {
                let swapped = adjacent && g.first == g.last;
                let detail = if swapped {
                    format!(
                        "records {seq} and {} swapped: {seq} is stored after {} ({at_name} @ {})",
                        g.at_seq, g.at_seq, g.at.offset
                    )
                } else {
                    format!(
                        "arrived late: stored after seq {} ({at_name} @ {}), which overtook it",
                        g.at_seq, g.at.offset
                    )
                };
                self.push_at(
                    loc,
                    Finding::new(
                        Some(seq),
                        FindingKind::Reordered {
                            after: g.at_seq,
                            after_file: Some(at_name.clone()),
                            after_offset: Some(g.at.offset),
                        },
                        detail,
                    ),
                );
            }
        }
    }

    fn damaged(&mut self, d: &crate::store::Damage) {
        let loc = self.locate(&d.file, d.offset);
        let what = if d.incomplete {
            format!("a record cut short at the end of the file ({})", d.reason)
        } else if d.to_end {
            format!("not records, up to the end of the file ({})", d.reason)
        } else {
            format!("not records, skipped to the next record ({})", d.reason)
        };
        self.push_at(
            loc,
            Finding::new(
                None,
                FindingKind::Damaged { bytes: d.length },
                format!("{} bytes {what}", d.length),
            ),
        );
    }

    fn check_head(&mut self, h: &HeadFile, start: u64, last_file: Option<String>, tail_len: u64) {
        if h.records == 0 {
            if let Some(m) = self.max_seq {
                self.push_end(Finding::new(
                    Some(start),
                    FindingKind::BeyondHead {
                        first: start,
                        last: m,
                    },
                    "head.json acknowledges no records yet",
                ));
            }
            return;
        }
        let hs = h.last_seq;
        let reached = self.max_seq.filter(|&m| m >= start);
        if reached.map_or(true, |m| m < hs) && hs >= start {
            let first = reached.map_or(start, |m| m + 1);
            let mut f = Finding::new(
                Some(first),
                FindingKind::Truncated { first, last: hs },
                format!(
                    "head.json vouches for records up to {hs}, the files end {}: records \
                     {first}..={hs} were cut from the tail",
                    reached.map_or_else(|| "before any".to_string(), |m| format!("at {m}")),
                ),
            );
            f.file = last_file;
            f.offset = Some(tail_len);
            self.push_end(f);
        }
        if let (Some((seq, tag, loc)), Some(want)) = (self.head_seen, h.tag()) {
            if tag != want {
                let f = Finding::new(
                    Some(seq),
                    FindingKind::TailRewritten,
                    format!(
                        "head.json's last record (seq {seq}) had another tag: the tail was \
                         rewritten after it was acknowledged"
                    ),
                )
                .at(self.names[loc.file].clone(), loc.offset);
                self.findings.push(((usize::MAX, u64::MAX), f));
            }
        }
        if let Some(m) = self.max_seq.filter(|&m| m > hs) {
            self.push_end(Finding::new(
                Some(hs + 1),
                FindingKind::BeyondHead {
                    first: hs + 1,
                    last: m,
                },
                format!(
                    "{} after head.json's last seq {hs}: written but never acknowledged",
                    range_words(hs + 1, m)
                ),
            ));
        }
    }

    fn report(mut self, device: Option<String>, files: Vec<String>, head: Option<u64>) -> Report {
        self.findings.sort_by_key(|(k, _)| *k);
        Report {
            device,
            files,
            records: self.records,
            authentic: self.authentic,
            start_seq: self.start_seq,
            last_seq: self.max_seq,
            kinds: self.kinds,
            head_seq: head,
            findings: self.findings.into_iter().map(|(_, f)| f).collect(),
        }
    }
}
