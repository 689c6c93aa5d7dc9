//! mamori's own JSON lines: one [`SyscallEvent`] object per line. A call to `exit` or
//! `exit_group` is followed by a [`Record::Exit`] for its thread.

use std::collections::VecDeque;
use std::io::{self, Write};

use crate::{LineError, LineParser, Record, SyscallEvent};

pub(crate) struct JsonlParser;

impl LineParser for JsonlParser {
    fn parse_line(&mut self, line: &str, out: &mut VecDeque<Record>) -> Result<(), LineError> {
        if line.trim().is_empty() {
            return Ok(());
        }
        let event: SyscallEvent = serde_json::from_str(line)
            .map_err(|e| LineError::new("invalid event", e.to_string()))?;
        // The format has no exit lines: a thread's `exit` or a process's `exit_group` is its last
        // call, so it also ends that thread's stream (as strace's `+++ exited` line does).
        let ends = matches!(event.syscall.as_str(), "exit" | "exit_group");
        let (who, time_ns) = (event.tid.or(event.pid), event.time_ns);
        out.push_back(Record::Call(event));
        if ends {
            out.push_back(Record::Exit { pid: who, time_ns });
        }
        Ok(())
    }
}

/// Writes `event` as one JSON line (the format [`crate::Format::Jsonl`] reads).
pub fn write_jsonl(event: &SyscallEvent, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, event).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventReader, Format};

    #[test]
    fn round_trip() {
        let events = vec![
            SyscallEvent::named("read"),
            SyscallEvent {
                time_ns: Some(-5),
                pid: Some(1),
                tid: Some(2),
                process: Some("motion".into()),
                container: Some("abc".into()),
                syscall: "write".into(),
                args: vec!["3".into(), "line\n\"quoted\" \u{1F600}".into()],
                fd_path: Some("/var/log/motion.log".into()),
                ret: Some(-1),
            },
        ];
        let mut buf = Vec::new();
        for e in &events {
            write_jsonl(e, &mut buf).unwrap();
        }
        buf.extend_from_slice(b"\n  \n");
        let back: Vec<SyscallEvent> = EventReader::new(&buf[..], "mem", Format::Jsonl, false)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, events);
    }

    #[test]
    fn exit_group_ends_the_thread() {
        let text = "{\"syscall\":\"read\",\"pid\":4,\"tid\":5}\n{\"syscall\":\"exit_group\",\"pid\":4,\"tid\":5,\"time_ns\":9}\n";
        let mut r = EventReader::new(text.as_bytes(), "x.jsonl", Format::Jsonl, false);
        let mut records = Vec::new();
        while let Some(rec) = r.next_record() {
            records.push(rec.unwrap());
        }
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[2],
            Record::Exit {
                pid: Some(5),
                time_ns: Some(9)
            }
        );
    }

    #[test]
    fn error_names_field() {
        let text = "{\"syscall\":\"read\"}\n{\"syscall\":\"read\",\"bogus\":1}\n";
        let err = EventReader::new(text.as_bytes(), "x.jsonl", Format::Jsonl, false)
            .nth(1)
            .unwrap()
            .unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.line(), 2);
        assert!(msg.starts_with("x.jsonl:2:"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
        assert!(msg.contains("column"), "{msg}");
    }
}
