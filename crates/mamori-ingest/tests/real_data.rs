//! Real data sets from `../shared/data`. The tests are `#[ignore]`d (run them with
//! `--include-ignored`) and fail when their data set is missing.

use std::collections::BTreeMap;

use mamori_ingest::{lidds_exploit_time_ns, open_path, read_adfa_dataset, Format, SyscallEvent};
mod common;

use common::shared_data;

#[test]
#[ignore = "needs ../shared/data (lid-ds-2021 Bruteforce_CWE-307); run with --include-ignored"]
fn lid_ds_bruteforce_recording() {
    let sc = shared_data("lid-ds-2021/Bruteforce_CWE-307/aggressive_nightingale_1018.sc");
    let mut reader = open_path(&sc, None, false).unwrap();
    assert_eq!(reader.format(), Format::LidDs);
    let events: Vec<SyscallEvent> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(reader.lines_read(), 23_468);
    assert!(reader.skipped().is_empty());
    // 11,734 enter and 11,734 exit lines: 11,727 pairs, 7 exits whose enter precedes the
    // recording, and 7 enters still waiting for their exit when it stops (emitted at the end).
    assert_eq!(events.len(), 11_741);
    let tail: Vec<(&str, Option<i64>)> = events[11_734..]
        .iter()
        .map(|e| (e.syscall.as_str(), e.ret))
        .collect();
    assert!(tail
        .iter()
        .all(|(s, r)| ["semop", "select", "epoll_wait"].contains(s) && r.is_none()));
    let with_ret = events.iter().filter(|e| e.ret.is_some()).count();
    assert_eq!(with_ret, 10_317); // exits without res= (wait4, getsockname…) have no ret

    let open = events
        .iter()
        .find(|e| e.time_ns == Some(1631078867467766934))
        .expect("the open of /dev/urandom");
    assert_eq!(open.syscall, "open");
    assert_eq!(open.pid, Some(2902774));
    assert_eq!(open.tid, Some(2902774));
    assert_eq!(open.process.as_deref(), Some("apache2"));
    assert_eq!(open.fd_path.as_deref(), Some("/dev/urandom"));
    assert_eq!(open.ret, Some(13));
    assert_eq!(open.args[1], "/dev/urandom");

    let accept = events
        .iter()
        .find(|e| e.time_ns == Some(1631078867467692105))
        .unwrap();
    assert_eq!(accept.syscall, "accept");
    assert_eq!(accept.ret, Some(12));
    assert_eq!(
        accept.fd_path.as_deref(),
        Some("192.168.240.3:50140->192.168.240.21:443")
    );

    let exploit = lidds_exploit_time_ns(&sc)
        .unwrap()
        .expect("an exploit time");
    assert_eq!(exploit / 1000, 1_631_078_877_513_988);
    let first = events.iter().filter_map(|e| e.time_ns).min().unwrap();
    let last = events.iter().filter_map(|e| e.time_ns).max().unwrap();
    assert!(
        first < exploit && exploit < last,
        "{first} {exploit} {last}"
    );
}

#[test]
#[ignore = "needs ../shared/data (adfa-ld); run with --include-ignored"]
fn adfa_ld_dataset() {
    let set = read_adfa_dataset(shared_data("adfa-ld")).unwrap();
    assert_eq!(set.training.len(), 833);
    assert_eq!(set.validation.len(), 4372);
    assert_eq!(set.attacks.len(), 746);
    let mut families: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &set.attacks {
        *families.entry(t.family.as_deref().unwrap()).or_default() += 1;
        assert!((1..=10).contains(&t.variant.unwrap()));
    }
    let want: BTreeMap<&str, usize> = [
        ("Adduser", 91),
        ("Hydra_FTP", 162),
        ("Hydra_SSH", 176),
        ("Java_Meterpreter", 124),
        ("Meterpreter", 75),
        ("Web_Shell", 118),
    ]
    .into_iter()
    .collect();
    assert_eq!(families, want);
    assert!(set.training.iter().all(|t| t.family.is_none()));
    assert!(set.training[0].path.ends_with("UTD-0001.txt"));
    let names: Vec<_> = set.training[0].names().take(5).collect();
    assert_eq!(names, ["close", "close", "dup2", "close", "pipe"]);
    let lengths = set
        .training
        .iter()
        .chain(&set.validation)
        .chain(&set.attacks)
        .map(|t| t.calls.len());
    assert_eq!(lengths.clone().min(), Some(75));
    assert_eq!(lengths.max(), Some(4494));
    let total: usize = [&set.training, &set.validation, &set.attacks]
        .iter()
        .flat_map(|v| v.iter())
        .map(|t| t.calls.len())
        .sum();
    assert_eq!(total, 2_747_550);

    // A single trace through the streaming reader, with auto-detection.
    let mut reader = open_path(&set.training[0].path, None, false).unwrap();
    assert_eq!(reader.format(), Format::Adfa);
    let events: Vec<SyscallEvent> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(events, set.training[0].events().collect::<Vec<_>>());
}
