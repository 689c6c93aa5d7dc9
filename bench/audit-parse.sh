#!/usr/bin/env bash
# Audit log parsing throughput: mamori-audit (crates/mamori-audit, its audit_count example: parse,
# group into events, decode SYSCALL/EXECVE/PATH/CWD/SOCKADDR/PROCTITLE) against reference tools,
# on the same log, in one run:
#   - ausearch -i -if LOG > /dev/null     (auparse grouping + interpretation, the usual way to read)
#   - ausearch --raw -if LOG > /dev/null  (grouping, records printed as they are)
#   - laurel (crates.io, GPL-3.0) reading the log on stdin and writing its JSON lines to a temp
#     dir, when a laurel binary is given or found (cargo install laurel --version 0.8.2 --locked;
#     it links libacl: apt-get install libacl1-dev first). Not built by this script.
# The log: a real auditd log (default: the ENRICHED sample in $MAMORI_AUDIT_SAMPLES, recorded by
# scripts/lab/audit/record-samples.sh) repeated with serials and times rewritten (bench/audit/make-log.py) up to
# --records records, or --log FILE as is. Every command runs --reps times under /usr/bin/time; the
# table gives medians of wall time, CPU time (user + sys) and peak RSS, and records/s by wall time
# and by CPU time (all contenders are single-threaded, so records/CPU-s is per core and less
# sensitive to other load on the machine).
#
# usage: bench/audit-parse.sh [--records N] [--reps R] [--log FILE] [--sample FILE]
#          [--mamori PATH] [--laurel PATH] [--skip ID,ID...] [--workdir DIR]
#   --records N    size of the built log (default 1000000)
#   --reps R       runs per command, median reported (default 3)
#   --log FILE     time this log instead of building one (plain text; all tools read it)
#   --sample FILE  the real log to repeat (default: enriched.log in the samples dir)
#   --mamori PATH  use this audit_count binary (default: cargo build --release -p mamori-audit
#                  --example audit_count, which follows CARGO_TARGET_DIR)
#   --laurel PATH  the laurel binary (default: `laurel` on PATH, if any)
#   --skip IDS     leave out contenders by id: ausearch-i, ausearch-raw, laurel
#   --workdir DIR  keep the built log in DIR (default: a temp dir, removed at exit)
# Writes out/bench/audit-<UTC stamp>/ (raw.tsv, logs, machine.txt, results.md) and appends the
# results to out/bench/audit-parse.md. Defaults take ~1-2 minutes on the 2-core bench machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

records=1000000
reps=3
log_file=""
samples_dir="${MAMORI_AUDIT_SAMPLES:-}"
sample=""
mamori=""
laurel=""
skip=","
workdir=""
need_arg() { [ $# -ge 2 ] || { echo "audit-parse: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --records) need_arg "$@"; records=$2; shift 2 ;;
        --reps) need_arg "$@"; reps=$2; shift 2 ;;
        --log) need_arg "$@"; log_file=$2; shift 2 ;;
        --sample) need_arg "$@"; sample=$2; shift 2 ;;
        --mamori) need_arg "$@"; mamori=$2; shift 2 ;;
        --laurel) need_arg "$@"; laurel=$2; shift 2 ;;
        --skip) need_arg "$@"; skip=",$2,"; shift 2 ;;
        --workdir) need_arg "$@"; workdir=$2; shift 2 ;;
        -h|--help) sed -n 2,29p "$0"; exit 0 ;;
        *) echo "audit-parse: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in records reps; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "audit-parse: --$v must be a whole number, got '${!v}'" >&2; exit 2; }
done
if [ "$reps" -lt 1 ] || [ "$records" -lt 1 ]; then echo "audit-parse: --reps and --records must be >= 1" >&2; exit 2; fi
skipped() { [[ "$skip" == *",$1,"* ]]; }

log() { echo "[audit-bench $(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "audit-parse: $*" >&2; exit 1; }

. "$root/bench/lib.sh"
[ -x /usr/bin/time ] || die "/usr/bin/time not found: apt-get install time"
need_tool ausearch auditd
need_tool python3 python3

bench_dirs audit "$workdir"

# --- mamori --------------------------------------------------------------------------------------
if [ -z "$mamori" ]; then
    log "building audit_count (cargo build --release -p mamori-audit --example audit_count; CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<default>})"
    cargo build --quiet --release -p mamori-audit --example audit_count || die "cargo build failed (give --mamori PATH)"
    mamori="${CARGO_TARGET_DIR:-$root/target}/release/examples/audit_count"
fi
[ -x "$mamori" ] || die "audit_count binary not found at $mamori"

# --- laurel --------------------------------------------------------------------------------------
if [ -z "$laurel" ]; then laurel="$(command -v laurel || true)"; fi
laurel_note=""
if skipped laurel; then
    laurel=""
    laurel_note="skipped (--skip laurel)"
elif [ -z "$laurel" ]; then
    laurel_note="not installed (give --laurel PATH; cargo install laurel --version 0.8.2)"
elif ! "$laurel" --version >/dev/null 2>&1; then
    laurel_note="$laurel does not run"
    laurel=""
fi

# --- the log -------------------------------------------------------------------------------------
if [ -n "$log_file" ]; then
    [ -f "$log_file" ] || die "--log $log_file: no such file"
    big="$log_file"
    log_what="given: $(basename "$big")"
else
    [ -n "$sample" ] || sample="$samples_dir/enriched.log"
    [ -f "$sample" ] || die "no sample log at $sample (give --sample FILE or --log FILE, or set MAMORI_AUDIT_SAMPLES to a directory from scripts/lab/audit/record-samples.sh)"
    big="$work/audit-$records.log"
    if [ ! -s "$big" ]; then
        log "building a $records-record log from $sample in $work"
        python3 bench/audit/make-log.py "$big" "$records" "$sample" >/dev/null
    fi
    log_what="$(basename "$sample") repeated, serials and times rewritten"
fi
big_records=$(wc -l < "$big")
big_bytes=$(stat -c %s "$big")
# Which record types make the log, for the table's caption.
mix=$(awk '{ t[$1]++ } END { for (k in t) printf "%s %.0f%%\n", substr(k, 6), 100 * t[k] / NR }' "$big" \
    | sort -k2 -nr -t' ' | head -n 6 | paste -sd, - | sed 's/,/, /g')
log "log: $big_records records, $big_bytes bytes ($mix)"
# Page the log in once so the first timed run does not pay for the disk.
cat "$big" > /dev/null

# --- timing --------------------------------------------------------------------------------------
# measure ID WHAT -- CMD...: runs CMD reps times (stdin from the log when ID is laurel); appends a
# line per run to raw.tsv: id, run, wall s, user s, sys s, peak RSS KiB, what. Stdout goes to
# /dev/null (or, for mamori, to ID.out: its totals line), stderr to ID.log.
printf 'id\trun\twall_s\tuser_s\tsys_s\tmaxrss_kib\twhat\n' > "$out/raw.tsv"
measure() {
    local id="$1" what="$2"
    shift 3
    local i t0 t1 rc wall user sys rss sink=/dev/null src=/dev/null
    [ "$id" = mamori ] && sink="$out/$id.out"
    [ "$id" = laurel ] && src="$big"
    for ((i = 1; i <= reps; i++)); do
        t0=$(date +%s.%N)
        rc=0
        /usr/bin/time -f '%U %S %M' -o "$out/time.txt" "$@" <"$src" >"$sink" 2>>"$out/$id.log" || rc=$?
        t1=$(date +%s.%N)
        if [ "$rc" != 0 ]; then
            log "$id run $i failed (exit $rc); last lines of $out/$id.log:"
            tail -n 5 "$out/$id.log" >&2
            return 1
        fi
        wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        read -r user sys rss < <(tail -n 1 "$out/time.txt")
        printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\n' "$id" "$i" "$wall" "$user" "$sys" "$rss" "$what" >> "$out/raw.tsv"
        log "$id run $i: ${wall}s wall, $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')s CPU, ${rss} KiB"
    done
}

measure mamori "mamori-audit audit_count: parse, group, decode (1 thread)" -- "$mamori" --quiet "$big"
if ! skipped ausearch-raw; then
    measure ausearch-raw "ausearch --raw -if LOG > /dev/null" -- ausearch --raw -if "$big"
fi
if ! skipped ausearch-i; then
    measure ausearch-i "ausearch -i -if LOG > /dev/null" -- ausearch -i -if "$big"
fi
if [ -n "$laurel" ]; then
    # laurel: stdin input, its JSON log in a temp dir, /proc enrichment off (the log's processes
    # are gone), as a plain transform of the log.
    ldir="$work/laurel"
    mkdir -p "$ldir"
    cat > "$work/laurel.toml" <<EOF
directory = "$ldir"
input = "stdin"
statusreport-period = 0
[auditlog]
file = "audit.log"
size = 100000000000
generations = 1
[transform]
execve-argv = [ "array" ]
[translate]
universal = false
user-db = false
[enrich]
pid = false
execve-env = []
container = false
systemd = false
script = false
user-groups = false
EOF
    chmod 0644 "$work/laurel.toml"
    if ! measure laurel "laurel < LOG (JSON lines to a temp dir)" -- "$laurel" -c "$work/laurel.toml"; then
        laurel_note="failed (see $out/laurel.log)"
    fi
    rm -rf "$ldir"
fi
rm -f "$out/time.txt"

# The records mamori counted (the table divides by the log's line count; they must agree).
mamori_records=$(awk '/^records/ { print $2; exit }' "$out/mamori.out")
[ "$mamori_records" = "$big_records" ] || log "warning: mamori counted $mamori_records records, the log has $big_records lines"

# --- machine and versions ------------------------------------------------------------------------
{
    machine_lines
    echo "mamori: $mamori (sha256 $(sha256sum "$mamori" | cut -c1-12))"
    echo "ausearch: $(ausearch --version 2>/dev/null | head -n 1)"
    if [ -n "$laurel" ]; then echo "laurel: $("$laurel" --version 2>/dev/null | head -n 1)"; else echo "laurel: $laurel_note"; fi
    echo "log: $big_records records, $big_bytes bytes ($log_what)"
    echo "mix: $mix"
    echo "reps: $reps"
    echo "command: bench/audit-parse.sh --records $records --reps $reps${log_file:+ --log $log_file}"
} > "$out/machine.txt"

python3 - "$out" "$big_records" "$laurel_note" <<'PY' | tee "$out/results.md"
import csv, statistics, sys
out, n, laurel_note = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
what = {}
for r in csv.DictReader(open(f"{out}/raw.tsv"), delimiter="\t"):
    rows.setdefault(r["id"], []).append(r)
    what[r["id"]] = r["what"]
med = lambda rs, f: statistics.median(f(r) for r in rs)
base = None
print(open(f"{out}/machine.txt").read().replace("\n", "  \n"))
print("| contender | wall s | CPU s | records/s (wall) | records/CPU-s | peak RSS MiB | runs | mamori is (wall) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for id_, rs in rows.items():
    wall = med(rs, lambda r: float(r["wall_s"]))
    cpu = med(rs, lambda r: float(r["user_s"]) + float(r["sys_s"]))
    rss = med(rs, lambda r: int(r["maxrss_kib"])) / 1024
    if base is None:
        base = wall
    speed = "—" if id_ == "mamori" else f"{wall / base:.1f}× faster"
    print(f"| {what[id_]} | {wall:.3f} | {cpu:.3f} | {n / wall:,.0f} | {n / max(cpu, 1e-3):,.0f} | {rss:.1f} | {len(rs)} | {speed} |")
if laurel_note:
    print(f"\nlaurel: {laurel_note}")
PY
mkdir -p "$root/out/bench"
{ echo; echo "## audit-parse $stamp"; echo; cat "$out/results.md"; } >> "$root/out/bench/audit-parse.md"
log "done: $out/results.md (appended to out/bench/audit-parse.md)"
