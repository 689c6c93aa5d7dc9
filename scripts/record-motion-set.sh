#!/usr/bin/env bash
# Records the whole motion evaluation set of EVALUATION.md into OUT (default out/motion-set):
#   normal-a    15 min of normal operation (seed 1): training and calibration
#   paper       4 min, the paper's suspicious commands from 100 s on (seed 3)
#   dropper     4 min, reverse shell + reconnaissance + download-and-run (seed 4)
#   exfil       4 min, pack and upload the pictures, cover tracks (seed 5)
#   api-tamper  4 min, detection paused and config changed through the web API (seed 6)
#   normal-b    15 min of normal operation (seed 2), started at least an hour after normal-a,
#               for false positives on an independent recording
# With --quick every recording is shortened (2 min normal, 100 s attacks) and normal-b does not
# wait for the next hour. Each recording's trace.strace.gz, labels.txt and meta.json are also
# copied to OUT/<name>.strace.gz, OUT/<name>.labels and OUT/<name>.meta.json, the layout of
# data/motion/.
set -euo pipefail
cd "$(dirname "$0")/.."
out="out/motion-set"
quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    -*) echo "usage: $0 [OUT] [--quick]" >&2; exit 2 ;;
    *) out="$a" ;;
  esac
done
if [ "$quick" = 1 ]; then normal=120 attack=100 at=40; else normal=900 attack=240 at=100; fi
rec() {
  local name="$1"; shift
  raw="out/motion-rec/$name"
  scripts/record-motion.sh --out "$raw" "$@"
  cp "$raw/trace.strace.gz" "$out/$name.strace.gz"
  cp "$raw/meta.json" "$out/$name.meta.json"
  [ -s "$raw/labels.txt" ] && grep -q '^[0-9]' "$raw/labels.txt" &&
    cp "$raw/labels.txt" "$out/$name.labels"
  return 0
}
mkdir -p "$out"
started=$(date +%s)
rec normal-a --duration "$normal" --seed 1
rec paper --scenario paper --duration "$attack" --attack-at "$at" --seed 3
rec dropper --scenario dropper --duration "$attack" --attack-at "$at" --seed 4
rec exfil --scenario exfil --duration "$attack" --attack-at "$at" --seed 5
rec api-tamper --scenario api-tamper --duration "$attack" --attack-at "$at" --seed 6
if [ "$quick" = 0 ]; then
  wait_s=$((started + 3600 - $(date +%s)))
  if [ "$wait_s" -gt 0 ]; then
    echo "record-motion-set: normal-b starts in $wait_s s (an hour after normal-a)" >&2
    sleep "$wait_s"
  fi
fi
rec normal-b --duration "$normal" --seed 2
echo "record-motion-set: done -> $out"
