//! `mamori convert`: any supported input → mamori's JSON-lines events.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mamori_ingest::Record;

use crate::input::{self, InputArgs};

/// Convert recordings to mamori's JSON-lines event format (one event per line).
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Recordings to convert, in order.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// Output file; stdout when omitted.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub input: InputArgs,
}

pub fn run(args: ConvertArgs) -> Result<()> {
    let sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    let mut n = 0u64;
    input::for_each_record(&args.inputs, &args.input, |_, record| {
        if let Record::Call(e) = record {
            mamori_ingest::write_jsonl(&e, &mut out)?;
            n += 1;
        }
        Ok(())
    })?;
    out.flush()?;
    eprintln!("mamori: converted {n} events");
    Ok(())
}
