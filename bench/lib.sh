# Shared by the benchmark scripts (sourced, not run): results and work directories, tool checks,
# and the machine description every results file starts with. The sourcing script defines
# log() and die() first.

# Sets stamp, out (out/bench/PREFIX-STAMP, created), load_start and work ($1 if given, else a
# temporary directory removed at exit).
bench_dirs() {
    local prefix=$1 workdir=${2:-}
    stamp="$(date -u +%Y%m%dT%H%M%SZ)"
    out="$root/out/bench/$prefix-$stamp"
    mkdir -p "$out"
    load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
    log "results -> $out (load average at start: $load_start)"
    if [ -n "$workdir" ]; then
        mkdir -p "$workdir"
        work="$(cd "$workdir" && pwd)"
    else
        work="$(mktemp -d "${TMPDIR:-/tmp}/mamori-$prefix-bench.XXXXXX")"
        trap 'rm -rf "$work"' EXIT
    fi
}

# Fails unless command $1 exists, naming the Debian package $2 that brings it.
need_tool() { command -v "$1" >/dev/null || die "'$1' not found: apt-get install $2"; }

# The machine and the tree, one `key: value` line each; sets load_end.
machine_lines() {
    load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "date_utc: $stamp"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "kernel: $(uname -r)"
    echo "memory: $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "load_start: $load_start"
    echo "load_end: $load_end"
    echo "git_head: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git status --porcelain -- crates 2>/dev/null | grep -q . && echo ' (crates/ has uncommitted edits)')"
    echo "rustc: $(rustc --version 2>/dev/null || echo '?')"
}
