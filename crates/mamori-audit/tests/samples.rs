//! Real auditd logs (raw and ENRICHED) from `$MAMORI_AUDIT_SAMPLES`, as
//! `scripts/lab/audit/record-samples.sh DIR` records them under the real auditd (`.ci/run` does):
//! `*.log` files, and `*.facts.json` files that say what a recorded scenario did (its process
//! chain, the files it modified, the socket it came in through).
//!
//! Checks that need no answer file: every line parses; each event's records share a serial;
//! the built-in syscall table agrees with auditd's own `SYSCALL=` interpretation and the
//! SOCKADDR decoder with its `SADDR={ … }`; EXECVE arguments are all there. With facts: every
//! chain step shows in a process title or argv, every modified file in a PATH (resolved against
//! the CWD), the entry socket in a SOCKADDR.

use std::collections::HashSet;
use std::path::PathBuf;

use mamori_audit::syscalls::syscall_name;
use mamori_audit::{open_path_with, AuditEvent, ParseStats, ReaderOptions, SockAddr};

const IGNORE: &str = "needs real auditd logs: MAMORI_AUDIT_SAMPLES";

/// The samples' directory; without it these tests fail rather than pass untested.
fn samples_dir() -> PathBuf {
    match std::env::var_os("MAMORI_AUDIT_SAMPLES") {
        Some(dir) => PathBuf::from(dir),
        None => panic!(
            "{IGNORE}: set it to a directory recorded by scripts/lab/audit/record-samples.sh"
        ),
    }
}

fn files(ext: &str) -> Vec<PathBuf> {
    let dir = samples_dir();
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} ({IGNORE})", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    v.sort();
    v
}

fn read(path: &PathBuf) -> (Vec<AuditEvent>, ParseStats) {
    // Strict: a real log has no malformed line.
    let opts = ReaderOptions {
        strict: true,
        ..ReaderOptions::default()
    };
    let mut r = open_path_with(path, opts).unwrap();
    let events = r
        .by_ref()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (events, r.stats().clone())
}

fn logs() -> Vec<(PathBuf, Vec<AuditEvent>, ParseStats)> {
    let logs: Vec<_> = files(".log")
        .into_iter()
        .chain(files(".log.gz"))
        .map(|p| {
            let (e, s) = read(&p);
            (p, e, s)
        })
        .collect();
    assert!(!logs.is_empty(), "no *.log in {}", samples_dir().display());
    logs
}

#[test]
#[ignore = "needs real auditd logs: MAMORI_AUDIT_SAMPLES"]
fn every_record_lands_in_one_event() {
    for (path, events, stats) in logs() {
        let name = path.display();
        assert_eq!(stats.malformed + stats.long_lines, 0, "{name}");
        let in_events: u64 = events.iter().map(|e| e.records.len() as u64).sum();
        assert_eq!(in_events + stats.orphan_eoe, stats.records, "{name}");
        assert_eq!(stats.events, events.len() as u64, "{name}");
        assert!(stats.records > 0, "{name}");
        for e in &events {
            assert!(!e.records.is_empty());
        }
        // Kernel events end at their PROCTITLE or EOE; few should need the idle flush.
        let with_syscall = events.iter().filter(|e| e.syscall.is_some()).count() as u64;
        assert!(
            stats.by_idle + stats.by_capacity <= with_syscall / 100 + 5,
            "{name}: {stats}"
        );
        eprintln!("{name}: {} events\n{stats}", events.len());
    }
}

#[test]
#[ignore = "needs real auditd logs: MAMORI_AUDIT_SAMPLES"]
fn syscall_names_and_sockaddrs_agree_with_auditd_interpretations() {
    let (mut names, mut saddrs) = (0, 0);
    for (path, events, _) in logs() {
        for e in &events {
            if let (Some(s), Some(r)) = (&e.syscall, e.record("SYSCALL")) {
                if let Some(theirs) = r.interpreted_get("SYSCALL") {
                    if let Some(ours) = syscall_name(&s.arch, s.number) {
                        assert_eq!(ours, theirs, "{}: serial {}", path.display(), e.serial);
                        names += 1;
                    }
                }
            }
            let (Some(sa), Some(r)) = (&e.sockaddr, e.record("SOCKADDR")) else {
                continue;
            };
            let Some(theirs) = r.interpreted_get("SADDR") else {
                continue;
            };
            let field = |k: &str| {
                theirs
                    .trim_matches(|c| c == '{' || c == '}' || c == ' ')
                    .split(' ')
                    .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                    .map(str::to_owned)
            };
            let ok = match sa {
                SockAddr::Inet { addr, port } | SockAddr::Inet6 { addr, port } => {
                    field("laddr").as_deref() == Some(addr.as_str())
                        && field("lport") == Some(port.to_string())
                }
                SockAddr::Netlink { pid } => field("nlnk-pid") == Some(pid.to_string()),
                SockAddr::Unix { path } => field("path").as_deref() == Some(path.as_str()),
                SockAddr::Other { .. } => true,
            };
            assert!(
                ok,
                "{}: serial {}: {sa:?} vs {theirs}",
                path.display(),
                e.serial
            );
            saddrs += 1;
        }
    }
    eprintln!("checked {names} syscall names, {saddrs} sockaddrs against ENRICHED");
}

#[test]
#[ignore = "needs real auditd logs: MAMORI_AUDIT_SAMPLES"]
fn execve_arguments_are_complete() {
    for (path, events, _) in logs() {
        for e in &events {
            if let Some(x) = &e.execve {
                assert_eq!(
                    x.argv.len(),
                    x.argc,
                    "{}: serial {}",
                    path.display(),
                    e.serial
                );
                let s = e.syscall.as_ref().expect("EXECVE comes with its SYSCALL");
                assert!(
                    s.name.as_deref().is_some_and(|n| n.starts_with("execve")),
                    "{s:?}"
                );
            }
        }
    }
}

/// A scenario's facts, as the recorder wrote them.
struct Facts {
    name: String,
    damaged: String,
    entry: String,
    chain: Vec<String>,
    modified: Vec<String>,
}

fn facts() -> Vec<Facts> {
    files(".facts.json")
        .into_iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            let list = |k: &str| -> Vec<String> {
                v[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Facts {
                name: s("scenario"),
                damaged: s("damaged"),
                entry: s("entry"),
                chain: list("chain"),
                modified: list("modified"),
            }
        })
        .collect()
}

#[test]
#[ignore = "needs real auditd logs: MAMORI_AUDIT_SAMPLES"]
fn recorded_scenarios_are_visible_in_the_decoded_views() {
    let logs = logs();
    let mut checked = 0;
    for f in facts() {
        // The log that holds this scenario: the one whose PATHs name the damaged file.
        let resolved = |e: &AuditEvent| -> Vec<String> {
            e.paths
                .iter()
                .filter_map(|p| p.name.clone())
                .map(|n| match (&e.cwd, n.starts_with('/')) {
                    (Some(cwd), false) => format!("{}/{}", cwd.trim_end_matches('/'), n),
                    _ => n,
                })
                .collect()
        };
        let Some((path, events, _)) = logs
            .iter()
            .find(|(_, evs, _)| evs.iter().any(|e| resolved(e).contains(&f.damaged)))
        else {
            eprintln!("{}: no log names {}", f.name, f.damaged);
            continue;
        };
        let files: HashSet<String> = events.iter().flat_map(resolved).collect();
        for m in &f.modified {
            assert!(
                files.contains(m),
                "{}: {m} not in any PATH of {}",
                f.name,
                path.display()
            );
        }
        let titles: Vec<String> = events
            .iter()
            .flat_map(|e| {
                e.proctitle
                    .clone()
                    .into_iter()
                    .chain(e.execve.as_ref().map(|x| x.argv.join(" ")))
            })
            .collect();
        for step in &f.chain {
            assert!(
                titles.iter().any(|t| t.contains(step.as_str())),
                "{}: {step}",
                f.name
            );
        }
        if let Some(addr) = f.entry.strip_prefix("socket:") {
            assert!(
                events
                    .iter()
                    .any(|e| e.sockaddr.as_ref().is_some_and(|s| s.to_string() == addr)),
                "{}: no SOCKADDR {addr}",
                f.name
            );
        }
        checked += 1;
    }
    eprintln!("{checked} scenarios checked");
}
