//! The probe's ring-buffer record (`struct event` in mamori.bpf.c), decoded without copying.

/// Bytes before the payload: ts, cgroup, tgid, tid, nr, kind, len, ret, args[6], comm[16].
pub const HEADER_SIZE: usize = 8 + 8 + 4 + 4 + 4 + 2 + 2 + 8 + 6 * 8 + 16;

/// Whether a record is a call's entry or its exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The call started; arguments are filled in.
    Enter,
    /// The call returned; `ret` is filled in.
    Exit,
    /// The call started and, although its kind of call reports no exit, this one will: a read
    /// of a newly accepted connection, whose exit carries the data received.
    EnterExitFollows,
}

/// One record from the probe, borrowing the ring buffer's bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    /// CLOCK_MONOTONIC nanoseconds.
    pub mono_ns: u64,
    /// The task's cgroup id.
    pub cgroup: u64,
    /// Process id.
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    /// Syscall number.
    pub nr: i32,
    /// Entry or exit.
    pub kind: Kind,
    /// Return value (exit records).
    pub ret: i64,
    /// Raw argument words (entry records).
    pub args: [u64; 6],
    /// Command name bytes, NUL-padded.
    pub comm: &'a [u8],
    /// Strings or buffer bytes the probe read for this call.
    pub payload: &'a [u8],
}

/// Why a record could not be decoded (a probe/user-space mismatch, never user input).
#[derive(Debug, thiserror::Error)]
#[error("malformed probe record of {len} bytes: {why}")]
pub struct RecordError {
    len: usize,
    why: &'static str,
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(w)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[off..off + 4]);
    u32::from_ne_bytes(w)
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}

impl<'a> RawEvent<'a> {
    /// Decodes one ring-buffer record.
    pub fn decode(b: &'a [u8]) -> Result<Self, RecordError> {
        let err = |why| RecordError { len: b.len(), why };
        if b.len() < HEADER_SIZE {
            return Err(err("shorter than the header"));
        }
        let kind = match u16_at(b, 28) {
            0 => Kind::Enter,
            1 => Kind::Exit,
            2 => Kind::EnterExitFollows,
            _ => return Err(err("unknown kind")),
        };
        let len = usize::from(u16_at(b, 30));
        let payload = b
            .get(HEADER_SIZE..HEADER_SIZE + len)
            .ok_or_else(|| err("payload longer than the record"))?;
        let mut args = [0u64; 6];
        for (i, a) in args.iter_mut().enumerate() {
            *a = u64_at(b, 40 + 8 * i);
        }
        Ok(RawEvent {
            mono_ns: u64_at(b, 0),
            cgroup: u64_at(b, 8),
            tgid: u32_at(b, 16),
            tid: u32_at(b, 20),
            nr: u32_at(b, 24) as i32,
            kind,
            ret: u64_at(b, 32) as i64,
            args,
            comm: &b[88..104],
            payload,
        })
    }

    /// The command name as text.
    pub fn comm(&self) -> String {
        let end = self
            .comm
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(self.comm.len());
        String::from_utf8_lossy(&self.comm[..end]).into_owned()
    }
}

/// Builds a record as the probe lays it out (tests and benchmarks).
#[allow(clippy::too_many_arguments)]
pub fn encode(
    mono_ns: u64,
    cgroup: u64,
    tgid: u32,
    tid: u32,
    nr: i32,
    kind: Kind,
    ret: i64,
    args: [u64; 6],
    comm: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_SIZE + payload.len());
    b.extend_from_slice(&mono_ns.to_ne_bytes());
    b.extend_from_slice(&cgroup.to_ne_bytes());
    b.extend_from_slice(&tgid.to_ne_bytes());
    b.extend_from_slice(&tid.to_ne_bytes());
    b.extend_from_slice(&nr.to_ne_bytes());
    let kind: u16 = match kind {
        Kind::Enter => 0,
        Kind::Exit => 1,
        Kind::EnterExitFollows => 2,
    };
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&(payload.len() as u16).to_ne_bytes());
    b.extend_from_slice(&ret.to_ne_bytes());
    for a in args {
        b.extend_from_slice(&a.to_ne_bytes());
    }
    let mut c = [0u8; 16];
    let n = comm.len().min(15);
    c[..n].copy_from_slice(&comm.as_bytes()[..n]);
    b.extend_from_slice(&c);
    b.extend_from_slice(payload);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_size_matches_the_probe_struct() {
        // 104 = offsetof(struct event, payload) in mamori.bpf.c
        assert_eq!(HEADER_SIZE, 104);
    }

    #[test]
    fn a_record_round_trips() {
        let b = encode(
            5,
            77,
            10,
            11,
            257,
            Kind::Enter,
            0,
            [1, 2, 3, 4, 5, 6],
            "motion",
            b"/etc\0",
        );
        let e = RawEvent::decode(&b).expect("decodes");
        assert_eq!(
            (e.mono_ns, e.cgroup, e.tgid, e.tid, e.nr),
            (5, 77, 10, 11, 257)
        );
        assert_eq!(e.kind, Kind::Enter);
        assert_eq!(e.args, [1, 2, 3, 4, 5, 6]);
        assert_eq!(e.comm(), "motion");
        assert_eq!(e.payload, b"/etc\0");
    }

    #[test]
    fn truncated_records_are_refused() {
        let b = encode(5, 77, 10, 11, 1, Kind::Exit, 3, [0; 6], "x", b"abc");
        assert!(RawEvent::decode(&b[..50]).is_err());
        assert!(RawEvent::decode(&b[..b.len() - 1]).is_err());
    }
}
