#!/usr/bin/env bash
# Records a fresh motion set into OUT (default out/motion-fresh): new seeds and attacks made with
# other tools than the bundled set (data/motion/), for evaluating the detectors untuned (issue #17):
#   normal-train  10 min of normal operation (seed 21): training and calibration
#   recon2        4 min, from 100 s: `find` set-uid programs, `ss`/`netstat`, /proc/net/tcp, `env`,
#                 /root and /home, `getent passwd` (seed 23)
#   dropper2      4 min, from 100 s: `wget` a payload, `chmod +x` and run it (`nc -z` probes of
#                 loopback ports, `dd if=/dev/urandom | sha256sum` for 2-3 s), delete it (seed 24)
#   persist       4 min, from 100 s: hidden script in /tmp, a crontab entry (`busybox crontab`), a
#                 line in the shell rc file, an `on_event_start` hook in motion.conf (`sed -i`)
#                 (seed 25)
#   revshell2     4 min, from 100 s: reverse shell through a FIFO (`sh -i` | `nc`) to a loopback
#                 C2, `whoami`, `uname -a`, `ls` over it, exit (seed 26)
#   normal-test   10 min of normal operation (seed 22), right after the attacks: unlike
#                 record-motion-set.sh there is no one-hour wait before it
# About 36 min in all. With --quick every recording is shortened (2 min normal, 100 s attacks with
# the attack at 40 s). Each recording's trace.strace.gz, labels.txt and meta.json are copied to
# OUT/<name>.strace.gz, OUT/<name>.labels and OUT/<name>.meta.json, the layout of data/motion/; the
# raw recordings stay in out/motion-fresh-rec/<name>.
set -euo pipefail
cd "$(dirname "$0")/.."
out="out/motion-fresh"
quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    -*) echo "usage: $0 [OUT] [--quick]" >&2; exit 2 ;;
    *) out="$a" ;;
  esac
done
# The new scenarios' programs beyond what scripts/record-motion.sh installs.
need=()
for pkg_cmd in findutils:find iproute2:ss net-tools:netstat wget:wget netcat-openbsd:nc \
  busybox:busybox coreutils:sha256sum; do
  command -v "${pkg_cmd#*:}" >/dev/null 2>&1 || need+=("${pkg_cmd%%:*}")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "record-motion-fresh: missing ${need[*]}; as root: apt-get install ${need[*]}" >&2
    exit 2
  fi
  echo "record-motion-fresh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi
if [ "$quick" = 1 ]; then normal=120 attack=100 at=40; else normal=600 attack=240 at=100; fi
rec() {
  local name="$1"; shift
  raw="out/motion-fresh-rec/$name"
  scripts/record-motion.sh --out "$raw" "$@"
  cp "$raw/trace.strace.gz" "$out/$name.strace.gz"
  cp "$raw/meta.json" "$out/$name.meta.json"
  [ -s "$raw/labels.txt" ] && grep -q '^[0-9]' "$raw/labels.txt" &&
    cp "$raw/labels.txt" "$out/$name.labels"
  return 0
}
mkdir -p "$out"
rec normal-train --duration "$normal" --seed 21
rec recon2 --scenario recon2 --duration "$attack" --attack-at "$at" --seed 23
rec dropper2 --scenario dropper2 --duration "$attack" --attack-at "$at" --seed 24
rec persist --scenario persist --duration "$attack" --attack-at "$at" --seed 25
rec revshell2 --scenario revshell2 --duration "$attack" --attack-at "$at" --seed 26
rec normal-test --duration "$normal" --seed 22
echo "record-motion-fresh: done -> $out"
