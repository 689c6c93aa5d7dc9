//! Records → events, by serial.
//!
//! The kernel writes one event as several records sharing a stamp: whatever was logged during
//! the system call (AVC, LOGIN, CONFIG_CHANGE, …), then at its exit SYSCALL, the auxiliary
//! records (EXECVE, CWD, PATH…, SOCKADDR, PROCTITLE) and `EOE`. Records of different events
//! interleave when several CPUs log at once. Userspace messages (USER_*, DAEMON_*, CRED_*, …) are
//! single records with serials of their own, except when the sending system call is itself
//! audited: then its SYSCALL and EOE follow with the same serial.
//!
//! auditd 3 does not write `EOE` records to its log (the kernel still sends them; the audisp
//! socket and older logs have them). PROCTITLE is the last record the kernel writes for a
//! system call, so it ends an event too — auditd's own `audit_is_last_record` says the same.
//!
//! So an event completes:
//! - at its `EOE` ([`Completion::Eoe`]);
//! - after its PROCTITLE, when a record of another serial arrives or its `EOE` does
//!   ([`Completion::Proctitle`]);
//! - for events of only single-record types, when a record of another serial arrives
//!   ([`Completion::Standalone`]) — right after, not at once, so a SYSCALL that shares the
//!   serial still joins;
//! - when no record came for it in [`AssemblerOptions::idle_records`] records, or when followed
//!   input goes quiet ([`Completion::Idle`]: lost records, kernel records logged outside a
//!   system call);
//! - when more than [`AssemblerOptions::max_pending`] are open, oldest first
//!   ([`Completion::Capacity`]);
//! - at the end of input ([`Completion::End`]).
//!
//! **Order**: events come out in completion order, which is close to serial order but not
//! equal to it when records interleave. A consumer that needs serial order can hold emitted
//! events back until their serial is below [`Assembler::low_watermark`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

use crate::decode::build_event;
use crate::event::{AuditEvent, Record};
use crate::parse::ParsedLine;
use crate::stats::ParseStats;

/// Why an event was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Completion {
    /// Its `EOE` record arrived.
    Eoe,
    /// It had its PROCTITLE (the kernel's last record of a system call) and another serial came.
    Proctitle,
    /// A single-record event (userspace, `KERNEL`, `LOST`), completed when another serial came.
    Standalone,
    /// No record came for it for a while.
    Idle,
    /// Too many events were open; it was the oldest.
    Capacity,
    /// The input ended.
    End,
}

/// Limits of the [`Assembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssemblerOptions {
    /// An event with no `EOE` is flushed when this many records arrived since its last one.
    pub idle_records: u64,
    /// At most this many events are open; the oldest is flushed beyond.
    pub max_pending: usize,
    /// A serial gap is settled (counted) once serials this far past it arrived; serials arriving
    /// this far behind the newest mean a restart.
    pub gap_window: u64,
}

impl Default for AssemblerOptions {
    fn default() -> Self {
        AssemblerOptions {
            idle_records: 256,
            max_pending: 4096,
            gap_window: 1024,
        }
    }
}

/// Whether records of this type are events on their own (never followed by an `EOE` unless a
/// SYSCALL of the same serial joins them). Kernel types (1300–2099 and LOGIN) are not; unknown
/// names are taken as kernel types, which only delays them (until idle), never splits an event.
pub fn is_standalone(kind: &str) -> bool {
    const KERNEL_PREFIXES: &[&str] = &["ANOM_PROMISCUOUS", "ANOM_ABEND", "ANOM_LINK", "ANOM_CREAT"];
    const USER_PREFIXES: &[&str] = &[
        "USER_", "DAEMON_", "CRED_", "ANOM_", "RESP_", "ROLE_", "CRYPTO_", "VIRT_", "SERVICE_",
        "SYSTEM_", "GRP_", "ACCT_", "LABEL_", "DEV_", "ADD_", "DEL_", "CHGRP_", "CHUSER_",
    ];
    const USER_NAMES: &[&str] = &[
        "USYS_CONFIG",
        "DAC_CHECK",
        "TEST",
        "TRUSTED_APP",
        "MAC_CHECK",
        "SOFTWARE_UPDATE",
        "FS_RELABEL",
        "KERNEL",
        "LOST",
    ];
    if let Some(n) = kind
        .strip_prefix("UNKNOWN[")
        .and_then(|r| r.strip_suffix(']'))
    {
        return match n.parse::<u32>() {
            Ok(n) => !((1300..2100).contains(&n) || n == 1006),
            Err(_) => false,
        };
    }
    if KERNEL_PREFIXES.iter().any(|p| kind.starts_with(p)) {
        return false;
    }
    USER_NAMES.contains(&kind) || USER_PREFIXES.iter().any(|p| kind.starts_with(p))
}

/// A multiplicative hash: keys are (node, serial) integers, mostly consecutive.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type Key = (u32, u64);

struct Pending {
    serial: u64,
    time_ns: i64,
    records: Vec<Record>,
    /// Record counter when opened and when last extended.
    opened: u64,
    touched: u64,
    /// Only single-record types so far.
    standalone: bool,
    /// Its PROCTITLE arrived: nothing but an `EOE` is to come.
    ended: bool,
}

impl Pending {
    /// Complete as soon as a record of another serial arrives: why, if so.
    fn closing_reason(&self) -> Option<Completion> {
        if self.ended {
            Some(Completion::Proctitle)
        } else if self.standalone {
            Some(Completion::Standalone)
        } else {
            None
        }
    }
}

/// Serial bookkeeping for one node: the next serial expected and those seen beyond it.
#[derive(Debug, Default)]
struct SerialTracker {
    next: Option<u64>,
    ahead: BTreeSet<u64>,
}

impl SerialTracker {
    fn see(&mut self, s: u64, window: u64, stats: &mut ParseStats) {
        let Some(next) = self.next else {
            self.next = Some(s.saturating_add(1));
            return;
        };
        if s < next {
            if next - s > window {
                self.settle_all(stats);
                self.next = Some(s.saturating_add(1));
                stats.serial_resets += 1;
            } else {
                stats.late_serials += 1;
            }
            return;
        }
        if s == next {
            self.advance(s);
        } else {
            self.ahead.insert(s);
        }
        // Gaps more than `window` behind the newest serial are settled.
        while let (Some(&first), Some(&last), Some(next)) =
            (self.ahead.first(), self.ahead.last(), self.next)
        {
            if last - next <= window && self.ahead.len() as u64 <= window {
                break;
            }
            stats.serial_gaps += 1;
            stats.gap_serials += first - next;
            self.ahead.remove(&first);
            self.advance(first);
        }
    }

    /// `s` was seen and everything before it is settled.
    fn advance(&mut self, s: u64) {
        let mut n = s.saturating_add(1);
        while !self.ahead.is_empty() && self.ahead.remove(&n) {
            n += 1;
        }
        self.next = Some(n);
    }

    fn settle_all(&mut self, stats: &mut ParseStats) {
        while let (Some(first), Some(next)) = (self.ahead.pop_first(), self.next) {
            stats.serial_gaps += 1;
            stats.gap_serials += first - next;
            self.advance(first);
        }
    }
}

/// At most this many distinct `node=` names are told apart; more share one bucket (and serial
/// tracking is off for them), so memory stays bounded on hostile input.
const MAX_NODES: usize = 1024;
const NODE_OVERFLOW: u32 = u32::MAX;

/// Groups records into events; see the module docs for when an event completes.
pub struct Assembler {
    opts: AssemblerOptions,
    pending: HashMap<Key, Pending, BuildHasherDefault<KeyHasher>>,
    last: Option<Key>,
    seq: u64,
    next_scan: u64,
    /// Node names (index + 1 is the node's id; 0 is "no node") and their serials.
    nodes: Vec<(Box<str>, SerialTracker)>,
    no_node: SerialTracker,
    last_node: u32,
    out: VecDeque<(AuditEvent, Completion)>,
    scratch: Vec<(u64, Key)>,
    /// Events completed by their PROCTITLE lately, whose `EOE` may still come.
    recent: VecDeque<Key>,
    stats: ParseStats,
}

/// How many PROCTITLE-completed events are remembered for their late `EOE`.
const RECENT: usize = 64;

impl Default for Assembler {
    fn default() -> Self {
        Assembler::new(AssemblerOptions::default())
    }
}

impl std::fmt::Debug for Assembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembler")
            .field("opts", &self.opts)
            .field("pending", &self.pending.len())
            .field("ready", &self.out.len())
            .finish()
    }
}

impl Assembler {
    /// An empty assembler.
    pub fn new(opts: AssemblerOptions) -> Assembler {
        let opts = AssemblerOptions {
            idle_records: opts.idle_records.max(1),
            max_pending: opts.max_pending.max(1),
            gap_window: opts.gap_window.max(1),
        };
        Assembler {
            next_scan: Self::scan_step(&opts),
            opts,
            pending: HashMap::default(),
            last: None,
            seq: 0,
            nodes: Vec::new(),
            no_node: SerialTracker::default(),
            last_node: 0,
            out: VecDeque::new(),
            scratch: Vec::new(),
            recent: VecDeque::with_capacity(RECENT),
            stats: ParseStats::default(),
        }
    }

    fn scan_step(opts: &AssemblerOptions) -> u64 {
        (opts.idle_records / 8).max(1)
    }

    /// The counters so far (record, event, loss and gap counts; the reader adds line counts).
    pub fn stats(&self) -> &ParseStats {
        &self.stats
    }

    pub(crate) fn stats_mut(&mut self) -> &mut ParseStats {
        &mut self.stats
    }

    /// Events open now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The smallest serial of an open event: events emitted later have a serial at least this,
    /// unless a record arrives for an event already emitted (counted as late).
    pub fn low_watermark(&self) -> Option<u64> {
        self.pending.values().map(|p| p.serial).min()
    }

    fn node_id(&mut self, node: Option<&str>) -> u32 {
        let Some(node) = node else { return 0 };
        let last = self.last_node as usize;
        if last > 0 && last <= self.nodes.len() && &*self.nodes[last - 1].0 == node {
            return self.last_node;
        }
        let id = match self.nodes.iter().position(|(n, _)| &**n == node) {
            Some(i) => i as u32 + 1,
            None if self.nodes.len() < MAX_NODES => {
                self.nodes.push((node.into(), SerialTracker::default()));
                self.nodes.len() as u32
            }
            None => NODE_OVERFLOW,
        };
        self.last_node = id;
        id
    }

    /// Adds one record.
    pub fn push(&mut self, line: ParsedLine) {
        self.seq += 1;
        self.stats.records += 1;
        let node = self.node_id(line.node());
        let key = (node, line.serial);
        if let Some(last) = self.last {
            if last != key {
                if let Some(how) = self.pending.get(&last).and_then(Pending::closing_reason) {
                    self.complete(last, how);
                }
            }
        }
        let record = line.record;
        if record.kind == "EOE" {
            match self.pending.remove(&key) {
                Some(mut p) => {
                    p.records.push(record);
                    self.emit(p, Completion::Eoe);
                }
                None => match self.recent.iter().position(|k| *k == key) {
                    // The EOE of an event its PROCTITLE completed: nothing more to do.
                    Some(i) => {
                        self.recent.remove(i);
                    }
                    None => self.stats.orphan_eoe += 1,
                },
            }
            self.last = None;
        } else {
            if record.kind == "LOST" {
                self.stats.lost_records += 1;
                self.stats.lost += record.get("lost").and_then(|v| v.parse().ok()).unwrap_or(0);
            }
            let standalone = is_standalone(&record.kind);
            let ended = record.kind == "PROCTITLE";
            match self.pending.get_mut(&key) {
                Some(p) => {
                    p.records.push(record);
                    p.touched = self.seq;
                    p.standalone &= standalone;
                    p.ended |= ended;
                }
                None => {
                    // auditd numbers its own DAEMON_* records apart from the kernel's serials.
                    if !record.kind.starts_with("DAEMON_") {
                        self.see_serial(node, line.serial);
                    }
                    let mut records = Vec::with_capacity(if standalone { 1 } else { 6 });
                    records.push(record);
                    self.pending.insert(
                        key,
                        Pending {
                            serial: line.serial,
                            time_ns: line.time_ns,
                            records,
                            opened: self.seq,
                            touched: self.seq,
                            standalone,
                            ended,
                        },
                    );
                }
            }
            self.last = Some(key);
        }
        if self.seq >= self.next_scan {
            self.next_scan = self.seq + Self::scan_step(&self.opts);
            self.flush_idle_records();
        }
        while self.pending.len() > self.opts.max_pending {
            let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.opened)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.complete(oldest, Completion::Capacity);
        }
    }

    fn see_serial(&mut self, node: u32, serial: u64) {
        let window = self.opts.gap_window;
        let tracker = match node {
            0 => &mut self.no_node,
            NODE_OVERFLOW => return,
            n => match self.nodes.get_mut(n as usize - 1) {
                Some((_, t)) => t,
                None => return,
            },
        };
        tracker.see(serial, window, &mut self.stats);
    }

    /// Flushes events that got no record in the last `idle_records` records, oldest first.
    fn flush_idle_records(&mut self) {
        let Some(limit) = self.seq.checked_sub(self.opts.idle_records) else {
            return;
        };
        self.flush_where(|p| p.touched < limit, Completion::Idle);
    }

    /// Completes every matching open event, oldest first (ones that were only waiting for
    /// another serial as [`Completion::Proctitle`] or [`Completion::Standalone`]).
    fn flush_where(&mut self, pick: impl Fn(&Pending) -> bool, how: Completion) {
        let mut keys = std::mem::take(&mut self.scratch);
        keys.clear();
        keys.extend(
            self.pending
                .iter()
                .filter(|(_, p)| pick(p))
                .map(|(k, p)| (p.opened, *k)),
        );
        keys.sort_unstable();
        for &(_, k) in &keys {
            let reason = self.pending.get(&k).and_then(Pending::closing_reason);
            self.complete(k, reason.unwrap_or(how));
        }
        self.scratch = keys;
    }

    /// Input went quiet (a followed log or socket had nothing for a while): every open event is
    /// complete now, as far as anyone will know soon.
    pub fn flush_quiet(&mut self) {
        self.flush_where(|_| true, Completion::Idle);
        self.last = None;
    }

    /// The input ended: flushes every open event and settles the serial gaps.
    pub fn finish(&mut self) {
        self.flush_where(|_| true, Completion::End);
        self.last = None;
        self.no_node.settle_all(&mut self.stats);
        for (_, t) in &mut self.nodes {
            t.settle_all(&mut self.stats);
        }
    }

    fn complete(&mut self, key: Key, how: Completion) {
        if let Some(p) = self.pending.remove(&key) {
            if how == Completion::Proctitle {
                if self.recent.len() == RECENT {
                    self.recent.pop_front();
                }
                self.recent.push_back(key);
            }
            self.emit(p, how);
        }
        if self.last == Some(key) {
            self.last = None;
        }
    }

    fn emit(&mut self, p: Pending, how: Completion) {
        self.stats.events += 1;
        match how {
            Completion::Eoe => self.stats.by_eoe += 1,
            Completion::Proctitle => self.stats.by_proctitle += 1,
            Completion::Standalone => self.stats.by_standalone += 1,
            Completion::Idle => self.stats.by_idle += 1,
            Completion::Capacity => self.stats.by_capacity += 1,
            Completion::End => self.stats.by_end += 1,
        }
        self.out
            .push_back((build_event(p.serial, p.time_ns, p.records), how));
    }

    /// The next completed event.
    pub fn pop(&mut self) -> Option<AuditEvent> {
        self.out.pop_front().map(|(e, _)| e)
    }

    /// The next completed event and why it completed.
    pub fn pop_with_completion(&mut self) -> Option<(AuditEvent, Completion)> {
        self.out.pop_front()
    }

    /// Completed events not yet popped.
    pub fn ready(&self) -> usize {
        self.out.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_line;

    fn line(kind: &str, serial: u64, rest: &str) -> String {
        format!(
            "type={kind} msg=audit(1700000000.{:03}:{serial}): {rest}",
            serial % 1000
        )
    }

    fn run(
        opts: AssemblerOptions,
        lines: &[String],
    ) -> (Vec<(AuditEvent, Completion)>, ParseStats) {
        let mut a = Assembler::new(opts);
        let mut out = Vec::new();
        for l in lines {
            a.push(parse_line(l).unwrap());
            while let Some(e) = a.pop_with_completion() {
                out.push(e);
            }
        }
        a.finish();
        while let Some(e) = a.pop_with_completion() {
            out.push(e);
        }
        (out, a.stats().clone())
    }

    fn kinds(e: &AuditEvent) -> Vec<&str> {
        e.records.iter().map(|r| r.kind.as_str()).collect()
    }

    #[test]
    fn interleaved_out_of_order_serials() {
        let lines = vec![
            line("SYSCALL", 9, "arch=c000003e syscall=0 success=yes exit=3"),
            line("EOE", 9, ""),
            line("SYSCALL", 11, "arch=c000003e syscall=2 success=yes exit=3"),
            line("SYSCALL", 10, "arch=c000003e syscall=59 success=yes exit=0"),
            line("CWD", 11, "cwd=\"/\""),
            line("EXECVE", 10, "argc=1 a0=\"ls\""),
            line("PATH", 11, "item=0 name=\"/etc/hosts\" nametype=NORMAL"),
            line("EOE", 11, ""),
            line("PROCTITLE", 10, "proctitle=6C73"),
            line("EOE", 10, ""),
        ];
        let (events, stats) = run(AssemblerOptions::default(), &lines);
        let got: Vec<(u64, Vec<&str>, Completion)> = events
            .iter()
            .map(|(e, c)| (e.serial, kinds(e), *c))
            .collect();
        assert_eq!(
            got,
            vec![
                (9, vec!["SYSCALL", "EOE"], Completion::Eoe),
                (11, vec!["SYSCALL", "CWD", "PATH", "EOE"], Completion::Eoe),
                (
                    10,
                    vec!["SYSCALL", "EXECVE", "PROCTITLE", "EOE"],
                    Completion::Eoe
                ),
            ]
        );
        assert_eq!(events[2].0.execve.as_ref().unwrap().argv, vec!["ls"]);
        assert_eq!(
            events[2].0.syscall.as_ref().unwrap().name.as_deref(),
            Some("execve")
        );
        assert_eq!(events[1].0.cwd.as_deref(), Some("/"));
        assert_eq!((stats.by_eoe, stats.events, stats.records), (3, 3, 10));
        assert_eq!(
            (stats.serial_gaps, stats.late_serials),
            (0, 0),
            "10 after 11 fills in"
        );
    }

    #[test]
    fn logs_without_eoe_end_events_at_proctitle() {
        let lines = vec![
            line(
                "SYSCALL",
                30,
                "arch=c000003e syscall=257 success=yes exit=3",
            ),
            line("CWD", 30, "cwd=\"/root\""),
            line("PATH", 30, "item=0 name=\"/etc/hosts\" nametype=NORMAL"),
            line("PROCTITLE", 30, "proctitle=636174"),
            line("CONFIG_CHANGE", 31, "op=add_rule res=1"),
            line(
                "SYSCALL",
                31,
                "arch=c000003e syscall=44 success=yes exit=60",
            ),
            line("PROCTITLE", 31, "proctitle=617564697463746C"),
            // An EOE after all, late behind another event's record: absorbed, not an orphan.
            line("SYSCALL", 32, "arch=c000003e syscall=0"),
            line("EOE", 31, ""),
            line("PROCTITLE", 32, "proctitle=6C73"),
            line("EOE", 32, ""),
        ];
        let (events, stats) = run(AssemblerOptions::default(), &lines);
        let got: Vec<(u64, usize, Completion)> = events
            .iter()
            .map(|(e, c)| (e.serial, e.records.len(), *c))
            .collect();
        assert_eq!(
            got,
            vec![
                (30, 4, Completion::Proctitle),
                (31, 3, Completion::Proctitle),
                (32, 3, Completion::Eoe),
            ]
        );
        assert_eq!(events[0].0.proctitle.as_deref(), Some("cat"));
        assert_eq!(
            (stats.by_proctitle, stats.by_eoe, stats.orphan_eoe),
            (2, 1, 0)
        );
    }

    #[test]
    fn standalone_waits_for_another_serial_and_takes_its_syscall() {
        let lines = vec![
            line("USER_LOGIN", 20, "pid=1 uid=0 msg='op=login res=success'"),
            line(
                "USER_START",
                21,
                "pid=1 uid=0 msg='op=PAM:session_open res=success'",
            ),
            line(
                "SYSCALL",
                21,
                "arch=c000003e syscall=44 success=yes exit=100",
            ),
            line("EOE", 21, ""),
            line("CRED_DISP", 22, "pid=1 msg='op=PAM:setcred res=success'"),
        ];
        let (events, stats) = run(AssemblerOptions::default(), &lines);
        let got: Vec<(u64, Vec<&str>, Completion)> = events
            .iter()
            .map(|(e, c)| (e.serial, kinds(e), *c))
            .collect();
        assert_eq!(
            got,
            vec![
                (20, vec!["USER_LOGIN"], Completion::Standalone),
                (21, vec!["USER_START", "SYSCALL", "EOE"], Completion::Eoe),
                (22, vec!["CRED_DISP"], Completion::Standalone),
            ]
        );
        assert_eq!((stats.by_standalone, stats.by_eoe, stats.by_end), (2, 1, 0));
    }

    #[test]
    fn kernel_records_without_eoe_flush_when_idle() {
        let opts = AssemblerOptions {
            idle_records: 8,
            ..Default::default()
        };
        let mut lines = vec![line("AVC", 100, "avc:  denied  { read } for pid=1")];
        for s in 101..=120 {
            lines.push(line("SYSCALL", s, "arch=c000003e syscall=0"));
            lines.push(line("EOE", s, ""));
        }
        let (events, stats) = run(opts, &lines);
        let idle: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, (_, c))| *c == Completion::Idle)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(idle.len(), 1);
        let (avc, _) = &events[idle[0]];
        assert_eq!(avc.serial, 100);
        // 8 records idle, checked every 8/8 = 1 record: flushed once 9 records came after it.
        assert!(idle[0] <= 5, "flushed early, at {}", idle[0]);
        assert_eq!((stats.by_idle, stats.by_eoe), (1, 20));
    }

    #[test]
    fn capacity_flushes_the_oldest() {
        let opts = AssemblerOptions {
            max_pending: 3,
            idle_records: 1000,
            ..Default::default()
        };
        let lines: Vec<String> = (1..=5).map(|s| line("SYSCALL", s, "syscall=0")).collect();
        let (events, stats) = run(opts, &lines);
        let got: Vec<(u64, Completion)> = events.iter().map(|(e, c)| (e.serial, *c)).collect();
        assert_eq!(
            got,
            vec![
                (1, Completion::Capacity),
                (2, Completion::Capacity),
                (3, Completion::End),
                (4, Completion::End),
                (5, Completion::End),
            ]
        );
        assert_eq!((stats.by_capacity, stats.by_end), (2, 3));
    }

    #[test]
    fn lost_and_serial_gaps() {
        let mut lines = Vec::new();
        for s in [1u64, 2, 3, 7, 8, 5, 9, 20] {
            lines.push(line("SYSCALL", s, "syscall=0"));
            lines.push(line("EOE", s, ""));
        }
        lines.push(line("LOST", 21, "lost=17"));
        lines.push(line("LOST", 22, "lost=3"));
        let (events, stats) = run(AssemblerOptions::default(), &lines);
        assert_eq!(events.len(), 10);
        assert_eq!((stats.lost_records, stats.lost), (2, 20));
        // Missing: 4, 6 and 10..=19 → three gaps, 12 serials (settled at the end).
        assert_eq!((stats.serial_gaps, stats.gap_serials), (3, 12));
        assert_eq!(stats.late_serials, 0);
    }

    #[test]
    fn gaps_settle_within_the_window_and_resets_are_told_apart() {
        let opts = AssemblerOptions {
            gap_window: 4,
            ..Default::default()
        };
        let mut a = Assembler::new(opts);
        let push = |a: &mut Assembler, s: u64| {
            a.push(parse_line(&line("SYSCALL", s, "syscall=0")).unwrap());
            a.push(parse_line(&line("EOE", s, "")).unwrap());
        };
        for s in [1, 3, 4, 5, 6, 7, 8] {
            push(&mut a, s);
        }
        // 2 is settled as a gap once 7 - 2 > 4; memory stays bounded by the window.
        assert_eq!((a.stats().serial_gaps, a.stats().gap_serials), (1, 1));
        push(&mut a, 7);
        assert_eq!(a.stats().late_serials, 1, "within the window behind: late");
        push(&mut a, 1_000_000);
        assert_eq!(
            (a.stats().serial_gaps, a.stats().gap_serials),
            (2, 1 + 1_000_000 - 9)
        );
        push(&mut a, 5);
        assert_eq!(a.stats().serial_resets, 1, "far behind: a restart");
        assert_eq!(a.stats().late_serials, 1);
    }

    #[test]
    fn nodes_keep_equal_serials_apart() {
        let lines = vec![
            format!("node=a {}", line("SYSCALL", 5, "syscall=0")),
            format!("node=b {}", line("SYSCALL", 5, "syscall=1")),
            format!("node=a {}", line("EOE", 5, "")),
            format!("node=b {}", line("EOE", 5, "")),
        ];
        let (events, _) = run(AssemblerOptions::default(), &lines);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].0.records[0].get("node"), Some("a"));
        assert_eq!(events[1].0.syscall.as_ref().unwrap().number, 1);
    }

    #[test]
    fn orphan_eoe_and_end_of_input() {
        let lines = vec![
            line("EOE", 3, ""),
            line("SYSCALL", 4, "syscall=0"),
            line("PATH", 4, "item=0"),
        ];
        let (events, stats) = run(AssemblerOptions::default(), &lines);
        assert_eq!(stats.orphan_eoe, 1);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, Completion::End);
        assert!(!events[0].0.has_eoe());
    }

    #[test]
    fn standalone_classes() {
        for k in [
            "USER_LOGIN",
            "DAEMON_START",
            "CRED_ACQ",
            "SERVICE_START",
            "ANOM_LOGIN_FAILURES",
            "KERNEL",
            "LOST",
            "UNKNOWN[1100]",
        ] {
            assert!(is_standalone(k), "{k}");
        }
        for k in [
            "SYSCALL",
            "PATH",
            "AVC",
            "LOGIN",
            "CONFIG_CHANGE",
            "ANOM_PROMISCUOUS",
            "ANOM_ABEND",
            "UNKNOWN[1337]",
            "UNKNOWN[1006]",
            "NEW_KERNEL_THING",
        ] {
            assert!(!is_standalone(k), "{k}");
        }
    }

    #[test]
    fn watermark_and_quiet_flush() {
        let mut a = Assembler::default();
        a.push(parse_line(&line("SYSCALL", 9, "syscall=0")).unwrap());
        a.push(parse_line(&line("USER_CMD", 8, "msg='cmd=6C73'")).unwrap());
        assert_eq!(a.low_watermark(), Some(8));
        assert_eq!(a.pending(), 2);
        a.flush_quiet();
        let got: Vec<(u64, Completion)> = std::iter::from_fn(|| a.pop_with_completion())
            .map(|(e, c)| (e.serial, c))
            .collect();
        assert_eq!(
            got,
            vec![(9, Completion::Idle), (8, Completion::Standalone)]
        );
        assert_eq!(a.low_watermark(), None);
    }
}
