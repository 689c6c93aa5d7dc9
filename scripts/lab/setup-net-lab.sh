#!/usr/bin/env bash
# Installs what the network lab (scripts/lab/net-lab.sh) needs, as root on Debian:
#   - iproute2, ethtool: network namespaces, veth pairs, a bridge; offloads off on the veths
#   - mosquitto, mosquitto-clients: the MQTT broker and the sensors' publish/subscribe clients
#   - dnsmasq-base: the gateway's DNS server (Debian's busybox has no dnsd applet; no service)
#   - ntpsec-ntpdig: the devices' NTP client (query only; the gateway answers with a tiny SNTP server)
#   - ffmpeg: the camera's MJPEG stream; busybox-static: telnetd, httpd, wget, nslookup
#   - hping3, nmap: the attacks; tcpdump: the capture; python3: the telnet client, the summary
#   - tshark (with editcap): reference decoders for the pcap/pcapng tests and the benchmark
# The lab runs its own broker inside a namespace; a system-wide mosquitto that Debian may start on
# install listens in the host namespace only and does not disturb it. Idempotent; quiet unless
# something fails.
# Prints nothing when all is already there.
#   scripts/lab/setup-net-lab.sh
set -euo pipefail

need=()
for pair in ip:iproute2 ss:iproute2 ethtool:ethtool mosquitto:mosquitto mosquitto_pub:mosquitto-clients \
    mosquitto_sub:mosquitto-clients dnsmasq:dnsmasq-base ntpdig:ntpsec-ntpdig ffmpeg:ffmpeg \
    hping3:hping3 nmap:nmap tcpdump:tcpdump tshark:tshark editcap:tshark python3:python3 timeout:coreutils; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q "statically linked" || need+=(busybox-static file)
if [ ${#need[@]} -gt 0 ]; then
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
    if [ "$(id -u)" != 0 ]; then
        echo "setup-net-lab: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi
