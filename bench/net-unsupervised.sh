#!/usr/bin/env bash
# Unsupervised network detectors side by side (EVALUATION.md, "Network detection"): mamori's
# isolation forest and autoencoder against scikit-learn's isolation forest, a dense autoencoder
# and k-nearest neighbours, all trained on the same normal rows and judged on the same rows:
#   --protocol networks (default): train on lab-a + blink-cam-01 + lockly-hub-01 +
#       schlage-lock-01, judge on lab-b + blink-cam-02 + sifely-hub-01 (unseen devices);
#   --protocol own: train on lab-a, judge on lab-b (an operator learning the network it watches).
#
#   bench/net-unsupervised.sh [--kind device|interval|flow] [--protocol networks|own]
#                             [--mamori PATH] [--out DIR]
#
# Needs the reference venv (scripts/setup-reference-venv.sh: numpy, scikit-learn) and
# ../shared/data/iot-benign-pcap. mamori's autoencoder here is the single autoencoder with one
# threshold (`--members 1 --no-baselines`), the model family the references share; the default
# ensemble with per-device baselines is measured by bench/net-seeds.sh. Writes DIR (default out/bench/net-unsupervised-KIND) with the
# feature CSVs, mamori's detector and scores, and results.md. A few seconds here.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
kind=device
protocol=networks
mamori=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --kind) kind=$2; shift 2 ;;
        --protocol) protocol=$2; shift 2 ;;
        --mamori) mamori=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n 2,15p "$0"; exit 0 ;;
        *) echo "net-unsupervised: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
out="${out:-out/bench/net-unsupervised-$protocol-$kind}"
data="$root/../shared/data/iot-benign-pcap"
[ -d "$data" ] || { echo "net-unsupervised: $data not found" >&2; exit 1; }
if [ -z "$mamori" ]; then
    cargo build --quiet --release -p mamori
    mamori="${CARGO_TARGET_DIR:-$root/target}/release/mamori"
fi
scripts/setup-reference-venv.sh >/dev/null
py="$root/.venv-ref/bin/python"
mkdir -p "$out"

case "$protocol" in
    networks)
        train=(data/net/lab-a/capture.pcap.gz "$data/blink-cam-01.pcap" "$data/lockly-hub-01.pcap" "$data/schlage-lock-01.pcap")
        test=(data/net/lab-b/capture.pcap.gz "$data/blink-cam-02.pcap" "$data/sifely-hub-01.pcap") ;;
    own)
        train=(data/net/lab-a/capture.pcap.gz)
        test=(data/net/lab-b/capture.pcap.gz) ;;
    *) echo "net-unsupervised: --protocol is networks or own, got '$protocol'" >&2; exit 2 ;;
esac
# The two lab runs share a clock range, so each side gets its own run's labels only.
train_labels=(--labels data/net/lab-a/labels.tsv)
test_labels=(--labels data/net/lab-b/labels.tsv)
name() { case "$1" in */lab-?/capture.pcap.gz) basename "$(dirname "$1")" ;; *) basename "$1" .pcap ;; esac; }

train_csv=(); test_csv=()
for f in "${train[@]}"; do
    csv="$out/$(name "$f").csv"
    "$mamori" net features --kind "$kind" "${train_labels[@]}" "$f" -o "$csv" 2>/dev/null
    train_csv+=("$csv")
done
for f in "${test[@]}"; do
    csv="$out/$(name "$f").csv"
    "$mamori" net features --kind "$kind" "${test_labels[@]}" "$f" -o "$csv" 2>/dev/null
    test_csv+=("$csv")
done
specs=()
for model in iforest autoencoder; do
    single=()
    [ "$model" = autoencoder ] && single=(--members 1 --no-baselines)
    "$mamori" net train --model "$model" "${single[@]}" --kind "$kind" "${train_labels[@]}" -o "$out/$model.json" "${train[@]}" 2>"$out/train-$model.log"
    specs+=(--mamori "$model" "$out/$model.json")
    for f in "${test[@]}"; do
        jsonl="$out/$(name "$f").$model.scores.jsonl"
        "$mamori" net score -m "$out/$model.json" "$f" >"$jsonl" 2>/dev/null || [ $? -eq 1 ]
        specs+=("$jsonl")
    done
done
{
    echo "Kind: $kind rows, protocol $protocol. Command: \`bench/net-unsupervised.sh --kind $kind --protocol $protocol\` ($(date -u +%Y-%m-%dT%H:%MZ), mamori $(git rev-parse --short HEAD))"
    echo
    "$py" bench/net/unsupervised_compare.py --train "${train_csv[@]}" --test "${test_csv[@]}" \
        "${specs[@]}" --json "$out/results.json"
} | tee "$out/results.md"
