//! What a read saw besides its events: bad lines, loss, serial gaps, and how events completed.

use serde::Serialize;

/// Counters of one read (a file, a followed log, a socket). Everything here is bounded: the
/// malformed-line examples are the first few only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ParseStats {
    /// Lines read, empty, malformed and over-long ones included.
    pub lines: u64,
    /// Bytes read (decompressed, for gzip input).
    pub bytes: u64,
    /// Records parsed.
    pub records: u64,
    /// Events emitted.
    pub events: u64,
    /// Lines that are not audit records (skipped in lenient mode).
    pub malformed: u64,
    /// The first malformed lines, with where they broke.
    pub malformed_examples: Vec<Malformed>,
    /// Lines longer than the reader's cap, skipped unread.
    pub long_lines: u64,
    /// `type=LOST` records.
    pub lost_records: u64,
    /// The sum of their `lost=` counts: records the kernel dropped.
    pub lost: u64,
    /// Runs of serials never seen (per `node`). A gap is not necessarily loss: the kernel spends
    /// serials on events no rule logs (and on records filtered out before the log), so a steady
    /// trickle of gaps is normal; `LOST` records are the kernel's own loss report.
    pub serial_gaps: u64,
    /// The serials in those gaps.
    pub gap_serials: u64,
    /// Events whose serial arrived after newer ones had settled past it (out of order beyond
    /// the gap window, or an event reopened after it was flushed).
    pub late_serials: u64,
    /// Serials that went back by more than the gap window: a reboot or another log, started anew.
    pub serial_resets: u64,
    /// `EOE` records with no open event (its event was flushed early, or only the EOE is left).
    pub orphan_eoe: u64,
    /// Events completed by their `EOE` record.
    pub by_eoe: u64,
    /// Events completed after their PROCTITLE record (logs without `EOE`).
    pub by_proctitle: u64,
    /// Single-record (userspace, `KERNEL`, `LOST`) events completed when another serial came.
    pub by_standalone: u64,
    /// Events flushed without an `EOE` after no record came for them for a while (in records, or
    /// when followed input went quiet).
    pub by_idle: u64,
    /// Events flushed because too many were open (the oldest goes first).
    pub by_capacity: u64,
    /// Events still open when the input ended.
    pub by_end: u64,
}

/// One malformed line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Malformed {
    /// Line number, from 1.
    pub line: u64,
    /// Byte offset of the error in the input stream (decompressed for gzip).
    pub offset: u64,
    /// Byte offset of the error in the line.
    pub column: usize,
    /// What the parser expected there.
    pub expected: &'static str,
    /// The start of the line (at most 120 bytes, lossily decoded).
    pub excerpt: String,
}

impl Malformed {
    pub(crate) fn new(
        line: u64,
        line_start: u64,
        column: usize,
        expected: &'static str,
        text: &[u8],
    ) -> Malformed {
        let cut = text.len().min(120);
        Malformed {
            line,
            offset: line_start + column as u64,
            column,
            expected,
            excerpt: String::from_utf8_lossy(&text[..cut]).into_owned(),
        }
    }
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, byte {} (column {}): expected {}: {:?}",
            self.line, self.offset, self.column, self.expected, self.excerpt
        )
    }
}

impl ParseStats {
    /// Adds another read's counters (examples kept up to `max_examples`).
    pub fn merge(&mut self, other: &ParseStats, max_examples: usize) {
        self.lines += other.lines;
        self.bytes += other.bytes;
        self.records += other.records;
        self.events += other.events;
        self.malformed += other.malformed;
        let room = max_examples.saturating_sub(self.malformed_examples.len());
        self.malformed_examples
            .extend(other.malformed_examples.iter().take(room).cloned());
        self.long_lines += other.long_lines;
        self.lost_records += other.lost_records;
        self.lost += other.lost;
        self.serial_gaps += other.serial_gaps;
        self.gap_serials += other.gap_serials;
        self.late_serials += other.late_serials;
        self.serial_resets += other.serial_resets;
        self.orphan_eoe += other.orphan_eoe;
        self.by_eoe += other.by_eoe;
        self.by_proctitle += other.by_proctitle;
        self.by_standalone += other.by_standalone;
        self.by_idle += other.by_idle;
        self.by_capacity += other.by_capacity;
        self.by_end += other.by_end;
    }
}

impl std::fmt::Display for ParseStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "lines {}  bytes {}  records {}  events {}",
            self.lines, self.bytes, self.records, self.events
        )?;
        writeln!(
            f,
            "completed: eoe {}  proctitle {}  standalone {}  idle {}  capacity {}  end {}",
            self.by_eoe,
            self.by_proctitle,
            self.by_standalone,
            self.by_idle,
            self.by_capacity,
            self.by_end
        )?;
        writeln!(
            f,
            "malformed {}  long lines {}  orphan EOE {}",
            self.malformed, self.long_lines, self.orphan_eoe
        )?;
        writeln!(
            f,
            "LOST records {} (lost {})  serial gaps {} ({} serials)  late {}  resets {}",
            self.lost_records,
            self.lost,
            self.serial_gaps,
            self.gap_serials,
            self.late_serials,
            self.serial_resets
        )?;
        for m in &self.malformed_examples {
            writeln!(f, "  {m}")?;
        }
        Ok(())
    }
}
