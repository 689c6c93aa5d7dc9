//! Parity of `CategoricalHmm` with hmmlearn's `CategoricalHMM` on real ADFA-LD windows.
//!
//! Needs the ADFA-LD training traces (`../shared/data/adfa-ld/Training_Data_Master` beside the
//! repository) and the reference Python environment (`scripts/setup-reference-venv.sh`, or an
//! interpreter with hmmlearn in `MAMORI_REF_PYTHON`). The test is `#[ignore]`d for the data (run it
//! with `--include-ignored`) and fails without it; without the interpreter it is skipped locally
//! and fails in CI (`CI` set).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mamori_detect::hmm::{CategoricalHmm, CategoricalHmmParams};
use mamori_detect::rng::Rng;
use mamori_detect::Symbol;
use serde_json::{json, Value};

const TOP: usize = 24;
const SIZE: usize = 19;
const N_WINDOWS: usize = 400;
const N_ITER: usize = 25;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MAMORI_REF_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = repo_root().join(".venv-ref/bin/python");
    venv.exists().then_some(venv)
}

/// A few hundred windows of 19 from the first traces, syscalls ranked by frequency (top 24, the
/// rest "unknown" = 24), spread evenly over all stride-1 windows.
fn adfa_windows(dir: &Path) -> Vec<Vec<Symbol>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read ADFA-LD folder")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let traces: Vec<Vec<u32>> = files
        .iter()
        .take(60)
        .map(|f| {
            std::fs::read_to_string(f)
                .expect("read trace")
                .split_whitespace()
                .map(|x| x.parse().expect("syscall number"))
                .collect()
        })
        .collect();
    let mut freq: HashMap<u32, usize> = HashMap::new();
    for &s in traces.iter().flatten() {
        *freq.entry(s).or_default() += 1;
    }
    let mut ranked: Vec<(u32, usize)> = freq.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let rank: HashMap<u32, Symbol> = ranked
        .iter()
        .take(TOP)
        .enumerate()
        .map(|(i, (s, _))| (*s, i as Symbol))
        .collect();
    let mut all: Vec<Vec<Symbol>> = Vec::new();
    for t in &traces {
        let sym: Vec<Symbol> = t
            .iter()
            .map(|s| *rank.get(s).unwrap_or(&(TOP as Symbol)))
            .collect();
        all.extend(sym.windows(SIZE).map(<[Symbol]>::to_vec));
    }
    let step = (all.len() / N_WINDOWS).max(1);
    all.into_iter().step_by(step).take(N_WINDOWS).collect()
}

fn params_json(m: &CategoricalHmm) -> Value {
    let (n, k) = (m.n_states(), m.n_symbols());
    json!({
        "startprob": m.startprob(),
        "transmat": m.transmat().chunks(n).collect::<Vec<_>>(),
        "emissionprob": m.emissionprob().chunks(k).collect::<Vec<_>>(),
    })
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .flat_map(|x| match x.as_array() {
            Some(row) => row.iter().map(|y| y.as_f64().expect("number")).collect(),
            None => vec![x.as_f64().expect("number")],
        })
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
#[ignore = "needs ../shared/data (adfa-ld Training_Data_Master); run with --include-ignored"]
fn categorical_hmm_matches_hmmlearn_on_adfa_ld_windows() {
    let data = repo_root().join("../shared/data/adfa-ld/Training_Data_Master");
    assert!(
        data.is_dir(),
        "{} is missing: this test needs ../shared/data/adfa-ld beside the repository",
        data.display()
    );
    let Some(py) = python().filter(|p| p.exists()) else {
        let msg = "hmm parity needs the reference Python environment: run \
                   scripts/setup-reference-venv.sh (or set MAMORI_REF_PYTHON)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIP {msg}");
        return;
    };

    let windows = adfa_windows(&data);
    assert!(windows.len() >= 300, "only {} windows", windows.len());
    let refs: Vec<&[Symbol]> = windows.iter().map(Vec::as_slice).collect();
    let n_symbols = TOP + 1;

    // Scoring: a model fitted here (emission floor applied), exported as stored.
    let scorer = CategoricalHmmParams::new()
        .seed(7)
        .max_iter(30)
        .fit(&refs, n_symbols)
        .expect("fit");
    // Baum–Welch: from random parameters without zeros, a fixed number of iterations.
    let init = CategoricalHmm::random(3, n_symbols, &mut Rng::seeded(11)).expect("init");
    let tol = 0.0;
    let ours = CategoricalHmmParams::new()
        .max_iter(N_ITER)
        .tol(tol)
        .fit_from(&init, &refs)
        .expect("fit_from");

    let mut input = params_json(&scorer);
    input["windows"] = json!(windows);
    input["fit_init"] = params_json(&init);
    input["n_iter"] = json!(N_ITER);
    input["tol"] = json!(tol);
    let dir = std::env::temp_dir().join(format!("mamori-hmm-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (inp, out) = (dir.join("in.json"), dir.join("out.json"));
    std::fs::write(&inp, serde_json::to_vec(&input).expect("json")).expect("write input");
    let script = repo_root().join("scripts/reference/hmm_parity.py");
    let status = Command::new(&py)
        .arg(&script)
        .arg(&inp)
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    assert!(status.success(), "{} failed: {status}", script.display());
    let reference: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("read output")).expect("parse output");
    let _ = std::fs::remove_dir_all(&dir);

    let scores = floats(&reference["scores"]);
    assert_eq!(scores.len(), windows.len());
    let mut worst = 0.0f64;
    for (w, &py_ll) in refs.iter().zip(&scores) {
        let ll = scorer.log_likelihood(w);
        worst = worst.max(rel(ll, py_ll));
        assert!(
            rel(ll, py_ll) < 1e-9,
            "window {w:?}: ours {ll}, hmmlearn {py_ll}"
        );
    }
    eprintln!(
        "scores: {} windows, worst relative difference {worst:e}",
        scores.len()
    );

    let history = floats(&reference["fit_history"]);
    assert_eq!(history.len(), ours.history.len(), "iterations run");
    for (i, (a, b)) in ours.history.iter().zip(&history).enumerate() {
        assert!(rel(*a, *b) < 1e-6, "iteration {i}: ours {a}, hmmlearn {b}");
    }
    let fit_loglik = reference["fit_loglik"].as_f64().expect("fit_loglik");
    let last = *ours.history.last().expect("history");
    assert!(
        rel(last, fit_loglik) < 1e-6,
        "ours {last}, hmmlearn {fit_loglik}"
    );
    let final_score = reference["fit_final_score"]
        .as_f64()
        .expect("fit_final_score");
    assert!(
        rel(ours.log_likelihood, final_score) < 1e-6,
        "final: ours {}, hmmlearn {final_score}",
        ours.log_likelihood
    );
    eprintln!(
        "fit: {} iterations, final log-likelihood ours {} hmmlearn {final_score}",
        history.len(),
        ours.log_likelihood
    );
    // Fitted parameters agree too (ours carry the 1e-6 emission floor).
    let p = &reference["fit_params"];
    let theirs = [
        floats(&p["startprob"]),
        floats(&p["transmat"]),
        floats(&p["emissionprob"]),
    ];
    let mine = [
        ours.model.startprob(),
        ours.model.transmat(),
        ours.model.emissionprob(),
    ];
    for (t, m) in theirs.iter().zip(mine) {
        assert_eq!(t.len(), m.len());
        for (a, b) in t.iter().zip(m) {
            assert!((a - b).abs() < 1e-4, "parameter: hmmlearn {a}, ours {b}");
        }
    }
}
