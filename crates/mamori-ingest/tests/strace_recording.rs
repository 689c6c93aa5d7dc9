//! A real recording: `strace -f -tt -yy -s 64 -o testdata/sh_echo_cat.strace
//! sh -c 'echo hi > /tmp/y; cat /etc/localtime >/dev/null'` (strace 6.x, Debian 12).

use std::path::PathBuf;

use mamori_ingest::{open_path, Format, Record, SyscallEvent};

fn recording() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/sh_echo_cat.strace")
}

fn records() -> Vec<Record> {
    let mut reader = open_path(recording(), None, false).unwrap();
    assert_eq!(reader.format(), Format::Strace);
    let mut out = Vec::new();
    while let Some(r) = reader.next_record() {
        out.push(r.unwrap());
    }
    assert!(reader.skipped().is_empty());
    out
}

fn calls(records: &[Record]) -> Vec<&SyscallEvent> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Call(e) => Some(e),
            Record::Exit { .. } => None,
        })
        .collect()
}

#[test]
fn every_line_is_accounted_for() {
    let recs = records();
    let text = std::fs::read_to_string(recording()).unwrap();
    let lines = text.lines().count();
    let resumed = text.lines().filter(|l| l.contains("<... ")).count();
    let signals = text.lines().filter(|l| l.contains(" --- ")).count();
    let exits = text.lines().filter(|l| l.contains(" +++ ")).count();
    let calls = calls(&recs);
    assert_eq!(exits, 2);
    assert_eq!(recs.len() - calls.len(), exits);
    // Each resumed line completes an unfinished one: one event for both.
    assert_eq!(calls.len(), lines - resumed - signals - exits);
    assert_eq!(calls[0].syscall, "execve");
    assert_eq!(calls[0].args[0], "/usr/bin/sh");
}

#[test]
fn known_events() {
    let recs = records();
    let calls = calls(&recs);

    let localtime = calls
        .iter()
        .find(|e| {
            e.syscall == "openat" && e.args.get(1).map(String::as_str) == Some("/etc/localtime")
        })
        .expect("openat of /etc/localtime");
    assert_eq!(localtime.args, ["AT_FDCWD", "/etc/localtime", "O_RDONLY"]);
    assert_eq!(localtime.ret, Some(3));
    // /etc/localtime is a symlink; -yy shows the file actually opened.
    assert_eq!(
        localtime.fd_path.as_deref(),
        Some("/usr/share/zoneinfo/Etc/UTC")
    );
    assert_eq!(localtime.pid, Some(5826));
    assert_eq!(
        localtime.time_ns,
        Some((22 * 60 + 48) * 1_000_000_000 + 759_436_000)
    );

    let write = calls
        .iter()
        .find(|e| e.syscall == "write" && e.fd_path.as_deref() == Some("/tmp/y"))
        .expect("write to /tmp/y");
    assert_eq!(write.args, ["1", "hi\n", "3"]);
    assert_eq!(write.ret, Some(3));
    assert_eq!(write.pid, Some(5825));

    // vfork( <unfinished ...> / <... vfork resumed>) = 5826
    let vfork = calls.iter().find(|e| e.syscall == "vfork").unwrap();
    assert_eq!(vfork.ret, Some(5826));
    assert_eq!(
        vfork.time_ns,
        Some((22 * 60 + 48) * 1_000_000_000 + 756_208_000)
    );
    // wait4(-1,  <unfinished ...> / <... wait4 resumed>[{...}], 0, NULL) = 5826
    let wait4 = calls.iter().find(|e| e.syscall == "wait4").unwrap();
    assert_eq!(
        wait4.args,
        ["-1", "[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]", "0", "NULL"]
    );
    assert_eq!(wait4.ret, Some(5826));

    let dup2 = calls
        .iter()
        .find(|e| e.syscall == "dup2" && e.args[0] == "11")
        .unwrap();
    assert_eq!(dup2.fd_path.as_deref(), Some("/dev/null<char 1:3>"));

    let exit_group = calls
        .iter()
        .rev()
        .find(|e| e.syscall == "exit_group")
        .unwrap();
    assert_eq!(exit_group.ret, None);
    assert!(matches!(
        recs.last(),
        Some(Record::Exit {
            pid: Some(5825),
            time_ns: Some(_)
        })
    ));
}
