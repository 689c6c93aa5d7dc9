#!/usr/bin/env bash
# Installs and starts what the live-capture tests and benchmarks need, as root on Debian:
#   - clang, libbpf headers, libelf and zlib: building the eBPF probe (crates/mamori-capture)
#   - libpcap headers: building live packet capture (crates/mamori-net)
#   - strace: the ptrace fallback and the probe-vs-strace comparison
#   - busybox-static: the FROM-scratch lab image (scripts/lab/build-lab-image.sh)
#   - docker.io: dockerd, started with --iptables=false --bridge=none (containers use --network none)
# Idempotent; quiet unless something fails. Prints nothing when all is already there.
#   scripts/lab/setup-live-lab.sh [--no-docker]
set -euo pipefail
docker=1
[ "${1:-}" = "--no-docker" ] && docker=0

need=()
for pair in clang:clang llvm-strip:llvm strace:strace pkg-config:pkg-config; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -f /usr/include/libelf.h ] || need+=(libelf-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
[ -f /usr/include/pcap/pcap.h ] || need+=(libpcap-dev)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q "statically linked" || need+=(busybox-static file)
if [ "$docker" = 1 ] && ! command -v dockerd >/dev/null; then need+=(docker.io); fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup-live-lab: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

[ "$docker" = 1 ] || exit 0
if ! docker info >/dev/null 2>&1; then
    log=${TMPDIR:-/tmp}/mamori-dockerd.log
    # no registry and no bridge here: containers run with --network none
    nohup dockerd --iptables=false --bridge=none >"$log" 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { echo "setup-live-lab: dockerd did not start; see $log" >&2; tail -20 "$log" >&2; exit 1; }
fi
