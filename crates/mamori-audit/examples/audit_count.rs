//! Reads audit logs (plain or gzip; `-` for stdin) and prints events by type and the read's
//! counters. The benchmark (`bench/audit-parse.sh`) times it.
//!
//! usage: audit_count [--strict] [--quiet] FILE...
//!   --strict  stop at the first malformed line
//!   --quiet   print only the totals line (records, events, seconds, records/s)

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use mamori_audit::{open_path_with, ParseStats, ReaderOptions};

fn main() -> ExitCode {
    let mut strict = false;
    let mut quiet = false;
    let mut files = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--strict" => strict = true,
            "--quiet" => quiet = true,
            "-h" | "--help" => {
                eprintln!("usage: audit_count [--strict] [--quiet] FILE...");
                return ExitCode::SUCCESS;
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        eprintln!("usage: audit_count [--strict] [--quiet] FILE...");
        return ExitCode::from(2);
    }
    let opts = ReaderOptions {
        strict,
        ..ReaderOptions::default()
    };
    let started = Instant::now();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut records_by_type: BTreeMap<String, u64> = BTreeMap::new();
    let (mut with_syscall, mut with_exec, mut paths, mut sockaddrs) = (0u64, 0u64, 0u64, 0u64);
    let mut total = ParseStats::default();
    for f in &files {
        let mut reader = match open_path_with(f, opts.clone()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("audit_count: {e}");
                return ExitCode::FAILURE;
            }
        };
        for ev in reader.by_ref() {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    eprintln!("audit_count: {f}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // Touch the decoded views, as a consumer would.
            with_syscall += u64::from(ev.syscall.is_some());
            with_exec += u64::from(ev.execve.as_ref().is_some_and(|e| !e.argv.is_empty()));
            paths += ev.paths.len() as u64;
            sockaddrs += u64::from(ev.sockaddr.is_some());
            if !quiet {
                let lead = if ev.syscall.is_some() {
                    "SYSCALL"
                } else {
                    ev.records.first().map_or("?", |r| r.kind.as_str())
                };
                *by_type.entry(lead.to_owned()).or_default() += 1;
                for r in &ev.records {
                    if let Some(n) = records_by_type.get_mut(r.kind.as_str()) {
                        *n += 1;
                    } else {
                        records_by_type.insert(r.kind.clone(), 1);
                    }
                }
            }
        }
        total.merge(reader.stats(), 16);
    }
    let secs = started.elapsed().as_secs_f64();
    if !quiet {
        println!("events by leading type:");
        for (k, n) in &by_type {
            println!("  {k:<20} {n}");
        }
        println!("records by type:");
        for (k, n) in &records_by_type {
            println!("  {k:<20} {n}");
        }
        println!(
            "decoded: syscall {with_syscall}  execve {with_exec}  paths {paths}  sockaddr {sockaddrs}"
        );
        print!("{total}");
    }
    println!(
        "records {} events {} seconds {:.3} records_per_s {:.0}",
        total.records,
        total.events,
        secs,
        total.records as f64 / secs.max(1e-9)
    );
    if total.malformed > 0 && strict {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
