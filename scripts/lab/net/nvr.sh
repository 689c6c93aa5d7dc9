#!/usr/bin/env bash
# The lab's NVR / home hub: pulls the camera's MJPEG stream continuously (busybox wget,
# reconnecting 1-3 s after the stream ends), polls the camera's web UI every 10-30 s
# (status.json, now and then snapshot.jpg), and subscribes to every sensor's MQTT topic
# (mosquitto_sub, keepalive 30 s). Bounded by SECONDS and loop counts.
#   nvr.sh CAM_IP BROKER_IP SEED SECONDS LOGDIR
set -uo pipefail
[ $# -eq 5 ] || { echo "usage: nvr.sh CAM_IP BROKER_IP SEED SECONDS LOGDIR" >&2; exit 2; }
cam=$1 broker=$2 seed=$3 secs=$4 logdir=$5
rseed=$(printf '%s-nvr' "$seed" | cksum | cut -d' ' -f1)   # hashed: nearby seeds differ
end=$((SECONDS + secs))

stream() {
    local n=0
    RANDOM=$((rseed + 1 * 7919))   # bash reseeds RANDOM in subshells
    sleep 2
    while [ "$SECONDS" -lt "$end" ] && [ "$n" -lt 500 ]; do
        n=$((n + 1))
        timeout $((end - SECONDS + 1)) busybox wget -q -O /dev/null "http://$cam:8080/video.mjpg" || true
        sleep $((1 + RANDOM % 3))
    done
}
poll() {
    local n=0
    RANDOM=$((rseed + 2 * 7919))   # bash reseeds RANDOM in subshells
    sleep 3
    while [ "$SECONDS" -lt "$end" ] && [ "$n" -lt 1000 ]; do
        n=$((n + 1))
        timeout 10 busybox wget -q -O /dev/null "http://$cam/status.json" || true
        [ $((RANDOM % 4)) -eq 0 ] && { timeout 10 busybox wget -q -O /dev/null "http://$cam/snapshot.jpg" || true; }
        sleep $((10 + RANDOM % 21))
    done
}
subscribe() {
    local n=0
    RANDOM=$((rseed + 3 * 7919))   # bash reseeds RANDOM in subshells
    sleep 1
    while [ "$SECONDS" -lt "$end" ] && [ "$n" -lt 50 ]; do
        n=$((n + 1))
        timeout $((end - SECONDS + 1)) mosquitto_sub -h "$broker" -p 1883 -i nvr-hub -k 30 -q 1 -v \
            -t 'sensors/#' >>"$logdir/mqtt-sub.log" || true
        sleep 2
    done
}
stream &
poll &
subscribe &
wait
