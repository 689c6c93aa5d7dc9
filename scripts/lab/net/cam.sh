#!/usr/bin/env bash
# The lab's IP camera: a small web UI on port 80 (busybox httpd: index.html, status.json,
# snapshot.jpg) and an MJPEG stream on port 8080 (ffmpeg, lavfi testsrc, -f mpjpeg -listen 1).
# ffmpeg's listener serves one client and exits, and each session is cut after 60-120 s, so
# it is restarted in a loop. Bounded by SECONDS and a restart count.
#   cam.sh CAM_IP SEED SECONDS WEBROOT [SIZE] [FPS]
set -uo pipefail
[ $# -ge 4 ] || { echo "usage: cam.sh CAM_IP SEED SECONDS WEBROOT [SIZE] [FPS]" >&2; exit 2; }
ip=$1 seed=$2 secs=$3 root=$4 size=${5:-320x240} fps=${6:-2}
RANDOM=$(printf '%s-cam' "$seed" | cksum | cut -d' ' -f1)   # hashed: nearby seeds differ
end=$((SECONDS + secs))
mkdir -p "$root"
printf '<html><head><title>IPCAM</title></head><body><img src="/snapshot.jpg"></body></html>\n' >"$root/index.html"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc=size=$size:rate=1" -frames:v 1 -q:v 8 \
    "$root/snapshot.jpg" </dev/null || echo "cam.sh: snapshot failed" >&2
printf '{"model":"IPC-lab","fw":"1.0.%d","uptime":0}\n' $((seed % 10)) >"$root/status.json"
timeout $((secs + 5)) busybox httpd -f -p "$ip:80" -h "$root" &
n=0
while [ "$SECONDS" -lt "$end" ] && [ "$n" -lt 500 ]; do
    n=$((n + 1))
    printf '{"model":"IPC-lab","fw":"1.0.%d","uptime":%d,"sessions":%d}\n' $((seed % 10)) "$SECONDS" "$n" >"$root/status.json"
    left=$((end - SECONDS))
    t=$((60 + RANDOM % 61))
    [ "$t" -lt "$left" ] || t=$left
    [ "$t" -gt 0 ] || break
    # -t ends the session (the client sees EOF and reconnects); timeout bounds the wait for a client
    timeout $((left + 5)) ffmpeg -hide_banner -loglevel error -re -f lavfi -i "testsrc=size=$size:rate=$fps" \
        -t "$t" -c:v mjpeg -q:v 10 -f mpjpeg -listen 1 "http://$ip:8080/video.mjpg" </dev/null ||
        sleep 1
done
wait
