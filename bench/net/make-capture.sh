#!/usr/bin/env bash
# Builds a large benchmark capture from real IoT device captures, with time always increasing:
# the inputs are merged in time order into one "round" (a gateway's view of all the devices),
# and the round is repeated with its timestamps shifted by (round span + 60 s) each time, then
# the copies are concatenated. The last copy is cut so the output has exactly N packets.
# Output: classic pcap (microsecond timestamps), Ethernet. Needs editcap, mergecap and capinfos
# (Debian: wireshark-common / tshark).
#
#   bench/net/make-capture.sh OUT.pcap N_PACKETS [INPUT.pcap ...]
#   (inputs default to ../shared/data/iot-benign-pcap/*.pcap, relative to the repo root)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ $# -lt 2 ]; then sed -n 2,9p "$0" >&2; exit 2; fi
out="$1"; n="$2"; shift 2
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "make-capture: N_PACKETS must be a positive integer, got '$n'" >&2; exit 2; }
if [ $# -gt 0 ]; then
    inputs=("$@")
else
    shopt -s nullglob
    inputs=("$root"/../shared/data/iot-benign-pcap/*.pcap)
    shopt -u nullglob
fi
[ ${#inputs[@]} -gt 0 ] || { echo "make-capture: no input captures (expected ../shared/data/iot-benign-pcap/*.pcap)" >&2; exit 1; }
for tool in editcap mergecap capinfos; do
    command -v "$tool" >/dev/null || { echo "make-capture: '$tool' not found (apt-get install wireshark-common, or tshark)" >&2; exit 1; }
done
for f in "${inputs[@]}"; do
    enc=$(capinfos -M -T -E "$f" | awk -F'\t' 'NR == 2 { print $2 }')
    [ "$enc" = "ether" ] || [ "$enc" = "Ethernet" ] || { echo "make-capture: $f is '$enc', not Ethernet" >&2; exit 1; }
done

tmp=$(mktemp -d "$(dirname "$out")/.make-capture.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

mergecap -F pcap -w "$tmp/round.pcap" "${inputs[@]}"
# packets, first and last time (epoch seconds) of one round
read -r per_round first last < <(capinfos -M -T -r -c -a -e -S "$tmp/round.pcap" | awk -F'\t' '{ print $2, $3, $4 }')
shift_s=$(awk -v a="$first" -v b="$last" 'BEGIN { s = int(b - a) + 1; print s + 60 }')
rounds=$(( (n + per_round - 1) / per_round ))
parts=()
for ((k = 0; k < rounds; k++)); do
    part="$tmp/part-$k.pcap"
    left=$(( n - k * per_round ))
    if [ "$left" -lt "$per_round" ]; then
        editcap -F pcap -t $(( k * shift_s )) -r "$tmp/round.pcap" "$part" "1-$left"
    elif [ "$k" -eq 0 ]; then
        cp "$tmp/round.pcap" "$part"
    else
        editcap -F pcap -t $(( k * shift_s )) "$tmp/round.pcap" "$part"
    fi
    parts+=("$part")
done
mergecap -a -F pcap -w "$out" "${parts[@]}"
echo "make-capture: $out: $n packets = ${#inputs[@]} captures merged ($per_round packets, ${shift_s} s per round) x $rounds rounds (last cut)" >&2
