#!/usr/bin/env bash
# Records real audit logs for the parser's sample tests (crates/mamori-audit/tests/samples.rs):
# runs the five intrusion scenarios one after another under the audit lab's auditd and writes
#   DIR/enriched.log          the log written meanwhile, as auditd wrote it (ENRICHED)
#   DIR/raw.log               the same records in auditd's RAW format (ENRICHED is RAW plus the
#                             interpretations after a 0x1d byte, so this cuts them off)
#   DIR/NAME.facts.json       what each scenario did
# Needs root and scripts/lab/setup-audit-lab.sh (which this runs).
#   scripts/lab/audit/record-samples.sh DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: record-samples.sh DIR}
log=$("$here/../setup-audit-lab.sh")
mkdir -p "$out"
work=$(mktemp -d /tmp/mamori-audit-samples.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(stat -c %s "$log")
for s in dropper2 dropper3 service persistence cleanup; do
    "$here/$s.sh" "$work/$s" "sample-$s-$$" >/dev/null
    cp "$work/$s/facts.json" "$out/$s.facts.json"
done
marker="mamori-lab-end-sample-cleanup-$$"
for _ in $(seq 100); do
    [ "$(stat -c %s "$log")" -lt "$start" ] && { echo "record-samples: the log rotated meanwhile; run again" >&2; exit 1; }
    tail -c +"$((start + 1))" "$log" | grep -a "$marker" >/dev/null && break
    sleep 0.2
done
tail -c +"$((start + 1))" "$log" > "$out/enriched.log"
grep -aq "$marker" "$out/enriched.log" || { echo "record-samples: the last scenario is not in the log" >&2; exit 1; }
LC_ALL=C sed 's/\x1d.*//' "$out/enriched.log" > "$out/raw.log"
echo "$out: $(grep -c '' "$out/enriched.log") records"
