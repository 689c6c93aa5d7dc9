#!/usr/bin/env bash
# Seed sweep of the unsupervised network detector (EVALUATION.md, "Network detection"): for
# every protocol, row kind and seed, `mamori net train --model autoencoder` (the default: an
# ensemble of five autoencoders with per-device baselines) and the single autoencoder it
# replaced (`--members 1 --no-baselines`), each judged by `mamori net eval`:
#   ensemble+baselines   the default (new devices' warm-up rows left out of the counts)
#   ensemble             the same model with --no-baselines (one threshold, no warm-up)
#   single               one autoencoder, one threshold (the earlier default)
# Protocols: networks (train lab-a + blink-cam-01 + lockly-hub-01 + schlage-lock-01, judge
# lab-b + blink-cam-02 + sifely-hub-01) and own (train lab-a, judge lab-b).
#
#   bench/net-seeds.sh [--seeds "1 2 3 4 5"] [--kinds "device interval flow"]
#                      [--protocols "networks own"] [--warmup 1h] [--mamori PATH] [--out DIR]
#
# Needs ../shared/data/iot-benign-pcap and python3 (standard library only). Writes DIR (default
# out/bench/net-seeds) with every model, every eval's JSON and results.md: attack rows caught
# and false alarms as mean and min-max over the seeds, per test capture. About 10 minutes on
# 2 cores for everything.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seeds="1 2 3 4 5"
kinds="device interval flow"
protocols="networks own"
warmup=1h
mamori=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) seeds=$2; shift 2 ;;
        --kinds) kinds=$2; shift 2 ;;
        --protocols) protocols=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --mamori) mamori=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n 2,19p "$0"; exit 0 ;;
        *) echo "net-seeds: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
out="${out:-out/bench/net-seeds}"
data="$root/../shared/data/iot-benign-pcap"
[ -d "$data" ] || { echo "net-seeds: $data not found" >&2; exit 1; }
if [ -z "$mamori" ]; then
    cargo build --quiet --release -p mamori
    mamori="${CARGO_TARGET_DIR:-$root/target}/release/mamori"
fi
mkdir -p "$out"

for protocol in $protocols; do
    case "$protocol" in
        networks)
            train=(data/net/lab-a/capture.pcap.gz "$data/blink-cam-01.pcap" "$data/lockly-hub-01.pcap" "$data/schlage-lock-01.pcap")
            test=(data/net/lab-b/capture.pcap.gz "$data/blink-cam-02.pcap" "$data/sifely-hub-01.pcap") ;;
        own)
            train=(data/net/lab-a/capture.pcap.gz)
            test=(data/net/lab-b/capture.pcap.gz) ;;
        *) echo "net-seeds: protocols are networks and own, got '$protocol'" >&2; exit 2 ;;
    esac
    for kind in $kinds; do
        for seed in $seeds; do
            d="$out/$protocol/$kind/seed-$seed"
            mkdir -p "$d"
            common=(--model autoencoder --kind "$kind" --seed "$seed" --labels data/net/lab-a/labels.tsv)
            "$mamori" net train "${common[@]}" --warmup "$warmup" -o "$d/ensemble.json" "${train[@]}" 2>"$d/train-ensemble.log"
            "$mamori" net train "${common[@]}" --members 1 --no-baselines -o "$d/single.json" "${train[@]}" 2>"$d/train-single.log"
            ev() { "$mamori" net eval --labels data/net/lab-b/labels.tsv "$@" "${test[@]}" >/dev/null 2>&1 || [ $? -eq 1 ]; }
            ev -m "$d/ensemble.json" --json "$d/ensemble+baselines.eval.json"
            ev -m "$d/ensemble.json" --no-baselines --json "$d/ensemble.eval.json"
            ev -m "$d/single.json" --json "$d/single.eval.json"
            echo "net-seeds: $protocol $kind seed $seed done" >&2
        done
    done
done

{
    echo "Command: \`bench/net-seeds.sh --seeds \"$seeds\" --warmup $warmup\` ($(date -u +%Y-%m-%dT%H:%MZ), mamori $(git rev-parse --short HEAD))"
    echo
    python3 bench/net/seeds_summary.py "$out"
} | tee "$out/results.md"
