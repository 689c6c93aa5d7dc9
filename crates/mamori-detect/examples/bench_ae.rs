//! Trains and scores the autoencoder on a window file from `bench/make_windows.py`, printing
//! `{train_seconds, score_seconds, final_loss, n_windows, encoding}` as JSON. `bench/ae_bench.py`
//! does the same with PyTorch.
//!
//! ```text
//! cargo run --release -p mamori-detect --example bench_ae -- /tmp/aew.txt \
//!     --encoding onehot --epochs 30 --batch-size 256 [--seed 0]
//! ```

use std::time::Instant;

use mamori_detect::autoencoder::{AutoencoderParams, Encoding};
use mamori_detect::WindowScorer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut path = None;
    let (mut encoding, mut epochs, mut batch, mut seed) = ("onehot".to_string(), 30, 256, 0u64);
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).cloned().ok_or("missing value");
        match args[i].as_str() {
            "--encoding" => encoding = value()?,
            "--epochs" => epochs = value()?.parse()?,
            "--batch-size" => batch = value()?.parse()?,
            "--seed" => seed = value()?.parse()?,
            p if path.is_none() && !p.starts_with("--") => {
                path = Some(p.to_string());
                i += 1;
                continue;
            }
            other => return Err(format!("unexpected argument {other}").into()),
        }
        i += 2;
    }
    let path = path.ok_or("usage: bench_ae WINDOWS [--encoding onehot|bosc|class-index] ...")?;
    let enc = match encoding.as_str() {
        "onehot" => Encoding::OneHot,
        "bosc" => Encoding::Bosc,
        "class-index" | "classindex" => Encoding::ClassIndex,
        e => return Err(format!("unknown encoding {e}").into()),
    };

    let text = std::fs::read_to_string(&path)?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty file")?;
    let field = |name: &str| -> Result<usize, Box<dyn std::error::Error>> {
        let v = header
            .split_whitespace()
            .find_map(|t| t.strip_prefix(name))
            .ok_or_else(|| format!("header lacks {name}"))?;
        Ok(v.parse()?)
    };
    let (n_symbols, size) = (field("n_symbols=")?, field("size=")?);
    let windows: Vec<Vec<u16>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::parse).collect())
        .collect::<Result<_, _>>()?;
    let refs: Vec<&[u16]> = windows.iter().map(|w| &w[..]).collect();

    let params = AutoencoderParams::new()
        .encoding(enc)
        .epochs(epochs)
        .batch_size(batch)
        .validation_split(0.0)
        .seed(seed);
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let model = params.fit(&refs, n_symbols, size)?;
    let train_seconds = t.elapsed().as_secs_f64();
    let train_cpu_seconds = cpu_seconds() - cpu;
    let t = Instant::now();
    let scores = model.score_many(&refs);
    let score_seconds = t.elapsed().as_secs_f64();
    let mean_score = scores.iter().sum::<f64>() / scores.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "mamori-rust",
            "train_seconds": train_seconds,
            "train_cpu_seconds": train_cpu_seconds,
            "score_seconds": score_seconds,
            "final_loss": model.history().last(),
            "mean_score": mean_score,
            "n_windows": refs.len(),
            "encoding": encoding,
            "epochs": epochs,
            "batch_size": batch,
            "threads": 1,
        })
    );
    Ok(())
}

/// CPU time of this (single-threaded) process so far, from `/proc/self/schedstat` (Linux); 0
/// elsewhere. Reported because the benchmark machine may be shared.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns * 1e-9)
}
