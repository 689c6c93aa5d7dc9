#!/usr/bin/env bash
# Background chatter of a lab device other than a sensor: a DNS lookup every 20-80 s
# (busybox nslookup NAME DNS_IP) and an NTP query every 30-90 s (ntpdig, query only).
# Bounded by SECONDS.
#   chatter.sh NAME DNS_IP NTP_IP SEED SECONDS LOOKUP_NAME...
set -uo pipefail
[ $# -ge 6 ] || { echo "usage: chatter.sh NAME DNS_IP NTP_IP SEED SECONDS LOOKUP_NAME..." >&2; exit 2; }
name=$1 dns=$2 ntp=$3 seed=$4 secs=$5
shift 5
lookups=("$@")
RANDOM=$(printf '%s-%s' "$seed" "$name" | cksum | cut -d' ' -f1)   # hashed: nearby seeds differ
end=$((SECONDS + secs))
next_dns=$((SECONDS + 3 + RANDOM % 20)) next_ntp=$((SECONDS + 1 + RANDOM % 15))
while [ "$SECONDS" -lt "$end" ]; do
    if [ "$SECONDS" -ge "$next_dns" ]; then
        busybox nslookup "${lookups[RANDOM % ${#lookups[@]}]}" "$dns" >/dev/null 2>&1 || true
        next_dns=$((SECONDS + 20 + RANDOM % 61))
    fi
    if [ "$SECONDS" -ge "$next_ntp" ]; then
        timeout 10 ntpdig -t 2 "$ntp" >/dev/null 2>&1 || true
        next_ntp=$((SECONDS + 30 + RANDOM % 61))
    fi
    sleep 1
done
