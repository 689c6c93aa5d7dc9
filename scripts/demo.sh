#!/usr/bin/env bash
# The README's first command: build mamori and run its main job on the bundled recordings of real
# `motion` (data/motion/, made by scripts/record-motion-set.sh): train every detector on 15 min of
# normal operation, calibrate a 1 %-false-positive threshold on held-out normal windows of that
# recording, then measure four attack recordings and a second, independent normal recording.
# Two runs: the paper's exact settings, then mamori's recommended ones (per-thread streams).
# Reports and plots go to out/demo/. Extra arguments are passed to both `mamori eval` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p mamori
d=data/motion
mkdir -p out/demo/paper out/demo/recommended
common=(--profile profiles/motion.toml --warmup 10
  --train "$d/normal-a.strace.gz" --normal "$d/normal-b.strace.gz")
for s in paper dropper exfil api-tamper; do
  common+=(--test "$d/$s.strace.gz" --labels "$d/$s.labels")
done
echo "== the paper's settings: Table 1 classes, one interleaved stream, window 19" >&2
target/release/mamori eval "${common[@]}" --stream interleaved --plots out/demo/paper "$@" |
  tee out/demo/paper/report.txt
echo "== recommended: the same classes, one stream per thread" >&2
target/release/mamori eval "${common[@]}" --stream per-thread --plots out/demo/recommended "$@" |
  tee out/demo/recommended/report.txt
echo "reports: out/demo/{paper,recommended}/report.txt, plots: out/demo/*/roc.svg, timeline-*.svg"
