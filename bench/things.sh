#!/usr/bin/env bash
# The WoT Thing monitor of `mamori agent`, on this machine, in two parts:
#
# 1. Time to detect and time to recover, per fault. The agent (interval 1 s, timeout 0.5 s, no
#    subscriptions) watches one device container per fault kind (wrong-type, out-of-range,
#    missing-member, hang, crash, slow:900), found through the `mamori.thing` label. Each
#    repetition switches every device into its fault at once (POST /control/fault, time t0) and
#    waits for the cycle failed -> recovering (container restarted) -> healthy on /api/things:
#    detect = failed.at_ns - t0, recover = healthy.at_ns - failed.at_ns (decision to healthy),
#    restart = the incident's restart action (docker restart). A restarted device serves without
#    a fault again. Between repetitions all are healthy again and 3 s more pass (the restart
#    backoff resets on health). Targets: detect <= 2 poll intervals (a failure needs 2 bad rounds;
#    hang and slow also wait out the 0.5 s timeout), healthy again <= 5 s after the decision.
#
# 2. Probe cost at N Things (default 1,000) polled every second: one device process (the static
#    binary, no Docker) serving N Things, the agent given its directory. After 10 s of warm-up,
#    over S seconds: the agent's CPU (utime+stime from /proc), peak and current RSS, rounds and
#    property reads per second, read errors, p50/p99 read latency (estimated from the summed
#    histogram deltas of /api/things), and the device's CPU. Then the reference, alone, the same
#    way: bench/things/nodewot-poller.js, an Eclipse node-wot 0.7.8 client that consumes the same
#    N TDs and reads every readable property of each every second (readProperty, which validates
#    nothing against the schema, where mamori checks every reply against the TD).
#
# Markdown tables on stdout; logs in a temporary directory, removed at exit (KEEP=1 keeps it).
#
# --gap G sets the pause between repetitions (default 3 s); --part 1 or --part 2 runs one part.
#
#   bench/things.sh [--rounds K] [--things N] [--seconds S] [--gap G] [--part 1|2]   (as root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command_line="$0${*:+ $*}"
rounds=5
things=1000
seconds=60
gap=3
part=all
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --things) things=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --gap) gap=$2; shift 2 ;;
        --part) part=$2; shift 2 ;;
        -h|--help) sed -n 2,29p "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$part" in 1|2|all) ;; *) echo "things.sh: --part is 1 or 2" >&2; exit 2 ;; esac
for v in "$rounds" "$things" "$seconds" "$gap"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "things.sh: $v is not a positive whole number" >&2; exit 2; }
done

interval=1.0
timeout=0.5
warmup=10
faults=(wrong-type out-of-range missing-member hang crash slow:900)
base_port=18611            # part 1: devices on 18611.., part 2: the device on 18630
agent1_port=19471
agent2_port=19472
bulk_port=18630

echo "# bench/things.sh"
echo
echo "command: \`$command_line\`"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr), $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo

"$root/scripts/lab/setup-live-lab.sh"
"$root/scripts/lab/setup-wot-lab.sh"
(cd "$root" && cargo build --release --quiet -p mamori -p mamori-wot-device)
mamori="$root/target/release/mamori"
image=$("$root/scripts/lab/build-device-image.sh")
device_bin=$("$root/scripts/lab/build-device-image.sh" --binary-only)
export NODE_PATH="$root/.wot-lab/node_modules"
stats="$root/bench/things/stats.py"

for port in $(seq $base_port $((base_port + ${#faults[@]} - 1))) $agent1_port $agent2_port $bulk_port; do
    if ss -Hltn "sport = :$port" | grep -q .; then
        echo "things.sh: port $port is in use" >&2
        exit 1
    fi
done

work=$(mktemp -d)
prefix=mamori-bench-things-$$
containers=()
agent_pid=
device_pid=
node_pid=
stop_pid() { # pid: SIGTERM, then SIGKILL after 5 s
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$?
    stop_pid "$node_pid"
    stop_pid "$agent_pid"
    stop_pid "$device_pid"
    [ ${#containers[@]} -gt 0 ] && docker rm -f "${containers[@]}" >/dev/null 2>&1
    if [ "$status" != 0 ]; then
        for f in "$work"/*.err; do
            [ -s "$f" ] && { echo "--- $f (last lines)" >&2; tail -15 "$f" >&2; }
        done
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

now_ns() { date +%s%N; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# Waits (up to $2 s) until the agent on $1 answers.
wait_api() {
    local deadline=$(( $(date +%s) + $2 ))
    until curl -sf --max-time 1 "http://$1/healthz" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "things.sh: the agent on $1 did not come up" >&2; return 1; }
        kill -0 "$agent_pid" 2>/dev/null || { echo "things.sh: the agent exited" >&2; return 1; }
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------------
# Part 1: detect and recover
# ---------------------------------------------------------------------------------------------
part1() {
    cat > "$work/agent1.toml" <<EOF
[capture]
enabled = false
[alerts]
file = "$work/alerts1.jsonl"
stdout = false
[http]
listen = "127.0.0.1:$agent1_port"
[things]
interval_seconds = $interval
timeout_seconds = $timeout
subscribe = false
docker_labels = true
rediscover_seconds = 2.0
[things.recovery]
max_restarts = 100
window_seconds = 600.0
healthy_timeout_seconds = 10.0
EOF

    names=()
    ports=()
    for i in "${!faults[@]}"; do
        fault=${faults[$i]}
        name=$prefix-${fault//:/-}
        port=$((base_port + i))
        docker run -d --name "$name" --network host \
            -e MAMORI_DEVICE_LISTEN=127.0.0.1:$port -e MAMORI_DEVICE_TITLE="${fault//:/-}" \
            --label "mamori.thing=http://127.0.0.1:$port/.well-known/wot" "$image" >/dev/null
        containers+=("$name")
        names+=("$name")
        ports+=("$port")
    done
    names_json=$(printf '%s\n' "${names[@]}" | jq -R . | jq -cs .)

    "$mamori" agent --config "$work/agent1.toml" --quiet 2>"$work/agent1.err" &
    agent_pid=$!
    api1=127.0.0.1:$agent1_port
    wait_api "$api1" 30

    # Waits (up to $1 s) until every device is healthy.
    wait_healthy() {
        local deadline=$(( $(date +%s) + $1 ))
        while :; do
            if curl -sf --max-time 2 "http://$api1/api/things" | jq -e --argjson names "$names_json" \
                '[.[] | select(.name as $n | $names | index($n)) | select(.state == "healthy")] | length == ($names | length)' \
                >/dev/null 2>&1; then
                return 0
            fi
            if [ "$(date +%s)" -ge "$deadline" ]; then
                echo "things.sh: not every device is healthy after $1 s:" >&2
                curl -sf --max-time 2 "http://$api1/api/things" | jq -r '.[] | "  \(.name): \(.state) \(.reason)"' >&2 || true
                return 1
            fi
            sleep 0.25
        done
}

# The first complete cycle after t0: "failed_ns recovering_ns healthy_ns recoverings waits", or
# nothing (waits: recovering without a restart, "waiting for <container>, restarted Xs ago").
cycle_of() { # things.json name t0
    jq -r --arg n "$2" --argjson t0 "$3" '
        .[] | select(.name == $n) | [.transitions[] | select(.at_ns > $t0)] as $t
        | ([$t[] | select(.to == "failed")][0]) as $f
        | if $f == null then empty else
            ([$t[] | select(.to == "recovering" and .at_ns >= $f.at_ns)][0]) as $r
            | if $r == null then empty else
                ([$t[] | select(.to == "healthy" and .at_ns >= $r.at_ns)][0]) as $h
                | if $h == null then empty else
                    "\($f.at_ns) \($r.at_ns) \($h.at_ns) \([$t[] | select(.to == "recovering" and .at_ns <= $h.at_ns)] | length) \([$t[] | select(.to == "recovering" and .at_ns <= $h.at_ns and (.reason | startswith("waiting for")))] | length)"
                  end
              end
          end' "$1"
}
# Seconds the first restart after t0 took, from the incidents: "1.234" or "-".
restart_of() { # incidents.json name t0
    jq -r --arg n "$2" --argjson t0 "$3" '
        [.[] | select(.subject.name == $n) | .actions[]
             | select(.action == "restart" and .outcome == "succeeded" and .started_ns > $t0)]
        | sort_by(.started_ns) | .[0] | if . == null then "-" else (.finished_ns - .started_ns) / 1e9 end' "$1"
}

wait_healthy 60
printf 'Part 1: %s devices (one container each), %s repetitions of every fault in parallel, %s s apart once all are healthy; interval %s s, timeout %s s, healthy_timeout 10 s\n\n' \
    "${#faults[@]}" "$rounds" "$gap" "$interval" "$timeout"
: > "$work/cycles.tsv"
for rep in $(seq "$rounds"); do
    wait_healthy 60
    sleep "$gap"
    t0s=()
    for i in "${!faults[@]}"; do
        t0s+=("$(now_ns)")
        curl -sf --max-time 2 -X POST --data "${faults[$i]}" "http://127.0.0.1:${ports[$i]}/control/fault" >/dev/null ||
            { echo "things.sh: could not switch ${names[$i]} to ${faults[$i]}" >&2; exit 1; }
    done
    declare -A done_at=()
    deadline=$(( $(date +%s) + 60 ))
    while [ ${#done_at[@]} -lt ${#faults[@]} ]; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "things.sh: repetition $rep: no complete recovery within 60 s for:" >&2
            for i in "${!faults[@]}"; do
                [ -n "${done_at[$i]:-}" ] && continue
                jq -r --arg n "${names[$i]}" '.[] | select(.name == $n) | "  \(.name): \(.state): \(.reason)\n    \(.transitions[-4:] | map("\(.from)->\(.to)") | join(", "))"' "$work/things.json" >&2
            done
            exit 1
        fi
        sleep 0.5
        curl -sf --max-time 2 "http://$api1/api/things" > "$work/things.json" || continue
        for i in "${!faults[@]}"; do
            [ -n "${done_at[$i]:-}" ] && continue
            c=$(cycle_of "$work/things.json" "${names[$i]}" "${t0s[$i]}")
            [ -n "$c" ] || continue
            curl -sf --max-time 2 "http://$api1/api/incidents" > "$work/incidents.json"
            restart=$(restart_of "$work/incidents.json" "${names[$i]}" "${t0s[$i]}")
            read -r failed recovering healthy recoverings waits <<<"$c"
            printf '%s %s %s %s %s %s %s %s %s\n' "${faults[$i]}" "$rep" "${t0s[$i]}" "$failed" "$recovering" \
                "$healthy" "$restart" "$recoverings" "$waits" >> "$work/cycles.tsv"
            done_at[$i]=1
        done
    done
    unset done_at
done
python3 "$stats" recovery "$work/cycles.tsv" "$interval"
echo
quarantines=$(curl -sf --max-time 2 "http://$api1/api/things" | jq --argjson names "$names_json" \
    '[.[] | select(.name as $n | $names | index($n)) | .quarantines] | add')
restarts=$(curl -sf --max-time 2 "http://$api1/api/things" | jq --argjson names "$names_json" \
    '[.[] | select(.name as $n | $names | index($n)) | .restarts] | add')
evidence=$(curl -sf --max-time 2 "http://$api1/api/incidents" | jq -r '
    [.[] | .actions[] | select(.action == "collect-evidence") | (.finished_ns - .started_ns) / 1e6] | sort
    | if length == 0 then "-" else "median \(.[length / 2 | floor] | floor) ms, max \(max | floor) ms" end')
echo "restarts made: $restarts (expected $((rounds * ${#faults[@]}))), quarantines: $quarantines; evidence collection before each restart: $evidence"
echo "detect = first 'failed' transition - t0 (the POST of the fault); recover = the 'healthy' transition after the restart - 'failed'."
echo "A failure needs 2 bad rounds in a row (fail_after = 2), so detection takes 1-2 intervals after the fault; hang and slow:900 add the 0.5 s read timeout to each bad round; crash exits 100 ms after the POST."
echo "recovering/cycle: 'recovering' transitions before healthy; waits: of those, without a restart ('waiting for <container>, restarted Xs ago'), the restart coming only after healthy_timeout."
echo
stop_pid "$agent_pid"; agent_pid=
docker rm -f "${containers[@]}" >/dev/null 2>&1
containers=()
}

# ---------------------------------------------------------------------------------------------
# Part 2: probe cost at N Things every second, mamori then node-wot
# ---------------------------------------------------------------------------------------------
part2() {
    "$device_bin" --listen 127.0.0.1:$bulk_port --things "$things" --title bulk 2>"$work/device.err" >/dev/null &
    device_pid=$!
    for _ in $(seq 50); do curl -sf --max-time 1 "http://127.0.0.1:$bulk_port/control/fault" >/dev/null && break; sleep 0.1; done

    cat > "$work/agent2.toml" <<EOF
[capture]
enabled = false
[alerts]
file = "$work/alerts2.jsonl"
stdout = false
[http]
listen = "127.0.0.1:$agent2_port"
[things]
interval_seconds = $interval
timeout_seconds = $timeout
subscribe = false
docker_labels = false
rediscover_seconds = 30.0
[[things.thing]]
td = "http://127.0.0.1:$bulk_port/"
EOF
    "$mamori" agent --config "$work/agent2.toml" --quiet 2>"$work/agent2.err" &
    agent_pid=$!
    api2=127.0.0.1:$agent2_port
    wait_api "$api2" 30
    # every Thing probed at least once, then the warm-up
    deadline=$(( $(date +%s) + 60 ))
    until [ "$(curl -sf --max-time 5 "http://$api2/api/things" | jq '[.[] | select(.rounds > 0)] | length')" = "$things" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "things.sh: the agent did not probe all $things Things within 60 s" >&2; exit 1; }
        sleep 1
    done
    sleep "$warmup"

    curl -sf --max-time 10 "http://$api2/api/things" > "$work/m0.json"
    w0=$(now_ns); a0=$(cpu_ticks "$agent_pid"); d0=$(cpu_ticks "$device_pid")
    sleep "$seconds"
    a1=$(cpu_ticks "$agent_pid"); d1=$(cpu_ticks "$device_pid"); w1=$(now_ns)
    curl -sf --max-time 10 "http://$api2/api/things" > "$work/m1.json"
    m_hwm=$(status_kib "$agent_pid" VmHWM); m_rss=$(status_kib "$agent_pid" VmRSS)
    m_threads=$(status_kib "$agent_pid" Threads)
    m_conns=$(ss -Htn state established "dport = :$bulk_port" | wc -l)
    m_wait=$(ss -Htn state time-wait "( dport = :$bulk_port or sport = :$bulk_port )" | wc -l)
    m_row=$(python3 "$stats" mamori "$work/m0.json" "$work/m1.json" \
        "$(awk -v a="$w0" -v b="$w1" 'BEGIN { print (b - a) / 1e9 }')" \
        "$(awk -v a="$a0" -v b="$a1" -v t="$tck" 'BEGIN { print (b - a) / t }')" \
        "$(awk -v a="$d0" -v b="$d1" -v t="$tck" 'BEGIN { print (b - a) / t }')" \
        "$m_hwm" "$m_rss" "$things" 2>"$work/m_detail.txt")
    stop_pid "$agent_pid"; agent_pid=

    # node-wot, alone, against the same device
    sleep 2
    node "$root/bench/things/nodewot-poller.js" "http://127.0.0.1:$bulk_port/" 1000 > "$work/node.out" 2>"$work/node.err" &
    node_pid=$!
    deadline=$(( $(date +%s) + 120 ))
    until grep -q '"ready"' "$work/node.out"; do
        kill -0 "$node_pid" 2>/dev/null || { echo "things.sh: the node-wot poller exited" >&2; exit 1; }
        [ "$(date +%s)" -lt "$deadline" ] || { echo "things.sh: node-wot did not consume $things TDs within 120 s" >&2; exit 1; }
        sleep 0.5
    done
    sleep "$warmup"
    # a snapshot: SIGUSR2, then wait for the poller's line
    snapshot() {
        local before
        before=$(wc -l < "$work/node.out")
        kill -USR2 "$node_pid"
        for _ in $(seq 100); do
            [ "$(wc -l < "$work/node.out")" -gt "$before" ] && break
            sleep 0.05
        done
        tail -1 "$work/node.out"
}
n0_line=$(snapshot)
w0=$(now_ns); a0=$(cpu_ticks "$node_pid"); d0=$(cpu_ticks "$device_pid")
sleep "$seconds"
a1=$(cpu_ticks "$node_pid"); d1=$(cpu_ticks "$device_pid"); w1=$(now_ns)
n1_line=$(snapshot)
n_hwm=$(status_kib "$node_pid" VmHWM); n_rss=$(status_kib "$node_pid" VmRSS)
n_conns=$(ss -Htn state established "dport = :$bulk_port" | wc -l)
n_wait=$(ss -Htn state time-wait "( dport = :$bulk_port or sport = :$bulk_port )" | wc -l)
n_row=$(python3 "$stats" nodewot "$n0_line" "$n1_line" \
    "$(awk -v a="$w0" -v b="$w1" 'BEGIN { print (b - a) / 1e9 }')" \
    "$(awk -v a="$a0" -v b="$a1" -v t="$tck" 'BEGIN { print (b - a) / t }')" \
    "$(awk -v a="$d0" -v b="$d1" -v t="$tck" 'BEGIN { print (b - a) / t }')" \
    "$n_hwm" "$n_rss" "$things")
stop_pid "$node_pid"; node_pid=

printf 'Part 2: %s Things (one device process, 4 readable properties each), every %s s, timeout %s s; %s s warm-up, then %s s measured per tool, one tool at a time\n\n' \
    "$things" "$interval" "$timeout" "$warmup" "$seconds"
python3 "$stats" header
echo "$m_row"
echo "$n_row"
echo
echo "- $(cat "$work/m_detail.txt")"
echo "- mamori: p50/p99 as the bucket of its 14-bucket histogram (bounds 0.1, 0.25, 0.5, 1, 2.5 ms, …) they fall in, from the summed deltas; node-wot: from the poller's own 1 % log buckets. Latency = one property read, request to judged value."
echo "- mamori: $m_threads threads; TCP to the device at the end: $m_conns established, $m_wait in TIME-WAIT. node-wot: $n_conns established, $n_wait in TIME-WAIT (node-wot 0.7.8's HttpClient uses a non-keep-alive http.Agent: a connection per read)."
echo "- CPU % is utime+stime of the process over the window, as a share of one core (the machine has $(nproc)); device CPU % is the simulator serving that tool's reads."
echo "- mamori re-reads its directory listing every rediscover_seconds = 30 s, inside the window (TDs already watched are not fetched again)."
}

if [ "$part" != 2 ]; then part1; fi
if [ "$part" != 1 ]; then part2; fi
