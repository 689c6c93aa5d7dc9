#!/usr/bin/env bash
# Unsupervised network detectors side by side (EVALUATION.md, "Network detection"): mamori's
# isolation forest against scikit-learn's isolation forest, a dense autoencoder and k-nearest
# neighbours, all trained on the normal rows of lab-a + blink-cam-01 + lockly-hub-01 +
# schlage-lock-01 and judged on lab-b + blink-cam-02 + sifely-hub-01, on the same rows.
#
#   bench/net-unsupervised.sh [--kind device|interval|flow] [--mamori PATH] [--out DIR]
#
# Needs the reference venv (scripts/setup-reference-venv.sh: numpy, scikit-learn) and
# ../shared/data/iot-benign-pcap. Writes DIR (default out/bench/net-unsupervised-KIND) with the
# feature CSVs, mamori's detector and scores, and results.md. A few seconds here.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
kind=device
mamori=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --kind) kind=$2; shift 2 ;;
        --mamori) mamori=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n 2,11p "$0"; exit 0 ;;
        *) echo "net-unsupervised: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
out="${out:-out/bench/net-unsupervised-$kind}"
data="$root/../shared/data/iot-benign-pcap"
[ -d "$data" ] || { echo "net-unsupervised: $data not found" >&2; exit 1; }
if [ -z "$mamori" ]; then
    cargo build --quiet --release -p mamori
    mamori="${CARGO_TARGET_DIR:-$root/target}/release/mamori"
fi
scripts/setup-reference-venv.sh >/dev/null
py="$root/.venv-ref/bin/python"
mkdir -p "$out"

train=(data/net/lab-a/capture.pcap.gz "$data/blink-cam-01.pcap" "$data/lockly-hub-01.pcap" "$data/schlage-lock-01.pcap")
test=(data/net/lab-b/capture.pcap.gz "$data/blink-cam-02.pcap" "$data/sifely-hub-01.pcap")
# The two lab runs share a clock range, so each side gets its own run's labels only.
train_labels=(--labels data/net/lab-a/labels.tsv)
test_labels=(--labels data/net/lab-b/labels.tsv)
name() { case "$1" in */lab-?/capture.pcap.gz) basename "$(dirname "$1")" ;; *) basename "$1" .pcap ;; esac; }

train_csv=(); test_csv=(); test_scores=()
for f in "${train[@]}"; do
    csv="$out/$(name "$f").csv"
    "$mamori" net features --kind "$kind" "${train_labels[@]}" "$f" -o "$csv" 2>/dev/null
    train_csv+=("$csv")
done
"$mamori" net train --model iforest --kind "$kind" "${train_labels[@]}" -o "$out/iforest.json" "${train[@]}" 2>"$out/train.log"
for f in "${test[@]}"; do
    csv="$out/$(name "$f").csv"
    "$mamori" net features --kind "$kind" "${test_labels[@]}" "$f" -o "$csv" 2>/dev/null
    test_csv+=("$csv")
    jsonl="$out/$(name "$f").scores.jsonl"
    "$mamori" net score -m "$out/iforest.json" "$f" >"$jsonl" 2>/dev/null || [ $? -eq 1 ]
    test_scores+=("$jsonl")
done
{
    echo "Kind: $kind rows. Command: \`bench/net-unsupervised.sh --kind $kind\` ($(date -u +%Y-%m-%dT%H:%MZ), mamori $(git rev-parse --short HEAD))"
    echo
    "$py" bench/net/unsupervised_compare.py --train "${train_csv[@]}" --test "${test_csv[@]}" \
        --mamori-model "$out/iforest.json" --mamori-test "${test_scores[@]}" --json "$out/results.json"
} | tee "$out/results.md"
