#!/usr/bin/env python3
"""PyTorch CPU twin of `cargo run --release -p mamori-detect --example bench_ae`.

Same architecture (Linear+ReLU: d -> 160 -> 32 (ReLU, L1 activity 1e-6) -> 160 -> d, linear
output), Glorot-uniform weights and zero biases, per-feature min-max scaling (range 0 -> 1),
Adam(lr 1e-3, betas 0.9/0.999, eps 1e-7), MSE + l1 * sum|code| / batch, shuffled mini-batches,
fixed epochs (no early stopping). Threads are left at torch's default unless --threads is given,
and reported.
Prints {train_seconds, score_seconds, final_loss, n_windows, encoding, ...} as JSON.

usage: ae_bench.py WINDOWS [--encoding onehot|bosc|class-index] [--epochs 30] [--batch-size 256]
                   [--threads N]
"""
import argparse
import json
import time

import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("windows")
ap.add_argument("--encoding", default="onehot", choices=["onehot", "bosc", "class-index"])
ap.add_argument("--epochs", type=int, default=30)
ap.add_argument("--batch-size", type=int, default=256)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--hidden", type=int, default=160)
ap.add_argument("--bottleneck", type=int, default=32)
ap.add_argument("--activity-l1", type=float, default=1e-6)
ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
a = ap.parse_args()
if a.threads > 0:
    torch.set_num_threads(a.threads)

with open(a.windows) as f:
    header = f.readline().split()
    meta = dict(t.split("=") for t in header[1:])
    k, w = int(meta["n_symbols"]), int(meta["size"])
    wins = np.array([[int(x) for x in line.split()] for line in f if line.strip()], dtype=np.int64)
wins = np.minimum(wins, k - 1)
n = len(wins)
if a.encoding == "onehot":
    x = np.zeros((n, w * k), dtype=np.float32)
    x[np.arange(n)[:, None], np.arange(w)[None, :] * k + wins] = 1.0
elif a.encoding == "bosc":
    x = np.zeros((n, k), dtype=np.float32)
    np.add.at(x, (np.repeat(np.arange(n), w), wins.ravel()), 1.0)
    x /= w
else:
    x = (wins / (k - 1)).astype(np.float32)
lo, hi = x.min(0), x.max(0)
rng_ = hi - lo
inv = np.where(rng_ > 1e-12, 1.0 / np.where(rng_ > 1e-12, rng_, 1.0), 1.0).astype(np.float32)
x = torch.from_numpy((x - lo) * inv)
d = x.shape[1]

torch.manual_seed(a.seed)


def dense(i, o):
    layer = torch.nn.Linear(i, o)
    torch.nn.init.xavier_uniform_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    return layer


encoder = torch.nn.Sequential(dense(d, a.hidden), torch.nn.ReLU(), dense(a.hidden, a.bottleneck), torch.nn.ReLU())
decoder = torch.nn.Sequential(dense(a.bottleneck, a.hidden), torch.nn.ReLU(), dense(a.hidden, d))
params = list(encoder.parameters()) + list(decoder.parameters())
opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7)

t0, c0 = time.perf_counter(), time.process_time()
final_loss = None
for epoch in range(a.epochs):
    perm = torch.randperm(n)
    total = 0.0
    for s in range(0, n, a.batch_size):
        xb = x[perm[s : s + a.batch_size]]
        code = encoder(xb)
        out = decoder(code)
        loss = torch.mean((out - xb) ** 2) + a.activity_l1 * code.abs().sum() / xb.shape[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * xb.shape[0]
    final_loss = total / n
train_seconds = time.perf_counter() - t0
train_cpu_seconds = time.process_time() - c0  # all threads

t0 = time.perf_counter()
with torch.no_grad():
    scores = torch.cat(
        [torch.mean((decoder(encoder(x[s : s + 512])) - x[s : s + 512]) ** 2, dim=1) for s in range(0, n, 512)]
    )
score_seconds = time.perf_counter() - t0

print(json.dumps({
    "impl": f"pytorch-{torch.__version__}",
    "train_seconds": train_seconds,
    "train_cpu_seconds": train_cpu_seconds,
    "score_seconds": score_seconds,
    "final_loss": final_loss,
    "mean_score": float(scores.mean()),
    "n_windows": n,
    "encoding": a.encoding,
    "epochs": a.epochs,
    "batch_size": a.batch_size,
    "threads": torch.get_num_threads(),
}))
