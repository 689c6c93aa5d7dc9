//! Tracee JSON events (`tracee --output json`).
//!
//! `eventName` (required) → `syscall`; `timestamp` (ns) → `time_ns`; `hostProcessId` /
//! `hostThreadId` when present and non-zero (unique across containers), else `processId` /
//! `threadId`; `processName`; `containerId` (else `container.id`, else `container.name`);
//! `args[].value` as text, in order (strings as-is, other values as compact JSON);
//! `returnValue` → `ret`. `fd_path` stays `None`: Tracee names a descriptor's path only in
//! some events' arguments, which are kept in `args`. Every event with an `eventName` is kept,
//! including Tracee's non-syscall events (`sched_process_exec`, signatures…).

use std::collections::VecDeque;

use serde_json::{Map, Value};

use crate::{json_object, LineError, LineParser, Record, SyscallEvent};

pub(crate) struct TraceeParser;

fn int(obj: &Map<String, Value>, key: &str) -> Option<i64> {
    match obj.get(key)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| u as i64))
            .or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn id(obj: &Map<String, Value>, host: &str, ns: &str) -> Option<u32> {
    let get = |k| int(obj, k).and_then(|n| u32::try_from(n).ok());
    get(host).filter(|&n| n != 0).or_else(|| get(ns))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl LineParser for TraceeParser {
    fn parse_line(&mut self, line: &str, out: &mut VecDeque<Record>) -> Result<(), LineError> {
        let Some(obj) = json_object(line)? else {
            return Ok(());
        };
        let obj = &obj;
        let Some(name) = obj.get("eventName").and_then(Value::as_str) else {
            return Err(LineError::new("no eventName", "no `eventName` string"));
        };
        let mut event = SyscallEvent::named(name);
        event.time_ns = int(obj, "timestamp");
        event.pid = id(obj, "hostProcessId", "processId");
        event.tid = id(obj, "hostThreadId", "threadId");
        event.process = obj.get("processName").and_then(text);
        let container = obj.get("container").and_then(Value::as_object);
        event.container = obj
            .get("containerId")
            .and_then(text)
            .or_else(|| container.and_then(|c| c.get("id")).and_then(text))
            .or_else(|| container.and_then(|c| c.get("name")).and_then(text));
        event.ret = int(obj, "returnValue");
        match obj.get("args") {
            None | Some(Value::Null) => {}
            Some(Value::Array(args)) => {
                for (i, arg) in args.iter().enumerate() {
                    let v = arg.get("value").ok_or_else(|| {
                        LineError::new("bad args", format!("args[{i}] has no `value`"))
                    })?;
                    event.args.push(match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    });
                }
            }
            Some(_) => return Err(LineError::new("bad args", "`args` is not an array")),
        }
        out.push_back(Record::Call(event));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{EventReader, Format, SyscallEvent};

    #[test]
    fn openat_event() {
        let line = r#"{"timestamp":1700000000123456789,"threadStartTime":1,"processorId":0,"processId":12,"cgroupId":1,"threadId":13,"parentProcessId":1,"hostProcessId":4012,"hostThreadId":4013,"hostParentProcessId":1,"userId":0,"mountNamespace":1,"pidNamespace":1,"processName":"motion","hostName":"h","containerId":"","container":{"id":"c0ffee","name":"cam"},"eventId":"257","eventName":"openat","matchedPolicies":[""],"argsNum":4,"returnValue":3,"syscall":"openat","args":[{"name":"dirfd","type":"int","value":-100},{"name":"pathname","type":"const char*","value":"/etc/localtime"},{"name":"flags","type":"int","value":"O_RDONLY|O_CLOEXEC"},{"name":"mode","type":"mode_t","value":0}]}"#;
        let v: Vec<SyscallEvent> = EventReader::new(line.as_bytes(), "t", Format::Tracee, false)
            .collect::<Result<_, _>>()
            .unwrap();
        let e = &v[0];
        assert_eq!(e.syscall, "openat");
        assert_eq!(e.time_ns, Some(1_700_000_000_123_456_789));
        assert_eq!((e.pid, e.tid), (Some(4012), Some(4013)));
        assert_eq!(e.process.as_deref(), Some("motion"));
        assert_eq!(e.container.as_deref(), Some("c0ffee"));
        assert_eq!(
            e.args,
            ["-100", "/etc/localtime", "O_RDONLY|O_CLOEXEC", "0"]
        );
        assert_eq!(e.ret, Some(3));
        assert_eq!(e.fd_path, None);
    }

    #[test]
    fn namespace_ids_without_host_ids() {
        let line = r#"{"processId":7,"threadId":8,"eventName":"close","args":null}"#;
        let e = EventReader::new(line.as_bytes(), "t", Format::Tracee, false)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!((e.pid, e.tid, e.time_ns), (Some(7), Some(8), None));
        let bad = r#"{"eventName":"x","args":[{"name":"a"}]}"#;
        let err = EventReader::new(bad.as_bytes(), "t", Format::Tracee, false)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("args[0] has no `value`"), "{err}");
    }
}
