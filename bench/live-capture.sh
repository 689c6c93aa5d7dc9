#!/usr/bin/env bash
# Live-capture overhead and throughput, in one run, on this machine:
#   a container runs a syscall-heavy workload (busybox dd, bs=1: one read and one write per byte)
#   with nothing watching, under `mamori capture` (eBPF, JSON lines to a file), under
#   `mamori agent` (eBPF, classify + window + STIDE score every call), and under strace -f
#   (the ptrace baseline that Falco-less setups and mamori's fallback use).
# Reports per mode the workload's wall time (busybox `time`, median of REPS), the slowdown against
# none, calls per second captured, records the probe dropped, and the agent's CPU time and peak RSS.
#
# --workload http instead runs N fetches from the container's busybox httpd with busybox wget
# (fork, exec, connect, accept, a forked server child per request: a gateway-like mix).
#
# --mamori PATH times another build of mamori (e.g. an older commit's) instead of building this
# checkout's, for before/after comparisons of the probe; --capture-args "ARGS" adds arguments to
# the timed `mamori capture` (e.g. --no-request-data).
#
#   bench/live-capture.sh [--workload dd|http] [--count N] [--reps R] [--mamori PATH]
#                         [--capture-args ARGS]                                      (as root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workload=dd
count=2000000
reps=3
mamori=
capture_args=
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count=$2; shift 2 ;;
        --workload) workload=$2; shift 2 ;;
        --reps) reps=$2; shift 2 ;;
        --mamori) mamori=$2; shift 2 ;;
        --capture-args) capture_args=$2; shift 2 ;;
        -h|--help) sed -n 2,19p "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
# strace is 5-100x slower: it gets a smaller run, compared per unit (a byte, a fetch)
if [ "$workload" = dd ]; then strace_count=$((count / 20)); else strace_count=$((count / 5)); fi

"$root/scripts/lab/setup-live-lab.sh"
if [ -z "$mamori" ]; then
    (cd "$root" && cargo build --release --quiet -p mamori)
    mamori="$root/target/release/mamori"
fi
image=$("$root/scripts/lab/build-lab-image.sh")
work=$(mktemp -d)
name=mamori-bench-$$
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    [ -n "${agent_pid:-}" ] && kill "$agent_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The container waits for /tmp/go, runs the workload under `time`, writes /tmp/done.
docker run -d --name "$name" --network none "$image" sh -c '
    httpd -p 127.0.0.1:8080 -h /www
    while true; do
        while [ ! -f /tmp/go ]; do sleep 0.05; done
        set -- $(cat /tmp/go); rm /tmp/go
        if [ "$1" = dd ]; then
            { time dd if=/dev/zero of=/dev/null bs=1 count=$2 ; } 2>/tmp/time.txt
        else
            { time sh -c "i=0; while [ \$i -lt $2 ]; do wget -q -O /dev/null http://127.0.0.1:8080/index.html; i=\$((i + 1)); done" ; } 2>/tmp/time.txt
        fi
        mv /tmp/time.txt /tmp/done
    done' >/dev/null
init_pid=$(docker inspect -f '{{.State.Pid}}' "$name")

# one timed run of N bytes: prints the wall seconds
run_once() {
    docker exec "$name" sh -c "echo $workload $1 > /tmp/go"
    while ! docker exec "$name" test -f /tmp/done; do sleep 0.05; done
    docker exec "$name" sh -c 'cat /tmp/done; rm /tmp/done' |
        awk '/^real/ { v=$2; sub(/s$/, "", $3); if ($3 == "") { split(v, a, "m"); sub(/s$/, "", a[2]); print a[1]*60 + a[2] } else { sub(/m$/, "", v); print v*60 + $3 } }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
timed() { for _ in $(seq "$reps"); do run_once "$1"; done | median; }
cpu_seconds() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
hwm_mib() { awk '/VmHWM/ { print $2 / 1024 }' "/proc/$1/status"; }

case "$workload" in
    dd) what="dd bs=1 count=$count (unit: one byte = one read + one write)" ;;
    *) what="$count busybox wget fetches from busybox httpd (unit: one fetch)" ;;
esac
printf 'workload in a container: %s; %s runs per mode, median\n' "$what" "$reps"
printf '%-28s %9s %12s %9s %14s %9s %10s %9s\n' mode seconds "us/unit" slowdown "captured/s" dropped "cpu s" "rss MiB"
report() { # mode seconds calls captured_per_s dropped cpu rss
    local us slow
    us=$(awk -v s="$2" -v c="$3" 'BEGIN { printf "%.3f", s * 1e6 / c }')
    slow=$(awk -v u="$us" -v b="$base_us" 'BEGIN { printf "%.1f%%", (u / b - 1) * 100 }')
    printf '%-28s %9s %12s %9s %14s %9s %10s %9s\n' "$1" "$2" "$us" "$slow" "$4" "$5" "$6" "$7"
}

run_once 1000 >/dev/null    # warm the page cache and busybox
t_none=$(timed "$count")
base_us=$(awk -v s="$t_none" -v c=$count 'BEGIN { print s * 1e6 / c }')
printf '%-28s %9s %12s %9s %14s %9s %10s %9s\n' none "$t_none" "$(awk -v b="$base_us" 'BEGIN { printf "%.3f", b }')" - - - - -

# mamori capture: eBPF probe → assembled events → JSON lines (to /dev/null: no disk in the figure)
# (background jobs of a script ignore SIGINT, so they are stopped with SIGTERM)
# shellcheck disable=SC2086 # capture_args is a list of arguments
"$mamori" capture --container "$name" -o /dev/null --duration 1h $capture_args 2>"$work/capture.err" &
cap_pid=$!
sleep 2
cpu0=$(cpu_seconds $cap_pid)
t_cap=$(timed "$count")
cpu1=$(cpu_seconds $cap_pid)
hwm=$(hwm_mib $cap_pid)
kill -TERM $cap_pid; wait $cap_pid || true
line=$(grep "captured" "$work/capture.err" | tail -1)
calls=$(echo "$line" | awk '{ print $3 }')
dropped=$(echo "$line" | sed -n 's/.*, \([0-9]*\) dropped.*/\1/p')
rate=$(awk -v c="$calls" -v s="$t_cap" -v r="$reps" 'BEGIN { printf "%.0f", c / (s * r) }')
report "mamori capture (eBPF)" "$t_cap" $count "$rate" "${dropped:-?}" \
    "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" "$hwm"

# a model for the agent: learned from a short normal recording of the same workload
"$mamori" capture --container "$name" -o "$work/normal.jsonl" --duration 4s 2>/dev/null &
sleep 1; run_once 20000 >/dev/null; wait
"$mamori" learn --from "$work/normal.jsonl" --image "$image" --models "$work/models" -q 2>/dev/null

# mamori agent: eBPF probe → classify → windows → STIDE score, per container
"$mamori" agent --container "$name" --models "$work/models" --alerts "$work/alerts.jsonl" \
    --listen 127.0.0.1:19465 --quiet 2>"$work/agent.err" &
agent_pid=$!
sleep 3
cpu0=$(cpu_seconds $agent_pid)
before=$(curl -s 127.0.0.1:19465/metrics | awk -v n="$name" '$1 ~ "^mamori_events_total" && $1 ~ "\"" n "\"" { print $2 }')
t_agent=$(timed "$count")
after=$(curl -s 127.0.0.1:19465/metrics | awk -v n="$name" '$1 ~ "^mamori_events_total" && $1 ~ "\"" n "\"" { print $2 }')
dropped=$(curl -s 127.0.0.1:19465/metrics | awk '/^mamori_probe_dropped_total/ { d += $2 } END { print d + 0 }')
cpu1=$(cpu_seconds $agent_pid)
hwm=$(hwm_mib $agent_pid)
kill -TERM $agent_pid; wait $agent_pid || true; agent_pid=
rate=$(awk -v a="${before:-0}" -v b="${after:-0}" -v s="$t_agent" -v r="$reps" 'BEGIN { printf "%.0f", (b - a) / (s * r) }')
report "mamori agent (eBPF+STIDE)" "$t_agent" $count "$rate" "$dropped" \
    "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" "$hwm"

# strace -f on the container's init: every child it starts is traced
strace -f -qq -o /dev/null -p "$init_pid" &
st_pid=$!
sleep 1
t_st=$(timed "$strace_count")
kill $st_pid; wait $st_pid 2>/dev/null || true
report "strace -f (smaller run)" "$t_st" $strace_count - - - -
