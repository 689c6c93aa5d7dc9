//! `mamori`: anomaly detection for IoT gateways and the containers they run.
//!
//! Exit codes: 0 success (and, for `score`, no window over the threshold), 1 `score` found windows
//! over the threshold, 2 error.

mod cmd;

mod input;

use mamori_core::envelope as modelfile;
mod plot;
mod progress;
mod report;

use clap::{Parser, Subcommand};

/// Learns the normal system-call behaviour of a container and flags windows that depart from it.
///
/// A typical session: `mamori train` on a recording of normal operation writes a model file;
/// `mamori score` scores new recordings window by window; `mamori eval` measures detection and
/// false-positive rates on labelled data; `mamori convert` turns strace, Falco, Tracee, LID-DS or
/// ADFA-LD input into mamori's JSON-lines event format. Live: `mamori learn` watches a running
/// container and stores a model for its image; `mamori agent` watches containers and alerts.
#[derive(Parser, Debug)]
#[command(name = "mamori", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model on normal system-call events and write a model file.
    Train(Box<cmd::train::TrainArgs>),
    /// Score events window by window with a trained model (JSON lines on stdout).
    Score(cmd::score::ScoreArgs),
    /// Train, calibrate and measure models on labelled data (tables, JSON, ROC and timeline plots).
    Eval(Box<cmd::eval::EvalArgs>),
    /// Convert any supported input to mamori's JSON-lines event format.
    Convert(cmd::convert::ConvertArgs),
    /// Inspect model files.
    #[command(subcommand)]
    Model(cmd::model::ModelCommand),
    /// Record containers' system calls live (eBPF, or ptrace as a fallback) as JSON lines.
    Capture(cmd::capture::CaptureArgs),
    /// Learn a container image's normal behaviour (live or from a recording) for the agent.
    Learn(Box<cmd::learn::LearnArgs>),
    /// Watch containers live: score their system calls, raise alerts, serve /metrics.
    Agent(Box<cmd::agent::AgentArgs>),
    /// Network anomaly detection: features, SVM / isolation-forest training, scoring, evaluation.
    #[command(subcommand)]
    Net(cmd::net::NetCommand),
    /// W3C WoT Things: probe them against their Thing Descriptions, add them to the agent, status.
    #[command(subcommand)]
    Things(cmd::things::ThingsCommand),
    /// Root cause from Linux audit logs: BackTracker to the entry point, forward tracking, DOT/SVG.
    #[command(subcommand)]
    Trace(cmd::trace::TraceCommand),
    /// Certificates for log shipping: a CA, device and collector certificates.
    #[command(subcommand)]
    Certs(cmd::ship::CertsCommand),
    /// Ship the audit log and mamori's alerts, sealed in a forward-secure chain, to a collector.
    Ship(Box<cmd::ship::ShipArgs>),
    /// Receive, verify and store devices' sealed logs (mutual TLS); metrics and live streams.
    Collect(Box<cmd::ship::CollectArgs>),
    /// Re-check a stored chain offline: gaps, reordering, tampering, a cut or rewritten tail.
    Verify(cmd::ship::VerifyArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => cmd::train::run(*a).map(|()| 0),
        Command::Score(a) => cmd::score::run(a),
        Command::Eval(a) => cmd::eval::run(*a).map(|()| 0),
        Command::Convert(a) => cmd::convert::run(a).map(|()| 0),
        Command::Model(c) => cmd::model::run(c).map(|()| 0),
        Command::Capture(a) => cmd::capture::run(a).map(|()| 0),
        Command::Learn(a) => cmd::learn::run(*a).map(|()| 0),
        Command::Agent(a) => cmd::agent::run(*a).map(|()| 0),
        Command::Net(c) => cmd::net::run(c),
        Command::Things(c) => cmd::things::run(c),
        Command::Trace(c) => cmd::trace::run(c),
        Command::Certs(c) => cmd::ship::certs(c),
        Command::Ship(a) => cmd::ship::ship(*a),
        Command::Collect(a) => cmd::ship::collect(*a),
        Command::Verify(a) => cmd::ship::verify(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                std::process::exit(0);
            }
            eprintln!("mamori: error: {}", error_chain(&err));
            std::process::exit(2);
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `context: cause: cause`, like anyhow's `{:#}`, but a cause whose text the message already
/// shows (an error that prints its OS error and also reports it as its source) is said once,
/// and control bytes from the input (ESC, NUL) are escaped, so an error cannot repaint the
/// terminal.
fn error_chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    escape_controls(&text)
}

/// Control characters other than newline and tab as `\u{1b}`-style escapes.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command parses with its defaults: a value parser whose type differs from its
    /// field's compiles but panics when the arguments are read.
    #[test]
    fn every_command_parses_with_its_defaults() {
        use clap::Parser;
        let invocations: &[&[&str]] = &[
            &["train", "-o", "m.json", "x.strace"],
            &["score", "-m", "m.json", "x.strace"],
            &["eval", "--adfa", "adfa"],
            &["learn", "--image", "motion"],
            &["convert", "x.strace"],
            &["capture", "-o", "x.jsonl", "--duration", "30s"],
            &["agent", "--config", "agent.toml"],
            &["net", "features", "x.pcap"],
            &["net", "train", "-o", "n.json", "x.pcap"],
            &["net", "score", "-m", "n.json", "x.pcap"],
            &["net", "eval", "-m", "n.json", "x.pcap"],
            &[
                "ship",
                "--name",
                "gw",
                "--collector",
                "127.0.0.1:1",
                "--spool",
                "s",
            ],
            &["collect", "--store", "s", "--certs", "c"],
        ];
        for args in invocations {
            let argv = std::iter::once("mamori").chain(args.iter().copied());
            if let Err(e) = Cli::try_parse_from(argv) {
                // a missing required flag is the invocation's fault, not a type mismatch
                panic!("{args:?}: {e}");
            }
        }
    }

    #[test]
    fn error_chain_says_a_cause_once_and_escapes_controls() {
        let os = std::io::Error::from_raw_os_error(2);
        // prints its OS error and also reports it as its source
        let twice = modelfile::ModelFileError::Io {
            path: "m.json".into(),
            source: os,
        };
        let err = anyhow::Error::new(twice).context("cannot read model m.json");
        let text = error_chain(&err);
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
        assert!(
            text.starts_with("cannot read model m.json: m.json: "),
            "{text}"
        );
        let err = anyhow::anyhow!("bad timestamp `\u{1b}[2J\0`");
        let text = error_chain(&err);
        assert!(!text.contains('\u{1b}') && !text.contains('\0'), "{text}");
        assert!(text.contains("\\u{1b}[2J\\u{0}"), "{text}");
    }
}
