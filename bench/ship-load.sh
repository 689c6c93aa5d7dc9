#!/usr/bin/env bash
# Log shipping load: sustained records/s of `mamori ship` -> `mamori collect` on loopback (mutual
# TLS 1.3, every record sealed into the hash chain on the device and verified by the collector
# before it is stored and acknowledged), against rsyslog shipping the same file, in one run:
#   - mamori, fsync on (the default: the shipper fsyncs its spool, the collector fsyncs before it
#     acknowledges), and with --no-fsync on both sides;
#   - rsyslog (Debian rsyslog + rsyslog-gnutls + rsyslog-relp): one rsyslogd with imfile reading
#     the file and omrelp sending it over RELP with TLS (GnuTLS, mutual certificates, peer name
#     checked; windowSize 4096, see relp_window), a second rsyslogd with imrelp receiving and
#     omfile writing the lines to a file.
#     RELP is rsyslog's acknowledged transport; without rsyslog-relp (or with --rsyslog-transport
#     tcp) omfwd/imtcp over TCP with the gtls stream driver (StreamDriverMode=1, x509/name) is
#     used instead, and the results say which. rsyslog has no tamper evidence (no hash chain, no
#     per-record MAC), does not fsync, and acknowledges on receipt, not after a commit: it is a
#     transport-only baseline.
# Both are separate processes per side with their own work directories (not the system daemon).
# The input: real audit log lines (enriched.log in $MAMORI_AUDIT_SAMPLES, or --log FILE, else
# /var/log/audit/audit.log) repeated up to --records lines, written before anything is timed.
# A run is timed from the start of the shipping process until the receiving side holds all N
# records (mamori: the collector's /api/devices counts N audit records; rsyslog: the output file
# has N lines), polled every 0.1 s. CPU seconds (user + sys, /proc/PID/stat) and peak RSS
# (VmHWM, /proc/PID/status) of each process are read at that moment. After each mamori run,
# `mamori verify` re-checks the store offline (timed; must be clean with N audit records).
#
# usage: bench/ship-load.sh [--records N] [--reps R] [--fsync] [--log FILE] [--mamori PATH]
#          [--skip ID,ID...] [--rsyslog-transport relp|tcp] [--timeout S] [--workdir DIR]
#   --records N     lines shipped per run (default 1000000)
#   --reps R        runs per contender, median reported (default 3)
#   --fsync         mamori with fsync on only (default: fsync on and --no-fsync, two rows)
#   --log FILE      the real audit log to repeat (default: $MAMORI_AUDIT_SAMPLES/enriched.log,
#                   else /var/log/audit/audit.log)
#   --mamori PATH   use this mamori binary (default: cargo build --release -p mamori, which
#                   follows CARGO_TARGET_DIR)
#   --skip IDS      leave out contenders by id: mamori-fsync, mamori-nofsync, rsyslog
#   --rsyslog-transport relp|tcp   (default relp when rsyslog-relp is installed, else tcp)
#   --timeout S     give up on a run after S seconds (default 600)
#   --workdir DIR   keep the input, certificates and stores in DIR (default: temp dir, removed)
# Writes out/bench/ship-load-<UTC stamp>/ (raw.tsv, logs, results.md) and prints the table.
# Defaults take ~5-8 minutes on the 2-core bench machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

records=1000000
reps=3
fsync_only=0
log_file=""
mamori=""
skip=","
transport=""
timeout=600
workdir=""
# RELP window (messages in flight). librelp's default, 128, leaves omrelp waiting on
# acknowledgements: ~1.8k lines/s on the bench machine; 4096 is ~4x faster and no faster beyond.
relp_window=4096
need_arg() { [ $# -ge 2 ] || { echo "ship-load: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --records) need_arg "$@"; records=$2; shift 2 ;;
        --reps) need_arg "$@"; reps=$2; shift 2 ;;
        --fsync) fsync_only=1; shift ;;
        --log) need_arg "$@"; log_file=$2; shift 2 ;;
        --mamori) need_arg "$@"; mamori=$2; shift 2 ;;
        --skip) need_arg "$@"; skip=",$2,"; shift 2 ;;
        --rsyslog-transport) need_arg "$@"; transport=$2; shift 2 ;;
        --timeout) need_arg "$@"; timeout=$2; shift 2 ;;
        --workdir) need_arg "$@"; workdir=$2; shift 2 ;;
        -h|--help) sed -n 2,39p "$0"; exit 0 ;;
        *) echo "ship-load: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in records reps timeout; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "ship-load: --$v must be a whole number, got '${!v}'" >&2; exit 2; }
done
if [ "$reps" -lt 1 ] || [ "$records" -lt 1 ]; then echo "ship-load: --reps and --records must be >= 1" >&2; exit 2; fi
case "$transport" in ""|relp|tcp) ;; *) echo "ship-load: --rsyslog-transport is relp or tcp" >&2; exit 2 ;; esac
[ "$fsync_only" = 1 ] && skip="${skip}mamori-nofsync,"
skipped() { [[ "$skip" == *",$1,"* ]]; }

log() { echo "[ship-bench $(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "ship-load: $*" >&2; exit 1; }

. "$root/bench/lib.sh"
need_tool curl curl
need_tool ss iproute2
if ! skipped rsyslog; then
    need_tool rsyslogd "rsyslog rsyslog-gnutls rsyslog-relp"
    need_tool openssl openssl
fi

# --- the real audit log -------------------------------------------------------------------------
if [ -z "$log_file" ]; then
    if [ -n "${MAMORI_AUDIT_SAMPLES:-}" ] && [ -s "$MAMORI_AUDIT_SAMPLES/enriched.log" ]; then
        log_file="$MAMORI_AUDIT_SAMPLES/enriched.log"
    elif [ -r /var/log/audit/audit.log ] && [ -s /var/log/audit/audit.log ]; then
        log_file=/var/log/audit/audit.log
    else
        die "no real audit log: set MAMORI_AUDIT_SAMPLES to a directory with enriched.log (scripts/lab/audit/record-samples.sh records one), give --log FILE, or run where /var/log/audit/audit.log is readable"
    fi
fi
[ -s "$log_file" ] || die "--log $log_file: missing or empty"

# Started processes, killed at exit whatever happens.
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${tmp_work:-}" ] && rm -rf "$tmp_work"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_dirs ship-load "$workdir"
# bench_dirs sets its own EXIT trap for a temporary work dir; fold it into ours.
if [ -z "$workdir" ]; then tmp_work="$work"; fi
trap cleanup EXIT

# --- mamori --------------------------------------------------------------------------------------
use_mamori=1
if skipped mamori-fsync && skipped mamori-nofsync; then use_mamori=0; fi
if [ "$use_mamori" = 1 ] && [ -z "$mamori" ]; then
    log "building mamori (cargo build --release -p mamori; CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<default>})"
    cargo build --quiet --release -p mamori || die "cargo build --release -p mamori failed (give --mamori PATH)"
    mamori="${CARGO_TARGET_DIR:-$root/target}/release/mamori"
fi
if [ "$use_mamori" = 1 ]; then
    [ -x "$mamori" ] || die "mamori binary not found at $mamori"
    "$mamori" ship --help >/dev/null 2>&1 || die "$mamori has no 'ship' subcommand"
fi

# --- input (not timed) ---------------------------------------------------------------------------
input="$work/audit-$records.log"
if [ ! -s "$input" ] || [ "$(wc -l < "$input")" != "$records" ]; then
    log "writing $records lines of $log_file to $input"
    awk -v n="$records" '{ l[NR] = $0 } END { if (NR == 0) exit 1; for (i = 0; i < n; i++) print l[i % NR + 1] }' \
        "$log_file" > "$input" || die "could not build the input from $log_file"
fi
input_bytes=$(stat -c %s "$input")
sample_lines=$(wc -l < "$log_file")
log "input: $records lines, $input_bytes bytes (from $sample_lines real lines of $log_file)"
sync

# --- helpers -------------------------------------------------------------------------------------
tck=$(getconf CLK_TCK)
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# user+sys seconds and peak RSS (KiB) of a live process.
proc_cpu() { awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"; }
proc_hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 20000))
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return 0; }
    done
    die "no free port found"
}
wait_listen() { # PORT PID WHAT
    local i
    for ((i = 0; i < 100; i++)); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        kill -0 "$2" 2>/dev/null || die "$3 exited before listening (see its log in $out)"
        sleep 0.1
    done
    die "$3 not listening on port $1 after 10 s"
}
stop() { # PID...
    local p
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

printf 'id\trun\twall_s\trecords\tbytes\tsend_cpu_s\tsend_rss_kib\trecv_cpu_s\trecv_rss_kib\tverify_s\tverify\n' > "$out/raw.tsv"

# --- mamori --------------------------------------------------------------------------------------
certs="$work/certs"
if [ "$use_mamori" = 1 ]; then
    rm -rf "$certs"
    {
        "$mamori" certs ca --dir "$certs"
        "$mamori" certs collector collector --ca-dir "$certs" --san 127.0.0.1
        "$mamori" certs device gw1 --ca-dir "$certs"
    } > "$out/certs.log" 2>&1 || { tail -n 5 "$out/certs.log" >&2; die "mamori certs failed"; }
fi

# audit records stored for gw1, from /api/devices (0 until the device shows up).
stored_audit() {
    curl -s --max-time 2 "http://127.0.0.1:$1/api/devices" \
        | awk '/"device": "gw1"/ { d = 1 } d && /"audit":/ { gsub(/[^0-9]/, ""); print; exit }' || true
}

run_mamori() { # ID RUN EXTRA_FLAGS...
    local id=$1 run=$2
    shift 2
    local port hport store spool cpid spid t0 t1 n wall scpu srss ccpu crss vt0 vt1 vrc vlog vstate
    port=$(free_port); hport=$(free_port)
    store="$work/store-$id"; spool="$work/spool-$id"
    rm -rf "$store" "$spool"
    "$mamori" collect --listen "127.0.0.1:$port" --store "$store" --certs "$certs" --name collector \
        --http "127.0.0.1:$hport" "$@" >> "$out/$id-collect.log" 2>&1 &
    cpid=$!; pids+=("$cpid")
    wait_listen "$port" "$cpid" "mamori collect"
    wait_listen "$hport" "$cpid" "mamori collect (http)"
    t0=$(now)
    "$mamori" ship --collector "127.0.0.1:$port" --certs "$certs" --name gw1 --spool "$spool" \
        --audit-log "$input" --heartbeat 0s "$@" >> "$out/$id-ship.log" 2>&1 &
    spid=$!; pids+=("$spid")
    n=0
    while :; do
        n=$(stored_audit "$hport"); n=${n:-0}
        [ "$n" -ge "$records" ] && break
        kill -0 "$spid" 2>/dev/null || { log "$id run $run: mamori ship exited (see $out/$id-ship.log)"; stop "$spid" "$cpid"; return 1; }
        kill -0 "$cpid" 2>/dev/null || { log "$id run $run: mamori collect exited (see $out/$id-collect.log)"; stop "$spid" "$cpid"; return 1; }
        if awk -v a="$t0" -v b="$(now)" -v t="$timeout" 'BEGIN { exit !(b - a > t) }'; then
            log "$id run $run: only $n of $records records stored after ${timeout}s"; stop "$spid" "$cpid"; return 1
        fi
        sleep 0.1
    done
    t1=$(now)
    scpu=$(proc_cpu "$spid"); srss=$(proc_hwm "$spid"); ccpu=$(proc_cpu "$cpid"); crss=$(proc_hwm "$cpid")
    stop "$spid" "$cpid"
    wall=$(elapsed "$t0" "$t1")
    # Offline re-check of everything stored.
    vlog="$out/$id-verify-$run.json"
    vt0=$(now); vrc=0
    "$mamori" verify --json "$store/gw1" > "$vlog" 2>> "$out/$id-verify.log" || vrc=$?
    vt1=$(now)
    if [ "$vrc" = 0 ]; then vstate="clean"; else vstate="exit-$vrc"; fi
    local vaudit
    vaudit=$(python3 - "$vlog" <<'PY' 2>/dev/null || echo "?"
import json, sys
r = json.load(open(sys.argv[1]))
def find(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("audit",) and isinstance(v, int):
                return v
            x = find(v)
            if x is not None:
                return x
    elif isinstance(o, list):
        for v in o:
            x = find(v)
            if x is not None:
                return x
    return None
print(find(r))
PY
)
    [ "$vaudit" = "$records" ] || vstate="$vstate,audit=$vaudit"
    printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$run" "$wall" "$n" "$input_bytes" \
        "$scpu" "$srss" "$ccpu" "$crss" "$(elapsed "$vt0" "$vt1")" "$vstate" >> "$out/raw.tsv"
    log "$id run $run: ${wall}s, $(awk -v n="$records" -v w="$wall" 'BEGIN { printf "%.0f", n / w }') records/s; ship ${scpu}s CPU ${srss} KiB; collect ${ccpu}s CPU ${crss} KiB; verify $(elapsed "$vt0" "$vt1")s $vstate"
    rm -rf "$store" "$spool"
}

for ((r = 1; r <= reps; r++)); do
    skipped mamori-fsync || run_mamori mamori-fsync "$r" || die "mamori-fsync failed"
    skipped mamori-nofsync || run_mamori mamori-nofsync "$r" --no-fsync || die "mamori-nofsync failed"
done

# --- rsyslog -------------------------------------------------------------------------------------
rsyslog_note=""
if ! skipped rsyslog; then
    moddir=$(dirname "$(dpkg -L rsyslog 2>/dev/null | grep -m1 '/imfile.so$' || echo /usr/lib/x86_64-linux-gnu/rsyslog/imfile.so)")
    [ -f "$moddir/lmnsd_gtls.so" ] || die "rsyslog has no gtls driver ($moddir/lmnsd_gtls.so): apt-get install rsyslog-gnutls"
    if [ -z "$transport" ]; then
        if [ -f "$moddir/omrelp.so" ] && [ -f "$moddir/imrelp.so" ]; then transport=relp; else transport=tcp; fi
    fi
    if [ "$transport" = relp ] && ! [ -f "$moddir/omrelp.so" ]; then die "no omrelp: apt-get install rsyslog-relp"; fi
    rversion=$(rsyslogd -v | awk 'NR == 1 { print $2 }')
    # Certificates of the same kind as mamori's (ECDSA P-256, one CA, CN = the name), via openssl.
    rcerts="$work/rsyslog-certs"
    rm -rf "$rcerts"; mkdir -p "$rcerts"
    (
        cd "$rcerts"
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key
        openssl req -x509 -new -key ca.key -subj "/CN=bench CA" -days 30 -out ca.pem
        for n in collector gw1; do
            openssl ecparam -name prime256v1 -genkey -noout -out "$n.key"
            openssl req -new -key "$n.key" -subj "/CN=$n" -out "$n.csr"
            printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$n" > "$n.ext"
            openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile "$n.ext" -out "$n.pem"
        done
    ) > "$out/rsyslog-certs.log" 2>&1 || die "openssl certificates failed (see $out/rsyslog-certs.log)"
    if [ "$transport" = relp ]; then
        rsyslog_note="rsyslog $rversion, imfile -> omrelp (RELP, windowSize=$relp_window, TLS via librelp/GnuTLS, tls.authMode=name) -> imrelp -> omfile"
    else
        rsyslog_note="rsyslog $rversion, imfile -> omfwd TCP (gtls, StreamDriverMode=1, x509/name) -> imtcp (gtls) -> omfile"
    fi
    log "reference: $rsyslog_note"

    render() { # TEMPLATE OUT, then KEY=VALUE pairs
        local tpl=$1 dst=$2 kv k v
        shift 2
        cp "$tpl" "$dst"
        for kv in "$@"; do
            k=${kv%%=*}; v=${kv#*=}
            KV="$v" K="@$k@" perl -pi -e 's/\Q$ENV{K}\E/$ENV{KV}/g' "$dst"
        done
    }

    run_rsyslog() { # RUN
        local run=$1 id=rsyslog port d rpid spid t0 t1 n wall scpu srss ccpu crss prev size
        port=$(free_port)
        d="$work/rsyslog-run"
        rm -rf "$d"; mkdir -p "$d/send" "$d/recv"
        local c="$rcerts" gtls="" om im act inp
        if [ "$transport" = relp ]; then
            om='module(load="omrelp")'
            act="action(type=\"omrelp\" target=\"127.0.0.1\" port=\"$port\" tls=\"on\" tls.caCert=\"$c/ca.pem\" tls.myCert=\"$c/gw1.pem\" tls.myPrivKey=\"$c/gw1.key\" tls.authMode=\"name\" tls.permittedPeer=[\"collector\"] windowSize=\"$relp_window\")"
            im='module(load="imrelp")'
            inp="input(type=\"imrelp\" port=\"$port\" ruleset=\"store\" tls=\"on\" tls.caCert=\"$c/ca.pem\" tls.myCert=\"$c/collector.pem\" tls.myPrivKey=\"$c/collector.key\" tls.authMode=\"name\" tls.permittedPeer=[\"gw1\"])"
            gtls_s=""; gtls_r=""
        else
            om=''
            act="action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$port\" protocol=\"tcp\" StreamDriver=\"gtls\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\" StreamDriverPermittedPeers=\"collector\")"
            im='module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/name" PermittedPeer=["gw1"])'
            inp="input(type=\"imtcp\" port=\"$port\" ruleset=\"store\")"
            gtls_s="defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"$c/ca.pem\" defaultNetstreamDriverCertFile=\"$c/gw1.pem\" defaultNetstreamDriverKeyFile=\"$c/gw1.key\""
            gtls_r="defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"$c/ca.pem\" defaultNetstreamDriverCertFile=\"$c/collector.pem\" defaultNetstreamDriverKeyFile=\"$c/collector.key\""
        fi
        render bench/ship/rsyslog-receiver.conf.in "$d/recv.conf" "WORK=$d/recv" "OUT=$d/out.log" \
            "GLOBAL_TLS=$gtls_r" "INPUT_MODULE=$im" "INPUT=$inp"
        render bench/ship/rsyslog-sender.conf.in "$d/send.conf" "WORK=$d/send" "LOG=$input" \
            "GLOBAL_TLS=$gtls_s" "OUTPUT_MODULE=$om" "ACTION=$act" "TRANSPORT=$transport"
        cp "$d/recv.conf" "$out/rsyslog-receiver.conf"; cp "$d/send.conf" "$out/rsyslog-sender.conf"
        rsyslogd -N1 -f "$d/recv.conf" >> "$out/rsyslog-check.log" 2>&1 || die "receiver config rejected (see $out/rsyslog-check.log)"
        rsyslogd -N1 -f "$d/send.conf" >> "$out/rsyslog-check.log" 2>&1 || die "sender config rejected (see $out/rsyslog-check.log)"
        rsyslogd -n -f "$d/recv.conf" -i "$d/recv.pid" >> "$out/rsyslog-receiver.log" 2>&1 &
        rpid=$!; pids+=("$rpid")
        wait_listen "$port" "$rpid" "rsyslogd (receiver)"
        t0=$(now)
        rsyslogd -n -f "$d/send.conf" -i "$d/send.pid" >> "$out/rsyslog-sender.log" 2>&1 &
        spid=$!; pids+=("$spid")
        # Count lines incrementally (only the bytes written since the last look).
        n=0; prev=0
        while :; do
            size=$(stat -c %s "$d/out.log" 2>/dev/null || echo 0)
            if [ "$size" -gt "$prev" ]; then
                n=$((n + $(tail -c +"$((prev + 1))" "$d/out.log" | head -c "$((size - prev))" | tr -dc '\n' | wc -c)))
                prev=$size
            fi
            [ "$n" -ge "$records" ] && break
            kill -0 "$spid" 2>/dev/null || { log "rsyslog run $run: sender exited (see $out/rsyslog-sender.log)"; stop "$spid" "$rpid"; return 1; }
            kill -0 "$rpid" 2>/dev/null || { log "rsyslog run $run: receiver exited (see $out/rsyslog-receiver.log)"; stop "$spid" "$rpid"; return 1; }
            if awk -v a="$t0" -v b="$(now)" -v t="$timeout" 'BEGIN { exit !(b - a > t) }'; then
                log "rsyslog run $run: only $n of $records lines after ${timeout}s"; stop "$spid" "$rpid"; return 1
            fi
            sleep 0.1
        done
        t1=$(now)
        scpu=$(proc_cpu "$spid"); srss=$(proc_hwm "$spid"); ccpu=$(proc_cpu "$rpid"); crss=$(proc_hwm "$rpid")
        stop "$spid" "$rpid"
        wall=$(elapsed "$t0" "$t1")
        # Same content as sent? rsyslog escapes control characters (auditd's 0x1d separator in
        # enriched lines becomes #035), so compare with that undone.
        local same
        if sed 's/#035/\x1d/g' "$d/out.log" | cmp - "$input" >> "$out/rsyslog-compare.log" 2>&1; then
            same="identical"
        elif cmp -s <(sed 's/#035/\x1d/g' "$d/out.log" | LC_ALL=C sort) <(LC_ALL=C sort "$input"); then
            same="reordered"   # every line, once, not in the order of the file
        else
            same="differs($(wc -l < "$d/out.log")-lines)"
        fi
        printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t-\t%s\n' "$id" "$run" "$wall" "$n" "$input_bytes" \
            "$scpu" "$srss" "$ccpu" "$crss" "$same" >> "$out/raw.tsv"
        log "rsyslog run $run: ${wall}s, $(awk -v n="$records" -v w="$wall" 'BEGIN { printf "%.0f", n / w }') records/s; sender ${scpu}s CPU ${srss} KiB; receiver ${ccpu}s CPU ${crss} KiB; output $same"
        rm -rf "$d"
    }
    for ((r = 1; r <= reps; r++)); do
        run_rsyslog "$r" || die "rsyslog run failed"
    done
fi

# --- results -------------------------------------------------------------------------------------
table=$(awk -F'\t' -v n="$records" '
    NR == 1 { next }
    { k = $1; ids[k] = 1; c[k]++; i = c[k]
      w[k, i] = $3; sc[k, i] = $6; sr[k, i] = $7; rc[k, i] = $8; rr[k, i] = $9; v[k, i] = $10; ok[k] = ok[k] (ok[k] == "" ? "" : " ") $11 }
    function med(a, k, m,    x, j, t, l, s) {
        for (j = 1; j <= m; j++) x[j] = a[k, j]
        for (j = 1; j <= m; j++) for (l = j + 1; l <= m; l++) if (x[l] + 0 < x[j] + 0) { t = x[j]; x[j] = x[l]; x[l] = t }
        return (m % 2) ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
    }
    END {
        print "| contender | runs | wall s | records/s | MB/s | sender CPU s (% of a core) | sender peak RSS MiB | receiver CPU s (% of a core) | receiver peak RSS MiB | offline verify s (records/s) | check |"
        print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        split("mamori-fsync mamori-nofsync rsyslog", order, " ")
        for (o = 1; o <= 3; o++) {
            k = order[o]; if (!(k in ids)) continue
            m = c[k]; W = med(w, k, m); S = med(sc, k, m); R = med(rc, k, m)
            if (k == "rsyslog") vv = "- (no chain)"; else { V = med(v, k, m); vv = sprintf("%.2f (%.0f)", V, n / V) }
            printf "| %s | %d | %.2f | %.0f | %.1f | %.2f (%.0f%%) | %.1f | %.2f (%.0f%%) | %.1f | %s | %s |\n", k, m, W, n / W, bytes / W / 1e6, S, 100 * S / W, med(sr, k, m) / 1024, R, 100 * R / W, med(rr, k, m) / 1024, vv, ok[k]
        }
    }' bytes="$input_bytes" "$out/raw.tsv")

{
    echo "# Log shipping load ($stamp)"
    echo
    echo '```'
    machine_lines
    echo "records: $records"
    echo "input_bytes: $input_bytes"
    echo "input_from: $log_file ($sample_lines real lines, repeated)"
    echo "reps: $reps"
    echo "mamori: $mamori"
    [ -n "$rsyslog_note" ] && echo "reference: $rsyslog_note"
    echo "command: bench/ship-load.sh --records $records --reps $reps$([ "$fsync_only" = 1 ] && echo ' --fsync')$([ "$skip" != "," ] && [ "$skip" != ",mamori-nofsync," ] && echo " --skip ${skip:1:-1}")"
    echo '```'
    echo
    echo "Medians over the runs. Wall: shipping process start -> all $records records held by the receiving side."
    echo "mamori: sealed (hash chain), sent over mutual TLS 1.3, verified and stored by the collector; check = \`mamori verify\` of the store (clean, $records audit records)."
    echo "rsyslog: transport only (no tamper evidence, no fsync, acknowledged on receipt); check = output file equal to the input (identical), or the same lines in another order (reordered)."
    echo
    echo "$table"
} > "$out/results.md"
echo "$table"
log "results in $out/results.md"
