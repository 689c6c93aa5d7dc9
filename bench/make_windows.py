#!/usr/bin/env python3
"""Cut real ADFA-LD training traces into class windows shared by the Rust and Python benchmarks.

Symbols are syscall numbers ranked by frequency in the chosen traces (0 = most frequent); numbers
outside the top K share one "unknown" symbol K, as mamori's learned profiles do. Output: one window
per line, space-separated symbols; the first line is `# n_symbols=K+1 size=W`.

usage: make_windows.py ADFA_TRAINING_DIR OUT [--size 19] [--top 24] [--max-windows 20000]
"""
import argparse
import collections
import pathlib

ap = argparse.ArgumentParser()
ap.add_argument("training_dir")
ap.add_argument("out")
ap.add_argument("--size", type=int, default=19)
ap.add_argument("--top", type=int, default=24)
ap.add_argument("--max-windows", type=int, default=20000)
ap.add_argument("--stride", type=int, default=1)
a = ap.parse_args()

traces = []
for f in sorted(pathlib.Path(a.training_dir).glob("*.txt")):
    traces.append([int(x) for x in f.read_text().split()])
freq = collections.Counter(x for t in traces for x in t)
rank = {s: i for i, (s, _) in enumerate(sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[: a.top])}
windows = []
for t in traces:
    sym = [rank.get(x, a.top) for x in t]
    for s in range(0, len(sym) - a.size + 1, a.stride):
        windows.append(sym[s : s + a.size])
# Take an evenly spread subset, so every trace is represented whatever the cap.
step = max(1, len(windows) // a.max_windows)
windows = windows[::step][: a.max_windows]
with open(a.out, "w") as out:
    out.write(f"# n_symbols={a.top + 1} size={a.size}\n")
    for w in windows:
        out.write(" ".join(map(str, w)) + "\n")
print(f"{len(windows)} windows of {a.size} over {a.top + 1} symbols -> {a.out}")
