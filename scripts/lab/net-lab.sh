#!/usr/bin/env bash
# net-lab.sh — real IoT-like traffic and real attacks inside network namespaces this script
# creates, captured to a pcap, with time/host labels for every attack.
#
# Usage (as root):
#   scripts/lab/net-lab.sh --out DIR [options]
#
# Topology: a "lan" namespace holding a Linux bridge (br0), and one namespace per host, each
# joined to the bridge by a veth pair; no route anywhere else. Nothing is created in the host's
# own network namespace; everything is torn down on exit, error, INT or TERM.
#   gw       .1   mosquitto (MQTT 1883), dnsmasq (DNS 53, names *.lan), SNTP server (UDP 123)
#   cam      .10  busybox httpd (web UI, port 80) + ffmpeg MJPEG stream (port 8080)
#   nvr      .11  pulls the camera stream, polls its web UI, subscribes to sensors/# (MQTT)
#   dvr      .12  busybox telnetd on 23 and 2323, a DVR-like login (only root/xmhdipc works)
#   sensor1  .21  MQTT JSON reading every 1-5 s, DNS lookups, NTP queries
#   sensor2  .22  same
#   sensor3  .23  same, and the compromised device: runs every attack at scheduled times
# Schedule: --normal-seconds of normal traffic, then each selected attack with a normal gap of
# --gap seconds (random in the range) between them, then --tail-seconds of normal traffic.
#
# Attacks (--attacks, comma-separated, in this order):
#   syn      hping3 SYN flood to cam:80          udp      hping3 UDP flood to gw:53
#   icmp     hping3 ICMP echo flood to nvr       scan     nmap -sS of the subnet (IoT ports)
#   udpscan  nmap -sU of a few UDP ports of gw   telnet   Mirai-style telnet dictionary vs dvr
# Every attack is bounded in packets (hping3 -c, nmap's port list) and wrapped in `timeout`.
#
# Output in DIR:
#   capture.pcap (or capture.pcap.gz with --gzip)  every frame on the bridge, snaplen --snaplen
#   labels.tsv   one line per attack: FROM TO ATTACKER VICTIM NAME (Unix seconds; VICTIM * = subnet)
#   hosts.tsv    name, IPv4, MAC, role of every host
#   summary.txt  packet counts (total, per protocol, per service, per attack)
#   telnet-attempts.tsv  one line per login attempt: time, port, user, password, result
#   logs/        every program's output
#
# Options:
#   --out DIR               output directory (required; created)
#   --seed N                seeds every random choice (bash RANDOM, the helpers) [1]
#   --normal-seconds N      normal traffic before the first attack [60]
#   --gap MIN-MAX           normal seconds between attacks [10-20]
#   --tail-seconds N        normal traffic after the last attack [20]
#   --attacks LIST          subset of syn,udp,icmp,scan,udpscan,telnet [all]; "none" for normal only
#   --flood-count N         packets per hping3 flood [10000]
#   --flood-interval-us N   microseconds between flood packets (250 = 4000 packets/s) [250]
#   --scan-delay MS         nmap --scan-delay between probes (slow scans last longer) [0]
#   --telnet-attempts N     login attempts of the dictionary attack, ending at the working pair [all]
#   --short                 quick CI run (~45 s): normal 10, gap 2-3, tail 5, floods of 1500,
#                           12 telnet attempts; explicit options given after --short still win
#   --subnet A.B.C.0/24     lab subnet (a /24) [10.77.0.0/24]
#   --prefix NAME           namespace name prefix [mmn<pid>]; namespaces are PREFIX-lan, PREFIX-gw, ...
#   --snaplen N             bytes kept per frame (the original length is kept too) [128]
#   --cam-size WxH, --cam-fps N   camera test stream [320x240, 2]
#   --capture-cmd CMD       capture with CMD instead of tcpdump: run by `sh -c "exec CMD"` inside the
#                           lan namespace with IFACE, PCAP, SNAPLEN in its environment; must write a
#                           pcap to $PCAP and stop cleanly on SIGINT
#   --gzip                  gzip the capture at the end (capture.pcap.gz)
#   -h, --help              this text
#
# Needs: iproute2 mosquitto mosquitto-clients hping3 nmap tcpdump ffmpeg busybox-static python3
# dnsmasq-base ntpsec-ntpdig ethtool (scripts/lab/setup-net-lab.sh installs them).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
helpers=$here/net

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "net-lab: $*" >&2; exit 1; }
log() { echo "net-lab: $*" >&2; }

out="" seed=1 normal=60 gap=10-20 tail_s=20 attacks=syn,udp,icmp,scan,udpscan,telnet
flood_count=10000 flood_iv=250 scan_delay=0 telnet_attempts=0 subnet=10.77.0.0/24 prefix="mmn$$" snaplen=128
cam_size=320x240 cam_fps=2 capture_cmd="" gz=0
while [ $# -gt 0 ]; do
    opt=$1
    case "$opt" in
        -h | --help) usage; exit 0 ;;
        --short) normal=10 gap=2-3 tail_s=5 flood_count=1500 telnet_attempts=12; shift; continue ;;
        --gzip) gz=1; shift; continue ;;
    esac
    [ $# -ge 2 ] || die "$opt needs a value (see --help)"
    val=$2
    shift 2
    case "$opt" in
        --out) out=$val ;;
        --seed) seed=$val ;;
        --normal-seconds) normal=$val ;;
        --gap) gap=$val ;;
        --tail-seconds) tail_s=$val ;;
        --attacks) attacks=$val ;;
        --flood-count) flood_count=$val ;;
        --flood-interval-us) flood_iv=$val ;;
        --scan-delay) scan_delay=$val ;;
        --telnet-attempts) telnet_attempts=$val ;;
        --subnet) subnet=$val ;;
        --prefix) prefix=$val ;;
        --snaplen) snaplen=$val ;;
        --cam-size) cam_size=$val ;;
        --cam-fps) cam_fps=$val ;;
        --capture-cmd) capture_cmd=$val ;;
        *) die "unknown option $opt (see --help)" ;;
    esac
done

# ---- validate -------------------------------------------------------------------------------
[ -n "$out" ] || die "--out DIR is required (see --help)"
isnum() { [[ $1 =~ ^[0-9]+$ ]]; }
for pair in "seed:$seed" "normal-seconds:$normal" "tail-seconds:$tail_s" "flood-count:$flood_count" \
    "flood-interval-us:$flood_iv" "scan-delay:$scan_delay" "telnet-attempts:$telnet_attempts" "snaplen:$snaplen" "cam-fps:$cam_fps"; do
    isnum "${pair#*:}" || die "--${pair%%:*} must be a non-negative integer, got '${pair#*:}'"
done
[[ $gap =~ ^([0-9]+)-([0-9]+)$ ]] || die "--gap must be MIN-MAX seconds, got '$gap'"
gap_min=${BASH_REMATCH[1]} gap_max=${BASH_REMATCH[2]}
[ "$gap_min" -le "$gap_max" ] || die "--gap: MIN > MAX"
[ "$flood_count" -le 50000 ] || die "--flood-count at most 50000"
[ "$flood_iv" -ge 50 ] || die "--flood-interval-us at least 50 (20000 packets/s)"
[ "$snaplen" -ge 64 ] || die "--snaplen at least 64"
[[ $cam_size =~ ^[0-9]+x[0-9]+$ ]] || die "--cam-size must be WxH"
[[ $subnet =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)\.0/24$ ]] || die "--subnet must be A.B.C.0/24, got '$subnet'"
for o in 1 2 3; do [ "${BASH_REMATCH[$o]}" -le 255 ] || die "--subnet: bad octet in $subnet"; done
net3="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
[[ $prefix =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$ ]] || die "--prefix: letters, digits, _ and - only, at most 31"
all_attacks=(syn udp icmp scan udpscan telnet)
selected=()
if [ "$attacks" != none ]; then
    IFS=, read -r -a want <<<"$attacks"
    for w in "${want[@]}"; do
        case " ${all_attacks[*]} " in *" $w "*) ;; *) die "--attacks: unknown '$w' (known: ${all_attacks[*]})" ;; esac
    done
    for a in "${all_attacks[@]}"; do
        case ",$attacks," in *",$a,"*) selected+=("$a") ;; esac
    done
fi

[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces): sudo $0 ..."
missing=()
for pc in iproute2:ip iproute2:ss mosquitto:mosquitto mosquitto-clients:mosquitto_pub \
    mosquitto-clients:mosquitto_sub hping3:hping3 nmap:nmap tcpdump:tcpdump ffmpeg:ffmpeg \
    busybox-static:busybox python3:python3 dnsmasq-base:dnsmasq ntpsec-ntpdig:ntpdig ethtool:ethtool \
    coreutils:timeout; do
    command -v "${pc#*:}" >/dev/null 2>&1 || missing+=("${pc#*:} (package ${pc%%:*})")
done
[ -x /bin/busybox ] || missing+=("/bin/busybox (package busybox-static)")
if command -v busybox >/dev/null 2>&1; then
    # Read the list whole: `busybox --list | grep -q` under pipefail fails when grep stops early
    # and busybox gets SIGPIPE.
    applets=$(busybox --list)
    for applet in telnetd httpd nslookup wget usleep sh stty; do
        grep -qx "$applet" <<<"$applets" || missing+=("busybox applet $applet (package busybox-static)")
    done
fi
[ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]}; run scripts/lab/setup-net-lab.sh"

# ---- hosts -----------------------------------------------------------------------------------
hosts=(gw cam nvr dvr sensor1 sensor2 sensor3)
declare -A octet=([gw]=1 [cam]=10 [nvr]=11 [dvr]=12 [sensor1]=21 [sensor2]=22 [sensor3]=23)
declare -A role=([gw]="gateway: mqtt-broker dns ntp" [cam]="ip-camera: http mjpeg-stream"
    [nvr]="nvr: stream-client mqtt-subscriber" [dvr]="dvr: telnet (default credentials)"
    [sensor1]="sensor: mqtt dns ntp" [sensor2]="sensor: mqtt dns ntp"
    [sensor3]="sensor: mqtt dns ntp; compromised, runs the attacks")
ip_of() { echo "$net3.${octet[$1]}"; }
mac_of() { printf '02:77:00:00:00:%02x' "${octet[$1]}"; }
ns_of() { echo "$prefix-$1"; }
lan_ns="$prefix-lan"
attacker=sensor3

# ---- teardown --------------------------------------------------------------------------------
created_ns=()
cap_pid=""
tmp=""
stop_capture() {
    [ -n "$cap_pid" ] || return 0
    kill -INT "$cap_pid" 2>/dev/null || true
    local _
    for _ in $(seq 100); do
        kill -0 "$cap_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$cap_pid" 2>/dev/null && { log "capture did not stop on SIGINT; killing it"; kill -KILL "$cap_pid" 2>/dev/null || true; }
    wait "$cap_pid" 2>/dev/null || true
    cap_pid=""
}
kill_ns_procs() { # NS...: TERM every process in these namespaces, then KILL what is left
    local ns pids _
    for ns in "$@"; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086 # one word per pid
        [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
    done
    for _ in $(seq 30); do
        pids=""
        for ns in "$@"; do pids+=$(ip netns pids "$ns" 2>/dev/null || true); done
        [ -n "$pids" ] || return 0
        sleep 0.1
    done
    for ns in "$@"; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086 # one word per pid
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    done
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_capture
    if [ ${#created_ns[@]} -gt 0 ]; then
        kill_ns_procs "${created_ns[@]}"
        local ns
        for ns in "${created_ns[@]}"; do ip netns del "$ns" 2>/dev/null; done
    fi
    wait 2>/dev/null
    [ -z "$tmp" ] || rm -rf "$tmp"
    [ "$rc" = 0 ] || log "failed (exit $rc); namespaces removed; logs in $out/logs"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for h in lan "${hosts[@]}"; do
    ! ip netns list | grep -q "^$prefix-$h\b" || die "namespace $prefix-$h exists already; choose another --prefix"
done

mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
logdir=$out/logs
rm -f "$out/capture.pcap" "$out/capture.pcap.gz" "$out/labels.tsv" "$out/hosts.tsv" "$out/summary.txt" \
    "$out/telnet-attempts.tsv" "$logdir"/*
tmp=$(mktemp -d "${TMPDIR:-/tmp}/net-lab.XXXXXX")
chmod 755 "$tmp"
pcap=$out/capture.pcap
# bash's RANDOM gives nearly the same first numbers for nearby seeds: hash the seed first
RANDOM=$(printf 'net-lab-%s' "$seed" | cksum | cut -d' ' -f1)

# ---- topology --------------------------------------------------------------------------------
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
for h in lan "${hosts[@]}"; do
    ns="$prefix-$h"
    ip netns add "$ns"
    created_ns+=("$ns")
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
done
# bridged frames must not go through the lan namespace's netfilter (br_netfilter may be loaded)
in_ns "$lan_ns" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
ip -n "$lan_ns" link add br0 type bridge stp_state 0 mcast_snooping 0
ip -n "$lan_ns" link set br0 address 02:77:00:00:00:fe
for h in "${hosts[@]}"; do
    ns=$(ns_of "$h")
    ip -n "$lan_ns" link add "p-$h" type veth peer name eth0 netns "$ns"
    ip -n "$lan_ns" link set "p-$h" address "$(printf '02:77:00:00:01:%02x' "${octet[$h]}")" master br0
    ip -n "$ns" link set eth0 address "$(mac_of "$h")"
    ip -n "$ns" addr add "$(ip_of "$h")/24" dev eth0
    # no offloads: frames on the wire are what a small device would send (MTU-sized, real checksums)
    in_ns "$lan_ns" ethtool -K "p-$h" tx off tso off gso off gro off >/dev/null 2>&1 || true
    in_ns "$ns" ethtool -K eth0 tx off tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$lan_ns" link set "p-$h" up
    ip -n "$ns" link set eth0 up
done
ip -n "$lan_ns" link set br0 up

{
    printf '# net-lab hosts (subnet %s, seed %s): name, IPv4, MAC, role\n' "$subnet" "$seed"
    for h in "${hosts[@]}"; do printf '%s\t%s\t%s\t%s\n' "$h" "$(ip_of "$h")" "$(mac_of "$h")" "${role[$h]}"; done
} >"$out/hosts.tsv"

# ---- capture (the one place that knows how) --------------------------------------------------
start_capture() {
    # `ip netns exec` directly (not through a shell function) so that $! is the capture itself
    if [ -n "$capture_cmd" ]; then
        ip netns exec "$lan_ns" env IFACE=br0 PCAP="$pcap" SNAPLEN="$snaplen" sh -c "exec $capture_cmd" \
            >"$logdir/capture.log" 2>&1 &
    else
        ip netns exec "$lan_ns" tcpdump -i br0 -s "$snaplen" -n -U -Z root -w "$pcap" >"$logdir/capture.log" 2>&1 &
    fi
    cap_pid=$!
    local _
    for _ in $(seq 100); do
        kill -0 "$cap_pid" 2>/dev/null || { cat "$logdir/capture.log" >&2; cap_pid=""; die "capture exited at start"; }
        if [ -n "$capture_cmd" ]; then [ -s "$pcap" ] && return 0; else grep -q "listening on" "$logdir/capture.log" && return 0; fi
        sleep 0.1
    done
    die "capture not ready after 10 s; see $logdir/capture.log"
}

# ---- services --------------------------------------------------------------------------------
# an upper bound on the whole run, for every background loop
budget=$((normal + tail_s + 30 + ${#selected[@]} * (gap_max + 200)))
bg() { # HOST LOG CMD...: run in the background inside HOST's namespace, output to logs/LOG
    local h=$1 lg=$2
    shift 2
    in_ns "$(ns_of "$h")" "$@" >>"$logdir/$lg" 2>&1 &
}
wait_listen() { # HOST PROTO(t|u) PORT: wait until something listens (checked with ss, no traffic)
    local _
    for _ in $(seq 100); do
        [ -n "$(in_ns "$(ns_of "$1")" ss -Hln"$2" "sport = :$3" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    die "$1: nothing listens on $2/$3 after 10 s; see $logdir"
}

gw=$(ip_of gw)
cat >"$tmp/mosquitto.conf" <<EOF
listener 1883 $gw
allow_anonymous true
persistence false
max_keepalive 120
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
EOF
{
    printf '%s gw.lan broker.lan ntp.lan\n' "$gw"
    for h in "${hosts[@]}"; do [ "$h" = gw ] || printf '%s %s.lan\n' "$(ip_of "$h")" "$h"; done
} >"$tmp/hosts"
printf 'XMEye DVR\r\n' >"$tmp/issue"
# telnetd execs its login program by path: a copy with the execute bit, whatever git kept
cp "$helpers/dvr-login.sh" "$tmp/dvr-login.sh"
chmod 644 "$tmp"/*
chmod 755 "$tmp/dvr-login.sh"

start_capture
log "namespaces $prefix-{lan,$(IFS=,; echo "${hosts[*]}")} up, capturing on $lan_ns/br0 to $pcap"

bg gw mosquitto.log timeout "$budget" mosquitto -c "$tmp/mosquitto.conf"
bg gw dnsmasq.log timeout "$budget" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
    --addn-hosts="$tmp/hosts" --local=/lan/ --domain=lan --listen-address="$gw" --bind-interfaces \
    --pid-file= --log-queries --log-facility=- --user=root
bg gw ntp.log timeout "$budget" python3 "$helpers/ntp_server.py" --bind "$gw" --max-seconds "$budget"
for port in 23 2323; do
    bg dvr "telnetd-$port.log" env DVR_USER=root DVR_PASS=xmhdipc DVR_HOSTNAME=dvr \
        timeout "$budget" busybox telnetd -F -p "$port" -b "$(ip_of dvr)" -f "$tmp/issue" -l "$tmp/dvr-login.sh"
done
bg cam cam.log bash "$helpers/cam.sh" "$(ip_of cam)" "$seed" "$budget" "$tmp/www" "$cam_size" "$cam_fps"
wait_listen gw t 1883
wait_listen gw u 53
wait_listen gw u 123
wait_listen dvr t 23
wait_listen dvr t 2323
wait_listen cam t 80
wait_listen cam t 8080

bg nvr nvr.log bash "$helpers/nvr.sh" "$(ip_of cam)" "$gw" "$seed" "$budget" "$logdir"
for h in sensor1 sensor2 sensor3; do
    bg "$h" "$h.log" bash "$helpers/sensor.sh" "$h" "$gw" "$gw" "$gw" "$seed" "$budget"
done
for h in cam nvr dvr; do
    bg "$h" "chatter-$h.log" bash "$helpers/chatter.sh" "$h" "$gw" "$gw" "$seed" "$budget" \
        broker.lan ntp.lan cam.lan "$h.lan"
done
log "normal traffic for ${normal}s"
sleep "$normal"

# ---- attacks ---------------------------------------------------------------------------------
labels=$out/labels.tsv
{
    printf '# net-lab attack labels (seed %s, subnet %s): every packet between ATTACKER and VICTIM\n' "$seed" "$subnet"
    printf '# (VICTIM * = the subnet) with FROM <= time <= TO (Unix seconds) belongs to attack NAME\n'
    printf '# FROM\tTO\tATTACKER\tVICTIM\tNAME\n'
} >"$labels"
att_ip=$(ip_of "$attacker")
flood_timeout=$((flood_count * flood_iv * 2 / 1000000 + 15))
run_attack() { # NAME VICTIM TIMEOUT LOG CMD...: time-stamped, bounded, run in the attacker's namespace
    local name=$1 victim=$2 t=$3 lg=$4 from to rc
    shift 4
    log "attack $name from $att_ip to $victim"
    from=$(date +%s.%N)
    rc=0
    # a simple command, not the in_ns function: redirections of a function call would still be in
    # force when an INT/TERM trap runs, and the teardown's messages would land in the tool's log
    ip netns exec "$(ns_of "$attacker")" timeout "$t" "$@" >>"$logdir/$lg" 2>&1 || rc=$?
    to=$(date +%s.%N)
    # hping3 exits 1 when the victim did not answer every probe; 124 = our timeout cut it short
    [ "$rc" != 124 ] || log "attack $name hit its ${t}s timeout"
    printf '%s\t%s\t%s\t%s\t%s\n' "$from" "$to" "$att_ip" "$victim" "$name" >>"$labels"
}
telnet_args=()
if [ "$telnet_attempts" -gt 0 ]; then
    # the working pair is the Nth entry; start so that it is the last of the attempts
    idx=$(grep -v '^#' "$helpers/mirai-credentials.txt" | grep -n -m1 -P '^root\txmhdipc$' | cut -d: -f1)
    skip=$((idx - telnet_attempts))
    [ "$skip" -ge 0 ] || skip=0
    telnet_args=(--skip "$skip" --max-attempts "$telnet_attempts")
fi

# telnet, web, MQTT, RTSP, TR-069, ADB, DVR ports: what IoT malware and its operators look for
scan_ports=21,22,23,25,53,80,81,443,554,1883,2323,5000,5555,7547,8000,8080,8081,8443,8883,9000,37777,49152
first=1
for a in "${selected[@]}"; do
    if [ "$first" = 0 ]; then
        g=$((gap_min + RANDOM % (gap_max - gap_min + 1)))
        log "normal gap ${g}s"
        sleep "$g"
    fi
    first=0
    case "$a" in
        syn) run_attack syn-flood "$(ip_of cam)" "$flood_timeout" hping3.log \
            hping3 -q -I eth0 -S -p 80 -i "u$flood_iv" -c "$flood_count" "$(ip_of cam)" ;;
        udp) run_attack udp-flood "$gw" "$flood_timeout" hping3.log \
            hping3 -q -I eth0 --udp -p 53 -d 64 -i "u$flood_iv" -c "$flood_count" "$gw" ;;
        icmp) run_attack icmp-flood "$(ip_of nvr)" "$flood_timeout" hping3.log \
            hping3 -q -I eth0 --icmp -d 56 -i "u$flood_iv" -c "$flood_count" "$(ip_of nvr)" ;;
        scan) run_attack syn-scan '*' 180 nmap-syn.log \
            nmap -sS -n -T4 --max-retries 1 --scan-delay "${scan_delay}ms" -p "$scan_ports" "$subnet" ;;
        udpscan) run_attack udp-scan "$gw" 120 nmap-udp.log \
            nmap -sU -n -Pn -T4 --max-retries 1 --scan-delay "${scan_delay}ms" \
                -p 53,67,69,123,161,1900,5353,5683 "$gw" ;;
        telnet)
            printf '# TIME\tPORT\tUSER\tPASSWORD\tRESULT (one TCP connection per attempt)\n' >"$out/telnet-attempts.tsv"
            run_attack telnet-dictionary "$(ip_of dvr)" 300 ../telnet-attempts.tsv \
            python3 "$helpers/telnet_dict.py" "$(ip_of dvr)" --creds "$helpers/mirai-credentials.txt" \
            --seed "$seed" --max-seconds 240 "${telnet_args[@]}" ;;
    esac
done
[ ${#selected[@]} -eq 0 ] || { log "normal tail ${tail_s}s"; sleep "$tail_s"; }
[ ${#selected[@]} -gt 0 ] || { [ "$tail_s" -eq 0 ] || sleep "$tail_s"; }

# ---- stop, summarise -------------------------------------------------------------------------
hosts_ns=()
for h in "${hosts[@]}"; do hosts_ns+=("$(ns_of "$h")"); done
kill_ns_procs "${hosts_ns[@]}"
sleep 0.5
stop_capture
grep -E "captured|dropped" "$logdir/capture.log" >&2 || true
{
    printf '# net-lab summary: seed %s, subnet %s, normal %ss, gap %s s, tail %ss, attacks %s\n' \
        "$seed" "$subnet" "$normal" "$gap" "$tail_s" "${selected[*]:-none}"
    python3 "$helpers/pcap_summary.py" "$pcap" --labels "$labels" --subnet "$subnet" || true
    if [ -s "$out/telnet-attempts.tsv" ]; then
        printf 'telnet_attempts\t%s\ttelnet_success\t%s\n' "$(grep -c '^[0-9]' "$out/telnet-attempts.tsv")" \
            "$(grep -c 'success$' "$out/telnet-attempts.tsv" || true)"
    fi
} >"$out/summary.txt"
if [ "$gz" = 1 ]; then
    gzip -n -9 -f "$pcap"
    pcap=$pcap.gz
fi
cat "$out/summary.txt"
printf 'file\t%s\t%s bytes\n' "$pcap" "$(stat -c %s "$pcap")" "$labels" "$(stat -c %s "$labels")" \
    "$out/hosts.tsv" "$(stat -c %s "$out/hosts.tsv")"
