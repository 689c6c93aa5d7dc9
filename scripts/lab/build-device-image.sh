#!/usr/bin/env bash
# Builds the WoT device simulator image the integration tests and benchmarks run: FROM scratch
# (no registry is needed) with nothing but a static build of crates/mamori-wot-device. Run it
# with --network host; configure it with -e MAMORI_DEVICE_* (see `mamori-wot-device --help`),
# e.g. -e MAMORI_DEVICE_FAULT=wrong-type to fail after every restart.
#   scripts/lab/build-device-image.sh [IMAGE]      (default mamori-wot-device)
#   scripts/lab/build-device-image.sh --with-shell [IMAGE]  (default mamori-wot-device-shell)
#       the same plus Debian's static busybox as /bin/busybox with its applets linked in /bin
#       (sh, wget, chmod, pidof, kill, …) and a writable /tmp: a device an intruder can get a
#       shell on, for the root-cause tests (run it with `docker run --init` so the device is not
#       PID 1 and can be signalled from inside)
#   scripts/lab/build-device-image.sh --binary-only  (no Docker: prints the static binary's path)
set -euo pipefail
binary_only=0
with_shell=0
case "${1:-}" in
    --binary-only) binary_only=1; shift ;;
    --with-shell) with_shell=1; shift ;;
esac
if [ "$with_shell" = 1 ]; then
    image=${1:-mamori-wot-device-shell}
    busybox=/bin/busybox
    [ -x "$busybox" ] || busybox=$(command -v busybox || true)
    # FROM scratch again: only a static busybox runs there
    if [ -z "$busybox" ] || ! { file -L "$busybox" 2>/dev/null | grep -q "statically linked" \
        || ldd "$busybox" 2>&1 | grep -q "not a dynamic executable"; }; then
        echo "build-device-image: --with-shell needs Debian's busybox-static (apt-get install busybox-static)" >&2
        exit 1
    fi
else
    image=${1:-mamori-wot-device}
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=x86_64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-$root/target}
# With an explicit --target, RUSTFLAGS apply to that target only, so this static build doesn't
# invalidate the host build's cache in the same target directory.
(cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$target_dir" \
    cargo build --quiet --release --locked -p mamori-wot-device --target "$target")
binary=$target_dir/$target/release/mamori-wot-device
# FROM scratch has no loader and no libc: a dynamic binary would fail to start there.
if ! file -L "$binary" | grep -qE "statically linked|static-pie linked" \
    && ! ldd "$binary" 2>&1 | grep -qE "not a dynamic executable|statically linked"; then
    echo "build-device-image: $binary is not statically linked" >&2
    exit 1
fi
if [ "$binary_only" = 1 ]; then
    echo "$binary"
    exit 0
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$binary" "$ctx/mamori-wot-device"
if [ "$with_shell" = 1 ]; then
    cp "$busybox" "$ctx/busybox"
    cat > "$ctx/Dockerfile" <<'DOCKER'
FROM scratch
COPY mamori-wot-device /mamori-wot-device
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]
ENV MAMORI_DEVICE_LISTEN=127.0.0.1:8080
ENTRYPOINT ["/mamori-wot-device"]
DOCKER
else
    cat > "$ctx/Dockerfile" <<'DOCKER'
FROM scratch
COPY mamori-wot-device /mamori-wot-device
ENV MAMORI_DEVICE_LISTEN=127.0.0.1:8080
ENTRYPOINT ["/mamori-wot-device"]
DOCKER
fi
# (the legacy builder's deprecation notice on stderr is noise here)
docker build -q -t "$image" "$ctx" >/dev/null 2>"$ctx/build.log" || { cat "$ctx/build.log" >&2; exit 1; }
echo "$image"
