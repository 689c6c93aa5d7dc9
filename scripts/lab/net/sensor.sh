#!/usr/bin/env bash
# An MQTT sensor of the network lab (run inside its namespace by scripts/lab/net-lab.sh):
# keeps one MQTT connection to the broker (mosquitto_pub -l, keepalive 30 s) and publishes a
# JSON reading every 1-5 s with jitter; looks up the broker's name with busybox nslookup now
# and then, and asks the NTP server for the time every 30-60 s (ntpdig, query only: the clock
# is never set). Reconnects after a lost connection. Bounded by SECONDS and by message count.
#   sensor.sh NAME BROKER_IP DNS_IP NTP_IP SEED SECONDS
set -uo pipefail
[ $# -eq 6 ] || { echo "usage: sensor.sh NAME BROKER_IP DNS_IP NTP_IP SEED SECONDS" >&2; exit 2; }
name=$1 broker=$2 dns=$3 ntp=$4 seed=$5 secs=$6
rseed=$(printf '%s-%s' "$seed" "$name" | cksum | cut -d' ' -f1)   # hashed: nearby seeds differ
RANDOM=$rseed
end=$((SECONDS + secs))
max_msgs=$((secs + 10))   # at least 1 s between messages
base_ms=$((1000 + RANDOM % 2500))   # this device's own period, 1-3.5 s, plus jitter below

msleep() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

readings() {
    RANDOM=$((rseed + tries * 7919))   # bash reseeds RANDOM in subshells; keep it seeded
    local seq=0 temp=$((2000 + RANDOM % 400)) rh=$((400 + RANDOM % 200)) batt=$((2900 + RANDOM % 300))
    local next_dns=$((SECONDS + 5 + RANDOM % 20)) next_ntp=$((SECONDS + 2 + RANDOM % 10))
    while [ "$SECONDS" -lt "$end" ] && [ "$seq" -lt "$max_msgs" ]; do
        seq=$((seq + 1))
        temp=$((temp + RANDOM % 21 - 10)); rh=$((rh + RANDOM % 11 - 5))
        [ $((RANDOM % 50)) -eq 0 ] && batt=$((batt - 1))
        printf '{"dev":"%s","seq":%d,"ts":%s,"temp_c":%d.%02d,"rh":%d.%d,"batt_mv":%d}\n' \
            "$name" "$seq" "$(date +%s)" $((temp / 100)) $((temp % 100)) $((rh / 10)) $((rh % 10)) "$batt" || return 0
        if [ "$SECONDS" -ge "$next_dns" ]; then
            busybox nslookup broker.lan "$dns" >/dev/null 2>&1 || true
            next_dns=$((SECONDS + 20 + RANDOM % 60))
        fi
        if [ "$SECONDS" -ge "$next_ntp" ]; then
            timeout 10 ntpdig -t 2 "$ntp" >/dev/null 2>&1 || true
            next_ntp=$((SECONDS + 30 + RANDOM % 31))
        fi
        msleep $((base_ms + RANDOM % 1500 - 500))
    done
}

tries=0
while [ "$SECONDS" -lt "$end" ] && [ "$tries" -lt 50 ]; do
    tries=$((tries + 1))
    readings | timeout $((end - SECONDS + 5)) mosquitto_pub -h "$broker" -p 1883 -i "$name" -k 30 -q 1 \
        -t "sensors/$name/telemetry" -l
    echo "sensor.sh: $name: mosquitto_pub ended (rc $?), reconnecting" >&2
    sleep $((1 + RANDOM % 3))
done
