#!/usr/bin/env bash
# Creates the reference Python environment (.venv-ref in the repo root) used by the hmmlearn
# parity test (crates/mamori-detect/tests/hmm_parity.rs) and the benchmarks in bench/.
#
# usage: scripts/setup-reference-venv.sh [--bench]
#   --bench   also install torch (CPU use only) for the autoencoder benchmark.
#
# Idempotent: re-running only installs what is missing. Quiet unless something fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-ref"
bench=0
for arg in "$@"; do
    case "$arg" in
        --bench) bench=1 ;;
        -h|--help) sed -n 2,8p "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
py="$venv/bin/python"

# Pinned to versions known to install on the project's machines.
pkgs=(numpy==2.3.5 scikit-learn==1.9.1 hmmlearn==0.3.3)
if [ "$bench" = 1 ]; then
    pkgs+=(torch==2.15.0)
fi

# Skip pip entirely when everything is already importable at the pinned versions.
if "$py" - "$bench" <<'PY' 2>/dev/null; then
import sys
import importlib.metadata as md
want = {"numpy": "2.3.5", "scikit-learn": "1.9.1", "hmmlearn": "0.3.3"}
for name, version in want.items():
    if md.version(name) != version:
        sys.exit(1)
if sys.argv[1] == "1":
    md.version("torch")
PY
    exit 0
fi

"$py" -m pip install --quiet --disable-pip-version-check "${pkgs[@]}"
"$py" -c "import hmmlearn, sklearn, numpy" >/dev/null
