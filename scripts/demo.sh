#!/usr/bin/env bash
# The README's first command: build mamori and run its main job on the bundled recordings of real
# `motion` (data/motion/, made by scripts/record-motion-set.sh): train every detector on 15 min of
# normal operation, calibrate a 1 %-false-positive threshold on held-out normal windows of that
# recording, then measure four attack recordings and a second, independent normal recording.
# Two runs: the paper's exact settings, then mamori's recommended ones (per-thread streams).
# Reports and plots go to out/demo/. Extra arguments are passed to both `mamori eval` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/lab/setup-live-lab.sh --no-docker   # build tools: clang, libbpf, libpcap headers (no-op when present)
cargo build --release --locked -p mamori -p mamori-wot-device
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
echo "== recommended: the same classes, one stream per thread, motion's Thing Description; hmm-stide (the default) first" >&2
target/release/mamori eval "${common[@]}" --stream per-thread --thing-description profiles/motion.td.json \
  --models hmm-stide,hmm,hmm-bosc-flat,hmm-bosc,ae,ae-bosc,stide,kmeans,cover \
  --plots out/demo/recommended "$@" |
  tee out/demo/recommended/report.txt
echo "reports: out/demo/{paper,recommended}/report.txt, plots: out/demo/*/roc.svg, timeline-*.svg"

# The network detector (seed 001 §3-1): train on one lab run (real hping3/nmap/telnet attacks among
# real MQTT/HTTP/DNS/NTP traffic) plus three real consumer devices, judge on the other lab run and
# two held-out devices. Without ../shared/data, only the lab runs are used.
n=data/net
benign=../shared/data/iot-benign-pcap
train=("$n/lab-a/capture.pcap.gz") test=("$n/lab-b/capture.pcap.gz")
if [ -d "$benign" ]; then
  train+=("$benign/blink-cam-01.pcap" "$benign/lockly-hub-01.pcap" "$benign/schlage-lock-01.pcap")
  test+=("$benign/blink-cam-02.pcap" "$benign/sifely-hub-01.pcap")
fi
mkdir -p out/demo/net
for kind in device interval; do
  for model in svm autoencoder iforest; do
    echo "== network: $model on $kind rows" >&2
    target/release/mamori net train --model "$model" --kind "$kind" --labels "$n/lab-a/labels.tsv" \
      -o "out/demo/net/$model-$kind.json" "${train[@]}" 2>"out/demo/net/$model-$kind.train.log"
    target/release/mamori net eval -m "out/demo/net/$model-$kind.json" --labels "$n/lab-b/labels.tsv" \
      --heatmap "out/demo/net/$model-$kind.heatmap.svg" --roc "out/demo/net/$model-$kind.roc.svg" \
      "${test[@]}" | tee "out/demo/net/$model-$kind.report.txt"
  done
done
echo "network reports: out/demo/net/*.report.txt, confusion-matrix heatmaps: out/demo/net/*.heatmap.svg"

# The Thing monitor (seed 002): a WoT device serving its own Thing Description (three Things),
# probed once, then watched by the agent while one fault after another is switched on. Without
# Docker nothing is restarted: the incident says so. (scripts/lab/build-device-image.sh and
# crates/mamori/tests/things_docker.rs show the restarts.)
mkdir -p out/demo/things
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/release/mamori-wot-device --listen "127.0.0.1:$port" --title pump --things 3 2>out/demo/things/device.log &
device=$!
trap 'kill $device 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
echo "== things: one probe of every Thing the device lists" >&2
target/release/mamori things probe "http://127.0.0.1:$port/" | tee out/demo/things/probe.txt
rm -f out/demo/things/alerts.jsonl
echo "== things: the agent watches them; out-of-range at 3 s, fixed at 6 s, a hang at 9 s" >&2
target/release/mamori agent --no-capture --listen none --quiet --thing "http://127.0.0.1:$port/" \
  --alerts out/demo/things/alerts.jsonl --duration 14s 2>&1 | grep "thing " &
agent=$!
sleep 3; curl -s -d out-of-range "http://127.0.0.1:$port/control/fault" >/dev/null
sleep 3; curl -s -d none "http://127.0.0.1:$port/control/fault" >/dev/null
sleep 3; curl -s -d hang "http://127.0.0.1:$port/control/fault" >/dev/null
wait $agent || true
echo "things: out/demo/things/probe.txt, alerts and incidents: out/demo/things/alerts.jsonl" >&2

