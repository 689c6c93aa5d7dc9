#!/usr/bin/env bash
# The cost of mamori's audit rules (profiles/audit/mamori.rules) on a busy device, on this machine.
#
# A busy workload runs for S seconds, twice: with the rules loaded and with no rules. It is four
# loops at once, each counting its rounds: short-lived processes (a shell running date, cat, wc,
# ls: what scripts and cron jobs do), an HTTP server on loopback answering curl (process starts,
# connects, accepts), a log writer that appends, rotates (rename) and deletes files, and tar
# packing and unpacking /usr/share/doc under /var/tmp (thousands of file creations). With the
# rules: audit records and events per second, log bytes per second, events the kernel lost; and
# per loop, rounds per second with and without the rules (the slowdown the rules cost).
#
# Needs root and the audit lab (scripts/lab/setup-audit-lab.sh, which this runs). --keep FILE
# keeps the log recorded with the rules, a large real log for bench/audit-parse.sh.
#
#   bench/audit-rules.sh [--seconds S] [--keep FILE]    (as root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command_line="$0${*:+ $*}"
seconds=60
keep=
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --keep) keep=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "audit-rules: needs root (the audit daemon)" >&2; exit 1; }
log=$("$root/scripts/lab/setup-audit-lab.sh")
rules="$root/profiles/audit/mamori.rules"
work=$(mktemp -d /var/tmp/mamori-audit-bench.XXXXXX)
http_pid=
trap 'kill $http_pid 2>/dev/null || true; rm -rf "$work"; auditctl -R "$rules" >/dev/null 2>&1 || true' EXIT

py=/usr/bin/python3
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/www" && echo hello > "$work/www/index.html"
"$py" -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" >/dev/null 2>&1 &
http_pid=$!
for _ in $(seq 50); do nc -z 127.0.0.1 "$port" 2>/dev/null && break; sleep 0.1; done

# One loop: runs its body until the deadline, then writes its round count to $work/count.NAME.
loop() {
    local name=$1 end=$2 n=0
    shift 2
    while [ "$(date +%s)" -lt "$end" ]; do
        "$@" >/dev/null 2>&1 || true
        n=$((n + 1))
    done
    echo "$n" > "$work/count.$name"
}
procs() { sh -c 'date; cat /etc/hostname | wc -c; ls /usr/bin | head -3'; }
web() { curl -s "http://127.0.0.1:$port/index.html"; }
logs() {
    local d=$work/logs
    mkdir -p "$d"
    for i in $(seq 20); do echo "line $i $(date +%s%N)" >> "$d/app.log"; done
    mv "$d/app.log" "$d/app.log.1"
    rm -f "$d/app.log.1"
}
archive() {
    tar -C /usr/share -cf "$work/doc.tar" doc
    rm -rf "$work/unpack" && mkdir -p "$work/unpack"
    tar -C "$work/unpack" -xf "$work/doc.tar"
}

workload() {
    local end=$(( $(date +%s) + seconds ))
    local pids=()
    loop procs "$end" procs & pids+=($!)
    loop web "$end" web & pids+=($!)
    loop logs "$end" logs & pids+=($!)
    loop archive "$end" archive & pids+=($!)
    wait "${pids[@]}"
}

lost() { auditctl -s | awk '$1 == "lost" { print $2 }'; }

# With the rules.
auditctl -R "$rules" >/dev/null
start=$(stat -c %s "$log")
lost0=$(lost)
t0=$(date +%s.%N)
workload
t1=$(date +%s.%N)
lost1=$(lost)
sleep 2 # auditd flushes asynchronously
slice=$work/slice.log
tail -c +"$((start + 1))" "$log" > "$slice"
declare -A with
for l in procs web logs archive; do with[$l]=$(cat "$work/count.$l"); done

# Without rules (auditing stays enabled: the kernel's per-syscall audit context is the baseline
# a device with auditd but no rules pays anyway).
auditctl -D >/dev/null
workload
declare -A without
for l in procs web logs archive; do without[$l]=$(cat "$work/count.$l"); done
auditctl -R "$rules" >/dev/null

records=$(grep -c '' "$slice" || true)
events=$(grep -o 'msg=audit([0-9.]*:[0-9]*)' "$slice" | sort -u | wc -l)
bytes=$(stat -c %s "$slice")
elapsed=$(echo "$t1 - $t0" | bc -l)
[ -n "$keep" ] && cp "$slice" "$keep"

echo "# mamori audit rules on a busy workload"
echo
echo "\`$command_line\` — $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%d)"
echo
echo "| with the rules | per second |"
echo "|---|---:|"
printf '| audit events | %.0f |\n' "$(echo "$events / $elapsed" | bc -l)"
printf '| audit records | %.0f |\n' "$(echo "$records / $elapsed" | bc -l)"
printf '| log KiB | %.0f |\n' "$(echo "$bytes / 1024 / $elapsed" | bc -l)"
echo "| events lost by the kernel (whole run) | $((lost1 - lost0)) |"
echo
echo "| loop | rounds/s with rules | rounds/s without | slowdown |"
echo "|---|---:|---:|---:|"
for l in procs web logs archive; do
    printf '| %s | %.1f | %.1f | %.1f %% |\n' "$l" \
        "$(echo "${with[$l]} / $seconds" | bc -l)" "$(echo "${without[$l]} / $seconds" | bc -l)" \
        "$(echo "(1 - ${with[$l]} / ${without[$l]}) * 100" | bc -l)"
done
echo
echo "Record types (with the rules):"
echo
grep -o '^type=[A-Z_]*' "$slice" | sort | uniq -c | sort -rn | head -12 | awk '{ printf "- %s: %d\n", substr($2, 6), $1 }'
