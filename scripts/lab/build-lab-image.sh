#!/usr/bin/env bash
# Builds the container image the live tests and benchmarks watch: FROM scratch (no registry is
# needed) with Debian's static busybox, a small web root, an /etc/shadow worth stealing, and
# /bin/workload, a camera-like steady loop: a local HTTP server polled for frames, a log line per
# frame, a sensor read.
#   scripts/lab/build-lab-image.sh [IMAGE]      (default mamori-lab-bb)
set -euo pipefail
image=${1:-mamori-lab-bb}
busybox=$(command -v busybox || true)
[ -x /bin/busybox ] && busybox=/bin/busybox
if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
    if ! ldd "$busybox" 2>&1 | grep -q "not a dynamic executable"; then
        echo "build-lab-image: needs Debian's busybox-static (apt-get install busybox-static)" >&2
        exit 1
    fi
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/www" "$ctx/etc"
cp "$busybox" "$ctx/busybox"
echo '<html><body>camera 1</body></html>' > "$ctx/www/index.html"
printf '#!/bin/sh\necho installing >/tmp/.fw.log\nuname -a >>/tmp/.fw.log\n' > "$ctx/www/fw.sh"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$ctx/etc/passwd"
printf 'root:$6$mamori$notarealhash:19000:0:99999:7:::\n' > "$ctx/etc/shadow"
cat > "$ctx/workload" <<'SH'
#!/bin/sh
# A camera-like steady workload: serve frames over HTTP, fetch one, log it, read a sensor.
mkdir -p /var/log
httpd -p 127.0.0.1:8080 -h /www
i=0
while true; do
    wget -q -O /dev/null http://127.0.0.1:8080/index.html
    echo "frame $i" >> /var/log/cam.log
    cat /proc/loadavg > /dev/null
    i=$((i + 1))
    sleep 0.2
done
SH
cat > "$ctx/Dockerfile" <<'DOCKER'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
COPY etc /etc
COPY workload /bin/workload
RUN ["/bin/busybox", "chmod", "0755", "/bin/workload", "/www/fw.sh"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/var/log"]
CMD ["/bin/workload"]
DOCKER
docker build -q -t "$image" "$ctx" >/dev/null
echo "$image"
