#!/usr/bin/env bash
# Network throughput: packets -> features (-> score) of `mamori net` against reference tools, on
# the same capture, in one run:
#   - mamori net features --kind device|flow|interval, and mamori net score with detectors the
#     script trains itself (isolation forest on device and flow rows, autoencoder on device rows;
#     an RBF SVM on device rows, see below);
#   - tshark field extraction of the header fields mamori's extractor uses (as installed, and with
#     only frame/eth/ip/ipv6/arp/tcp/udp dissectors enabled and TCP sequence analysis off);
#   - nfstream (PyPI, pinned): bidirectional flows with statistical_analysis=True;
#   - bench/net/kitsune_style.py: a Python, Kitsune-style per-packet feature extractor (damped
#     incremental statistics, 115 features per packet), alone and with scikit-learn's
#     IsolationForest scoring every vector; and a dpkt header-parse-only baseline.
# The capture: the real IoT captures in ../shared/data/iot-benign-pcap/ merged in time order and
# repeated with shifted timestamps (bench/net/make-capture.sh) up to --packets packets. The Python
# and tshark contenders are 10-100x slower, so they read the first --ref-packets packets of it (a
# file of its own); mamori runs on that file too (the speed-ups compare the same file) and on the
# whole capture. Every command runs --reps times under /usr/bin/time; the table gives medians of
# wall time, CPU time (user + sys, children included) and peak RSS. A command whose first run takes
# longer than --slow-cap seconds is not repeated (n=1).
#
# SVM: trained on the committed lab run data/net/lab-a (real hping3/nmap/telnet attacks with
# labels), then timed scoring the big capture; --svm-train CAPTURE --svm-labels FILE use another.
#
# usage: bench/net-throughput.sh [--packets N] [--reps R] [--ref-packets N] [--mamori PATH]
#          [--no-mamori] [--skip ID,ID...] [--pcap FILE] [--workdir DIR] [--slow-cap S]
#          [--svm-train CAPTURE --svm-labels FILE]
#   --packets N      size of the built capture (default 2500000)
#   --reps R         runs per command, median reported (default 3)
#   --ref-packets N  packets given to tshark / Python contenders (default 250000; 0 = all)
#   --mamori PATH    use this mamori binary (default: cargo build --release -p mamori, which
#                    follows CARGO_TARGET_DIR)
#   --no-mamori      reference contenders only (no speed-ups)
#   --skip IDS       leave out contenders by id: tshark, tshark-min, nfstream, dpkt-parse,
#                    kitsune, kitsune-iforest, svm
#   --pcap FILE      use this classic-pcap Ethernet capture instead of building one
#   --workdir DIR    keep the capture and detectors in DIR (default: a temp dir, removed at exit)
#   --slow-cap S     do not repeat a command whose first run took longer (default 120)
# Writes out/bench/net-<UTC stamp>/ (raw.tsv, logs, machine.txt, results.md) and appends the
# results to out/bench/net-throughput.md. Defaults take ~6-7 minutes on the 2-core bench machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

packets=2500000
reps=3
ref_packets=250000
mamori=""
no_mamori=0
skip=","
pcap=""
workdir=""
slow_cap=120
# The SVM learns the committed lab run (real attacks, labelled) unless told otherwise.
svm_train="data/net/lab-a/capture.pcap.gz"
svm_labels="data/net/lab-a/labels.tsv"
need_arg() { [ $# -ge 2 ] || { echo "net-throughput: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --packets) need_arg "$@"; packets=$2; shift 2 ;;
        --reps) need_arg "$@"; reps=$2; shift 2 ;;
        --ref-packets) need_arg "$@"; ref_packets=$2; shift 2 ;;
        --mamori) need_arg "$@"; mamori=$2; shift 2 ;;
        --no-mamori) no_mamori=1; shift ;;
        --skip) need_arg "$@"; skip=",$2,"; shift 2 ;;
        --pcap) need_arg "$@"; pcap=$2; shift 2 ;;
        --workdir) need_arg "$@"; workdir=$2; shift 2 ;;
        --slow-cap) need_arg "$@"; slow_cap=$2; shift 2 ;;
        --svm-train) need_arg "$@"; svm_train=$2; shift 2 ;;
        --svm-labels) need_arg "$@"; svm_labels=$2; shift 2 ;;
        -h|--help) sed -n 2,45p "$0"; exit 0 ;;
        *) echo "net-throughput: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in packets reps ref_packets slow_cap; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "net-throughput: --${v//_/-} must be a whole number, got '${!v}'" >&2; exit 2; }
done
if [ "$reps" -lt 1 ] || [ "$packets" -lt 1 ]; then echo "net-throughput: --reps and --packets must be >= 1" >&2; exit 2; fi
if { [ -n "$svm_train" ] && [ -z "$svm_labels" ]; } || { [ -z "$svm_train" ] && [ -n "$svm_labels" ]; }; then
    echo "net-throughput: --svm-train and --svm-labels go together" >&2; exit 2
fi
skipped() { [[ "$skip" == *",$1,"* ]]; }

log() { echo "[net-bench $(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "net-throughput: $*" >&2; exit 1; }

# Tools, with the Debian package that brings each.
. "$root/bench/lib.sh"
[ -x /usr/bin/time ] || die "/usr/bin/time not found: apt-get install time"
need_tool tshark tshark
need_tool editcap wireshark-common
need_tool mergecap wireshark-common
need_tool capinfos wireshark-common

bench_dirs net "$workdir"

# --- mamori --------------------------------------------------------------------------------------
if [ "$no_mamori" = 0 ]; then
    if [ -z "$mamori" ]; then
        log "building mamori (cargo build --release -p mamori; CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<default>})"
        cargo build --quiet --release -p mamori || die "cargo build --release -p mamori failed (give --mamori PATH, or --no-mamori)"
        mamori="${CARGO_TARGET_DIR:-$root/target}/release/mamori"
    fi
    [ -x "$mamori" ] || die "mamori binary not found at $mamori"
    "$mamori" net features --help >/dev/null 2>&1 || die "$mamori has no 'net features' subcommand"
fi

# --- reference venv ------------------------------------------------------------------------------
log "reference venv (scripts/setup-reference-venv.sh, then dpkt and nfstream pinned)"
scripts/setup-reference-venv.sh
py="$root/.venv-ref/bin/python"
DPKT_VERSION=1.9.8
NFSTREAM_VERSION=6.6.0
has_version() { "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" 2>/dev/null; }
if ! has_version dpkt "$DPKT_VERSION"; then
    "$py" -m pip install --quiet --disable-pip-version-check "dpkt==$DPKT_VERSION" || die "pip install dpkt==$DPKT_VERSION failed"
fi
nfstream_ok=1
if ! skipped nfstream; then
    if ! has_version nfstream "$NFSTREAM_VERSION"; then
        if ! "$py" -m pip install --quiet --disable-pip-version-check "nfstream==$NFSTREAM_VERSION" >"$out/nfstream-install.log" 2>&1; then
            log "nfstream==$NFSTREAM_VERSION did not install (see $out/nfstream-install.log): skipping nfstream"
            nfstream_ok=0
        fi
    fi
    if [ "$nfstream_ok" = 1 ] && ! "$py" -c "import nfstream" >>"$out/nfstream-install.log" 2>&1; then
        log "nfstream does not import here (see $out/nfstream-install.log): skipping nfstream"
        nfstream_ok=0
    fi
fi

# --- captures ------------------------------------------------------------------------------------
if [ -n "$pcap" ]; then
    [ -f "$pcap" ] || die "--pcap $pcap: no such file"
    big="$pcap"
else
    big="$work/capture-$packets.pcap"
    if [ ! -s "$big" ]; then
        log "building a $packets-packet capture in $work"
        bench/net/make-capture.sh "$big" "$packets"
    fi
fi
count_packets() { capinfos -M -T -r -c "$1" | awk -F'\t' '{ print $2 }'; }
big_packets=$(count_packets "$big")
big_bytes=$(stat -c %s "$big")
if [ "$ref_packets" = 0 ] || [ "$ref_packets" -ge "$big_packets" ]; then
    ref="$big"
else
    ref="$work/first-$ref_packets.pcap"
    [ -s "$ref" ] || editcap -F pcap -r "$big" "$ref" "1-$ref_packets"
fi
ref_packets=$(count_packets "$ref")
ref_bytes=$(stat -c %s "$ref")
log "capture: $big_packets packets, $big_bytes bytes; reference contenders: $ref_packets packets"

# --- timing --------------------------------------------------------------------------------------
# measure ID PACKETS WHAT OK_CODES -- CMD...: runs CMD reps times; appends a line per run to raw.tsv:
# id, run, wall s, user s, sys s, peak RSS KiB, packets, what. Stdout (the product: rows, fields)
# goes to /dev/null, stderr of every run to ID.log (mamori and the Python scripts report there
# what they read and wrote). OK_CODES: accepted exit codes, e.g. "0" or "0 1" (score exits 1 on
# alerts).
printf 'id\trun\twall_s\tuser_s\tsys_s\tmaxrss_kib\tpackets\twhat\n' > "$out/raw.tsv"
measure() {
    local id="$1" n="$2" what="$3" ok="$4"
    shift 5
    local i t0 t1 rc wall user sys rss
    for ((i = 1; i <= reps; i++)); do
        t0=$(date +%s.%N)
        rc=0
        /usr/bin/time -f '%U %S %M' -o "$out/time.txt" "$@" >/dev/null 2>>"$out/$id.log" || rc=$?
        t1=$(date +%s.%N)
        if [[ " $ok " != *" $rc "* ]]; then
            log "$id run $i failed (exit $rc); last lines of $out/$id.log:"
            tail -n 5 "$out/$id.log" >&2
            return 1
        fi
        wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        read -r user sys rss < <(tail -n 1 "$out/time.txt")
        printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$i" "$wall" "$user" "$sys" "$rss" "$n" "$what" >> "$out/raw.tsv"
        log "$id run $i: ${wall}s wall, $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')s CPU, ${rss} KiB"
        if awk -v w="$wall" -v c="$slow_cap" 'BEGIN { exit !(w > c) }'; then
            log "$id: over ${slow_cap}s, not repeated"
            break
        fi
    done
}

F=(-e frame.time_epoch -e frame.len -e eth.src -e eth.dst -e ip.src -e ip.dst -e ip.proto
   -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e tcp.flags)

if [ "$no_mamori" = 0 ]; then
    # Detectors: trained once, on the reference-sized file (training time is not measured).
    log "training detectors"
    "$mamori" net train --model iforest --kind device -o "$work/iforest-device.json" "$ref" 2>"$out/train-iforest-device.log" \
        || { tail -n 5 "$out/train-iforest-device.log" >&2; die "mamori net train --model iforest --kind device failed"; }
    "$mamori" net train --model iforest --kind flow -o "$work/iforest-flow.json" "$ref" 2>"$out/train-iforest-flow.log" \
        || { tail -n 5 "$out/train-iforest-flow.log" >&2; die "mamori net train --model iforest --kind flow failed"; }
    "$mamori" net train --model autoencoder --members 1 --no-baselines --kind device -o "$work/ae-device.json" "$ref" 2>"$out/train-ae-device.log" \
        || { tail -n 5 "$out/train-ae-device.log" >&2; die "mamori net train --model autoencoder --kind device failed"; }
    svm=0
    if ! skipped svm; then
        if [ -z "$svm_train" ]; then
            # Stand-in labels: one device's traffic (all of it, any peer) as class 1.
            svm_labels="$work/one-device.labels"
            echo "0 4102444800 192.168.1.122 * device-192.168.1.122" > "$svm_labels"
            svm_train="$ref"
        fi
        if "$mamori" net train --model svm --kind device --labels "$svm_labels" --max-rows 5000 --folds 3 \
            --c 1,10,100 --gamma 0.1,1 -o "$work/svm-device.json" "$svm_train" 2>"$out/train-svm-device.log"; then
            svm=1
        else
            log "SVM training failed (see $out/train-svm-device.log): no SVM rows"
        fi
    fi
    for which in ref big; do
        if [ "$which" = ref ]; then file="$ref" n="$ref_packets" sfx=""; else file="$big" n="$big_packets" sfx="-all"; fi
        [ "$which" = big ] && [ "$big" = "$ref" ] && break
        for kind in device flow interval; do
            measure "mamori-features-$kind$sfx" "$n" "mamori net features --kind $kind (CSV rows to /dev/null)" 0 -- \
                "$mamori" net features --kind "$kind" -o /dev/null "$file"
        done
        measure "mamori-score-iforest-device$sfx" "$n" "mamori net score, isolation forest on device rows (JSON lines)" "0 1" -- \
            "$mamori" net score -m "$work/iforest-device.json" "$file"
        # the same, printing only alerts: how much of the above is writing JSON lines
        measure "mamori-score-iforest-device-alerts$sfx" "$n" "the same with --alerts-only (JSON only for alerts)" "0 1" -- \
            "$mamori" net score --alerts-only -m "$work/iforest-device.json" "$file"
        measure "mamori-score-iforest-flow$sfx" "$n" "mamori net score, isolation forest on flow rows (JSON lines)" "0 1" -- \
            "$mamori" net score -m "$work/iforest-flow.json" "$file"
        measure "mamori-score-ae-device$sfx" "$n" "mamori net score, autoencoder (40-32-8-32-40) on device rows (JSON lines)" "0 1" -- \
            "$mamori" net score -m "$work/ae-device.json" "$file"
        if [ "$svm" = 1 ]; then
            measure "mamori-score-svm-device$sfx" "$n" "mamori net score, RBF SVM on device rows (JSON lines)" "0 1" -- \
                "$mamori" net score -m "$work/svm-device.json" "$file"
        fi
    done
fi

if ! skipped tshark; then
    measure tshark "$ref_packets" "tshark -n -T fields, the 12 header fields mamori uses" 0 -- \
        tshark -n -r "$ref" -T fields "${F[@]}"
fi
if ! skipped tshark-min; then
    measure tshark-min "$ref_packets" "same, only frame/eth/arp/ip/ipv6/tcp/udp dissectors, no TCP seq. analysis" 0 -- \
        tshark -n -r "$ref" --disable-protocol ALL --enable-protocol frame,eth,arp,ip,ipv6,tcp,udp \
        -o tcp.analyze_sequence_numbers:FALSE -T fields "${F[@]}"
fi
if ! skipped nfstream && [ "$nfstream_ok" = 1 ]; then
    measure nfstream "$ref_packets" "nfstream $NFSTREAM_VERSION flows, statistical_analysis=True, idle 30 s / active 120 s" 0 -- \
        "$py" bench/net/nfstream_flows.py "$ref"
fi
if ! skipped dpkt-parse; then
    measure dpkt-parse "$ref_packets" "Python + dpkt: decode the same header fields only" 0 -- \
        "$py" bench/net/kitsune_style.py --mode parse "$ref"
fi
if ! skipped kitsune; then
    measure kitsune "$ref_packets" "Python Kitsune-style: 115 damped statistics per packet" 0 -- \
        "$py" bench/net/kitsune_style.py --mode kitsune "$ref"
fi
if ! skipped kitsune-iforest; then
    measure kitsune-iforest "$ref_packets" "same + scikit-learn IsolationForest scores every vector" 0 -- \
        "$py" bench/net/kitsune_style.py --mode kitsune --score iforest "$ref"
fi
rm -f "$out/time.txt"

# --- machine and versions ------------------------------------------------------------------------
{
    machine_lines
    if [ -n "$mamori" ]; then
        echo "mamori: $mamori (sha256 $(sha256sum "$mamori" | cut -c1-12), built $(date -u -r "$mamori" +%H:%MZ))"
    else
        echo "mamori: not run"
    fi
    echo "tshark: $(tshark --version 2>/dev/null | head -n 1 | sed 's/\.$//')"
    echo "python: $("$py" -c 'import platform; print(platform.python_version())')"
    for p in dpkt nfstream numpy scikit-learn; do
        echo "$p: $("$py" -c "import importlib.metadata as m; print(m.version('$p'))" 2>/dev/null || echo 'not installed')"
    done
    echo "capture: $big_packets packets, $big_bytes bytes ($(basename "$big"))"
    echo "reference_capture: $ref_packets packets, $ref_bytes bytes (first packets of the capture)"
    echo "reps: $reps"
    echo "command: bench/net-throughput.sh --packets $packets --reps $reps --ref-packets $ref_packets"
} > "$out/machine.txt"

"$py" bench/net/report.py "$out" | tee "$out/results.md"
mkdir -p "$root/out/bench"
{ echo; echo "## net-throughput $stamp"; echo; cat "$out/results.md"; } >> "$root/out/bench/net-throughput.md"
log "done: $out/results.md (appended to out/bench/net-throughput.md)"
