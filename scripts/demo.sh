#!/usr/bin/env bash
# The README's first command: build mamori and run its main job on bundled real data —
# train every detector on normal ADFA-LD traces, calibrate on held-out normal traces, and report
# detection / false positives / ROC AUC on the attack traces, with plots in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${MAMORI_DATA:-../shared/data}"
if [ ! -d "$data/adfa-ld" ]; then
  echo "demo: ADFA-LD not found at $data/adfa-ld (set MAMORI_DATA to the folder holding adfa-ld/)" >&2
  exit 2
fi
cargo build --release --locked -p mamori
mkdir -p out/demo
target/release/mamori eval --adfa "$data/adfa-ld" --plots out/demo "$@" | tee out/demo/report.txt
echo "report: out/demo/report.txt, plots: out/demo/roc.svg and out/demo/timeline-*.svg"
