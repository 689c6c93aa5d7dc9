#!/usr/bin/env bash
# Reruns mamori's speed comparison against the Python reference implementations:
#   - CategoricalHmm (crates/mamori-detect/examples/bench_hmm.rs) vs hmmlearn's CategoricalHMM,
#     implementation='scaling' and the default 'log' (bench/hmm_bench.py), same EM iterations;
#   - the dense autoencoder (examples/bench_ae.rs) vs a PyTorch CPU twin (bench/ae_bench.py), one-hot
#     and BoSC encodings, same architecture / epochs / batch size; PyTorch at its default thread
#     count, at --threads 1, and at its default thread count with OMP_WAIT_POLICY=PASSIVE.
# Each timing is repeated REPEATS times (default 3) and the MEDIAN is reported; a configuration whose
# first run takes longer than SLOW_CAP seconds (default 60) is not repeated (the table says n=1).
#
# usage: bench/run.sh [--quick]
#   --quick   2,000 windows, 3 epochs, 5 EM iterations (a smoke run, ~1-2 minutes)
# environment overrides: WINDOWS (20000) SIZE (19) EPOCHS (10) BATCH (256) N_ITER (10) STATES (3)
#   REPEATS (3) SLOW_CAP (60) CARGO_TARGET_DIR ADFA_TRAINING (../shared/data/adfa-ld/Training_Data_Master)
#
# Writes out/bench/<UTC timestamp>/: machine.json, one *.jsonl of raw results per configuration,
# results.md (the table, also printed); out/bench/latest points at the newest run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

quick=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        -h|--help) sed -n 2,18p "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done
if [ "$quick" = 1 ]; then
    : "${WINDOWS:=2000}" "${EPOCHS:=3}" "${N_ITER:=5}"
fi
: "${WINDOWS:=20000}" "${SIZE:=19}" "${EPOCHS:=10}" "${BATCH:=256}" "${N_ITER:=10}" "${STATES:=3}"
: "${REPEATS:=3}" "${SLOW_CAP:=60}"
: "${ADFA_TRAINING:=$root/../shared/data/adfa-ld/Training_Data_Master}"

log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$root/out/bench/$stamp"
mkdir -p "$out"
ln -sfn "$stamp" "$root/out/bench/latest"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
log "results -> $out (load average at start: $load_start)"

log "reference venv (scripts/setup-reference-venv.sh --bench; first time downloads torch + its CUDA wheels, several GB)"
scripts/setup-reference-venv.sh --bench
py="$root/.venv-ref/bin/python"

log "building bench_hmm and bench_ae (release)"
cargo build --quiet --release -p mamori-detect --example bench_hmm --example bench_ae
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples"
[ -x "$bin/bench_hmm" ] && [ -x "$bin/bench_ae" ] || { echo "built examples not found in $bin" >&2; exit 1; }

if [ ! -d "$ADFA_TRAINING" ]; then
    echo "ADFA-LD training traces not found at $ADFA_TRAINING (set ADFA_TRAINING)" >&2
    exit 1
fi
windows="$out/windows-$WINDOWS-$SIZE.txt"
log "windows: $("$py" bench/make_windows.py "$ADFA_TRAINING" "$windows" --size "$SIZE" --max-windows "$WINDOWS")"

# Machine and versions.
"$py" - "$out/machine.json" "$load_start" <<PY
import json, os, platform, subprocess, sys
import importlib.metadata as md
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
def ver(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd="$root").stdout.strip()
    except OSError:
        return None
json.dump({
    "nproc": os.cpu_count(),
    "cpu_model": cpu,
    "kernel": platform.release(),
    "rustc": sh("rustc", "--version"),
    "python": platform.python_version(),
    "numpy": ver("numpy"), "hmmlearn": ver("hmmlearn"), "torch": ver("torch"),
    "git_head": sh("git", "rev-parse", "--short", "HEAD"),
    # The examples are built from crates/mamori-detect as it is in the work tree.
    "crates_dirty": bool(sh("git", "status", "--porcelain", "--", "crates/mamori-detect")),
    "load_average_start": sys.argv[2],
    "windows": $WINDOWS, "size": $SIZE, "epochs": $EPOCHS, "batch_size": $BATCH,
    "n_iter": $N_ITER, "states": $STATES, "repeats": $REPEATS, "quick": bool($quick),
}, open(sys.argv[1], "w"), indent=1)
PY

# run NAME CMD...: runs CMD up to REPEATS times, appending its one-line JSON to NAME.jsonl.
run() {
    local name="$1"; shift
    local i t0 t1
    for ((i = 1; i <= REPEATS; i++)); do
        t0=$(date +%s.%N)
        "$@" >> "$out/$name.jsonl"
        t1=$(date +%s.%N)
        log "$name run $i: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')s wall"
        if awk -v a="$t0" -v b="$t1" -v c="$SLOW_CAP" 'BEGIN{exit !(b-a > c)}'; then
            log "$name: over ${SLOW_CAP}s, not repeated"
            break
        fi
    done
}

log "HMM: $STATES states, $N_ITER EM iterations"
run hmm-mamori "$bin/bench_hmm" "$windows" --n-iter "$N_ITER" --states "$STATES"
for impl in scaling log; do
    run "hmm-hmmlearn-$impl" "$py" bench/hmm_bench.py "$windows" --n-iter "$N_ITER" --states "$STATES" --implementation "$impl"
done

log "AE: $EPOCHS epochs, batch $BATCH"
for enc in onehot bosc; do
    args=("$windows" --encoding "$enc" --epochs "$EPOCHS" --batch-size "$BATCH")
    run "ae-$enc-mamori" "$bin/bench_ae" "${args[@]}"
    run "ae-$enc-torch-default" "$py" bench/ae_bench.py "${args[@]}"
    run "ae-$enc-torch-1thread" "$py" bench/ae_bench.py "${args[@]}" --threads 1
    run "ae-$enc-torch-default-passive" env OMP_WAIT_POLICY=PASSIVE "$py" bench/ae_bench.py "${args[@]}"
done

load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
"$py" - "$out" "$load_end" <<'PY' | tee "$out/results.md"
import json, pathlib, statistics, sys

out = pathlib.Path(sys.argv[1])
m = json.loads((out / "machine.json").read_text())
m["load_average_end"] = sys.argv[2]
(out / "machine.json").write_text(json.dumps(m, indent=1))


def load(name):
    return [json.loads(l) for l in (out / f"{name}.jsonl").read_text().splitlines() if l.strip()]


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt_t(s):
    return "—" if s is None else (f"{s:.3g} s" if s >= 0.01 else f"{s * 1e3:.3g} ms")


def ratio(ref, ours):
    return "—" if ref is None or ours is None or ours == 0 else f"**{ref / ours:.1f}×**"


rows = []


def row(task, ours, ours_key, ref, ref_key, ref_label, quality):
    rows.append(
        f"| {task} | {ref_label} | {fmt_t(med(ours, ours_key))} | {fmt_t(med(ref, ref_key))} (n={len(ref)}) "
        f"| {ratio(med(ref, ref_key), med(ours, ours_key))} | {quality} |"
    )


print(f"Machine: {m['nproc']} × {m['cpu_model']}, {m['rustc']}, Python {m['python']}, numpy {m['numpy']}, "
      f"hmmlearn {m['hmmlearn']}, torch {m['torch']}; mamori {m['git_head']}"
      f"{' (crates/mamori-detect had uncommitted edits)' if m['crates_dirty'] else ''}.")
print(f"Load average (1/5/15 min) at start {m['load_average_start']}, at end {m['load_average_end']}.")
print(f"Data: {m['windows']} ADFA-LD training windows of {m['size']}; median of up to {m['repeats']} runs "
      f"(n = runs of the reference; mamori ran {m['repeats']}×). Ratio = reference time / mamori time.\n")

hm = load("hmm-mamori")
print(f"HMM: {m['states']} states, {m['n_iter']} EM iterations, no early stop. "
      f"Final log-likelihood of the training windows: mamori {hm[0]['final_loglik']:.1f}"
      + "".join(f", hmmlearn-{i} {load('hmm-hmmlearn-' + i)[0]['final_loglik']:.1f}" for i in ("scaling", "log"))
      + " (each from its own random initialisation).\n")
rows.append("| task | reference | mamori | reference | speed-up | final loss / log-lik (mamori vs reference) |")
rows.append("|---|---|---|---|---|---|")
for impl in ("scaling", "log"):
    ref = load(f"hmm-hmmlearn-{impl}")
    q = f"{hm[0]['final_loglik']:.0f} vs {ref[0]['final_loglik']:.0f}"
    row(f"HMM fit ({m['n_iter']} EM iters)", hm, "fit_seconds", ref, "fit_seconds", f"hmmlearn {impl}", q)
for impl in ("scaling", "log"):
    ref = load(f"hmm-hmmlearn-{impl}")
    row("HMM score, per window", hm, "score_seconds", ref, "score_seconds", f"hmmlearn {impl}, `score` per window", "")
for impl in ("scaling", "log"):
    ref = load(f"hmm-hmmlearn-{impl}")
    row("HMM score, one call", hm, "score_seconds", ref, "score_one_call_seconds",
        f"hmmlearn {impl}, one `score(X, lengths)` (total only)", "")
ref = load("hmm-hmmlearn-scaling")
row("HMM score, batched", hm, "score_seconds", ref, "score_batched_numpy_seconds",
    "numpy forward over all windows at once", f"max per-window diff to hmmlearn {ref[0]['score_batched_max_abs_diff']:.1e}")

for enc in ("onehot", "bosc"):
    ours = load(f"ae-{enc}-mamori")
    for cfg, label in (("default", "PyTorch, default threads"), ("1thread", "PyTorch, 1 thread"),
                       ("default-passive", "PyTorch, default threads, OMP_WAIT_POLICY=PASSIVE")):
        ref = load(f"ae-{enc}-torch-{cfg}")
        label = f"{label} ({ref[0]['threads']})" if cfg != "1thread" else label
        q = f"{med(ours, 'final_loss'):.4g} vs {med(ref, 'final_loss'):.4g}"
        row(f"AE train {enc} ({m['epochs']} epochs)", ours, "train_seconds", ref, "train_seconds", label, q)
    for cfg, label in (("default", "PyTorch, default threads"), ("1thread", "PyTorch, 1 thread")):
        ref = load(f"ae-{enc}-torch-{cfg}")
        row(f"AE score {enc}", ours, "score_seconds", ref, "score_seconds", label, "")
print("\n".join(rows))

cpu = [f"{n}: {med(load(n), 'train_cpu_seconds'):.2f} s CPU / {med(load(n), 'train_seconds'):.2f} s wall"
       for n in ("ae-onehot-mamori", "ae-onehot-torch-default", "ae-onehot-torch-1thread", "ae-onehot-torch-default-passive")]
print("\nAE one-hot training CPU time (all threads) vs wall time: " + "; ".join(cpu) + ".")
PY
log "done: $out/results.md"
