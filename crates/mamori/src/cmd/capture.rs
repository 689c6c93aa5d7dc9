//! `mamori capture`: record containers' system calls live, in mamori's JSON-lines format.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use mamori_ingest::{write_jsonl, Record};

use mamori_agent::config::Backend;
use mamori_agent::live::{LiveOptions, Scope, SyscallCapture};
use mamori_agent::{stop_on_signals, subject_of};

/// Record system calls of running containers (eBPF; ptrace as a fallback).
///
/// Example: mamori capture --container cam -o cam.jsonl --duration 10m
#[derive(Args, Debug)]
pub struct CaptureArgs {
    /// Container to record (name or id; repeatable). Without it, every container.
    #[arg(long = "container", value_name = "NAME")]
    pub containers: Vec<String>,
    /// Also record processes outside containers.
    #[arg(long)]
    pub host: bool,
    /// Output file (JSON lines); `-` for stdout.
    #[arg(short, long, default_value = "-", value_name = "FILE")]
    pub output: PathBuf,
    /// Stop after this long (e.g. `30s`, `15m`); default: until SIGINT/SIGTERM.
    #[arg(long, value_name = "DURATION", value_parser = crate::cmd::numbers::duration)]
    pub duration: Option<Duration>,
    /// Capture engine.
    #[arg(long, value_parser = crate::cmd::agent::parse_backend, default_value_t = Backend::Ebpf, value_name = "ENGINE")]
    pub backend: Backend,
    /// Bytes of each written buffer to keep (at most 256).
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub write_bytes: u32,
    /// Do not record the request line each newly accepted connection receives (eBPF).
    #[arg(long)]
    pub no_request_data: bool,
    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// What a capture recorded.
pub struct CaptureSummary {
    /// Calls written.
    pub events: u64,
    /// Records the probe dropped.
    pub dropped: u64,
    /// Seconds captured.
    pub seconds: f64,
}

/// Captures into `out` until `duration` or a signal; shared with `mamori learn`.
pub fn capture_to(
    scope: Scope,
    backend: Backend,
    write_bytes: u32,
    request_data: bool,
    duration: Option<Duration>,
    out: &mut dyn Write,
) -> Result<CaptureSummary> {
    let stop = stop_on_signals()?;
    let mut live = SyscallCapture::start(
        &LiveOptions {
            backend,
            write_bytes,
            request_data,
            ring_mib: 16,
            queue_batches: 1024,
        },
        scope.clone(),
    )?;
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let mut events = 0u64;
    let directory = Arc::clone(&live.directory);
    let mut write_batch =
        |batch: Vec<mamori_capture::Captured>, out: &mut dyn Write| -> Result<()> {
            for c in batch {
                let Record::Call(mut e) = c.record else {
                    continue;
                };
                let Some(subject) = subject_of(&directory, c.cgroup, scope.include_host) else {
                    continue;
                };
                e.container = Some(subject.name().to_string());
                write_jsonl(&e, &mut &mut *out)?;
                events += 1;
            }
            Ok(())
        };
    loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match live.batches.recv_timeout(Duration::from_millis(200)) {
            Ok(batch) => write_batch(batch, out)?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let dropped = live
        .probe_counters()
        .map_or(0, |c| c.dropped + c.undecodable);
    live.stop();
    while let Ok(batch) = live.batches.try_recv() {
        write_batch(batch, out)?;
    }
    out.flush()?;
    Ok(CaptureSummary {
        events,
        dropped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub fn run(args: CaptureArgs) -> Result<()> {
    if args.containers.is_empty() && args.backend == Backend::Ptrace {
        bail!("--backend ptrace needs --container NAME");
    }
    let scope = Scope {
        containers: args.containers.clone(),
        include_host: args.host,
    };
    let mut out: BufWriter<Box<dyn Write>> = if args.output.as_os_str() == "-" {
        BufWriter::new(Box::new(std::io::stdout().lock()))
    } else {
        let file = std::fs::File::create(&args.output)
            .with_context(|| format!("cannot create {}", args.output.display()))?;
        BufWriter::new(Box::new(file))
    };
    let summary = capture_to(
        scope,
        args.backend,
        args.write_bytes,
        !args.no_request_data,
        args.duration,
        &mut out,
    )?;
    if !args.quiet {
        eprintln!(
            "mamori: captured {} calls in {:.1}s ({:.0}/s), {} dropped by the probe",
            summary.events,
            summary.seconds,
            summary.events as f64 / summary.seconds.max(1e-9),
            summary.dropped
        );
    }
    Ok(())
}
