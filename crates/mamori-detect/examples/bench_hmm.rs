//! Times CategoricalHmm fit + score on a window file from `bench/make_windows.py`.
//!
//! usage: cargo run --release -p mamori-detect --example bench_hmm -- WINDOWS.txt [--n-iter 10] [--states 3]
//!
//! Fits from one random initialisation for exactly `n-iter` EM iterations (no early stop), then
//! scores every window; prints `{fit_seconds, score_seconds, final_loglik, n_windows, ...}` as JSON.
//! `bench/hmm_bench.py` does the same with hmmlearn.

use std::time::Instant;

use mamori_detect::hmm::CategoricalHmmParams;
use mamori_detect::{Symbol, WindowScorer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: bench_hmm WINDOWS.txt [--n-iter N] [--states N]")?;
    let opt = |name: &str, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args.get(i + 1).ok_or("missing value")?.parse()?),
            None => Ok(default),
        }
    };
    let n_iter = opt("--n-iter", 10)?;
    let states = opt("--states", 3)?;
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty window file")?;
    let n_symbols: usize = header
        .split_whitespace()
        .find_map(|f| f.strip_prefix("n_symbols="))
        .ok_or("header lacks n_symbols=")?
        .parse()?;
    let windows: Vec<Vec<Symbol>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .map(str::parse)
                .collect::<Result<Vec<Symbol>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let refs: Vec<&[Symbol]> = windows.iter().map(Vec::as_slice).collect();

    let t0 = Instant::now();
    let fit = CategoricalHmmParams::new()
        .n_states(states)
        .max_iter(n_iter)
        .tol(f64::NEG_INFINITY)
        .n_restarts(1)
        .seed(0)
        .fit_report(&refs, n_symbols)?;
    let fit_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let scores = fit.model.score_many(&refs);
    let score_seconds = t1.elapsed().as_secs_f64();
    let score_sum: f64 = scores.iter().sum();
    println!(
        "{{\"impl\": \"mamori\", \"fit_seconds\": {fit_seconds}, \"score_seconds\": {score_seconds}, \
         \"final_loglik\": {}, \"last_history_loglik\": {}, \"n_iter\": {}, \"n_windows\": {}, \
         \"score_sum\": {score_sum}}}",
        fit.log_likelihood,
        fit.history.last().copied().unwrap_or(f64::NAN),
        fit.history.len(),
        windows.len()
    );
    Ok(())
}
