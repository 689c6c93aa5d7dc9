#!/usr/bin/env bash
# Records real `motion` under strace: normal operation and, optionally, an attack scenario.
# Installs what it needs from Debian (motion, ffmpeg, strace, curl, procps, vim-tiny) when run as
# root, then runs scripts/lab/record_motion.py. Examples:
#   scripts/record-motion.sh --out out/rec/normal-a --duration 900 --seed 1
#   scripts/record-motion.sh --out out/rec/paper --scenario paper --duration 240 --seed 3
#   scripts/record-motion.sh --install-only
# `scripts/lab/record_motion.py --help` lists every option and scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg_cmd in motion:motion ffmpeg:ffmpeg strace:strace curl:curl procps:ps vim-tiny:vim.tiny \
  bash:bash tar:tar; do
  command -v "${pkg_cmd#*:}" >/dev/null 2>&1 || need+=("${pkg_cmd%%:*}")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "record-motion: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
    exit 2
  fi
  echo "record-motion: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi
# Debian starts a system-wide motion service on install; it would hold the camera device and ports.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet motion 2>/dev/null; then
  systemctl stop motion || true
fi
# --install-only: what CI runs before the tests.
[ "${1:-}" = "--install-only" ] && exit 0
exec python3 scripts/lab/record_motion.py "$@"
