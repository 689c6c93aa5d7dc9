#!/usr/bin/env python3
"""hmmlearn side of the HMM benchmark (the Rust side: crates/mamori-detect/examples/bench_hmm.rs).

usage: hmm_bench.py WINDOWS.txt [--n-iter 10] [--states 3] [--implementation scaling|log]

Fits CategoricalHMM from hmmlearn's random initialisation (random_state=0) for exactly n-iter EM
iterations (tol=-inf), then scores every window with model.score (one call per window, as a
detector scores windows); prints {fit_seconds, score_seconds, final_loglik, n_windows, ...} as JSON.
Also times two batched alternatives as separate fields: `score_one_call_seconds`, one
model.score(X, lengths) call over all windows (hmmlearn still loops over the sequences inside, and
returns only the total), and `score_batched_numpy_seconds`, a scaled forward pass vectorised with
numpy over all windows at once using the fitted parameters (per-window scores; equal-length
windows only, checked against the per-window scores).
Run with the reference environment: .venv-ref/bin/python (scripts/setup-reference-venv.sh).
"""
import argparse
import json
import time

import numpy as np
from hmmlearn.hmm import CategoricalHMM

ap = argparse.ArgumentParser()
ap.add_argument("windows")
ap.add_argument("--n-iter", type=int, default=10)
ap.add_argument("--states", type=int, default=3)
ap.add_argument("--implementation", default="scaling", choices=["scaling", "log"])
a = ap.parse_args()

with open(a.windows) as f:
    header = f.readline().split()
    n_symbols = int(next(h for h in header if h.startswith("n_symbols=")).split("=")[1])
    windows = [np.array([int(x) for x in line.split()], dtype=int).reshape(-1, 1) for line in f if line.strip()]
X = np.concatenate(windows)
lengths = [len(w) for w in windows]

model = CategoricalHMM(
    n_components=a.states,
    n_features=n_symbols,
    n_iter=a.n_iter,
    tol=-np.inf,
    random_state=0,
    implementation=a.implementation,
)
t0 = time.perf_counter()
model.fit(X, lengths)
fit_seconds = time.perf_counter() - t0
t1 = time.perf_counter()
scores = [-model.score(w) for w in windows]
score_seconds = time.perf_counter() - t1

t2 = time.perf_counter()
one_call_total = model.score(X, lengths)
score_one_call_seconds = time.perf_counter() - t2


def forward_batched(model, W):
    """log P(window) for every row of the (n, T) symbol matrix W: scaled forward pass, numpy-vectorised over windows."""
    B = model.emissionprob_.T  # (n_symbols, n_states)
    alpha = model.startprob_[None, :] * B[W[:, 0]]
    c = alpha.sum(1)
    ll = np.log(c)
    alpha /= c[:, None]
    for t in range(1, W.shape[1]):
        alpha = (alpha @ model.transmat_) * B[W[:, t]]
        c = alpha.sum(1)
        ll += np.log(c)
        alpha /= c[:, None]
    return ll


score_batched_numpy_seconds = None
batched_max_abs_diff = None
if len(set(lengths)) == 1:
    W = X.reshape(len(windows), lengths[0])
    t3 = time.perf_counter()
    batched = -forward_batched(model, W)
    score_batched_numpy_seconds = time.perf_counter() - t3
    batched_max_abs_diff = float(np.max(np.abs(batched - np.asarray(scores))))
print(json.dumps({
    "impl": f"hmmlearn-{a.implementation}",
    "fit_seconds": fit_seconds,
    "score_seconds": score_seconds,
    "final_loglik": float(model.score(X, lengths)),
    "last_history_loglik": float(model.monitor_.history[-1]),
    "n_iter": len(model.monitor_.history),
    "n_windows": len(windows),
    "score_sum": float(np.sum(scores)),
    "score_one_call_seconds": score_one_call_seconds,
    "score_one_call_total": float(one_call_total),
    "score_batched_numpy_seconds": score_batched_numpy_seconds,
    "score_batched_max_abs_diff": batched_max_abs_diff,
}))
