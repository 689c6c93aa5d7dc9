# Shared by the intrusion scenarios (sourced, not run). Each scenario runs real programs in its own
# work directory, with its own attacker's host (a network namespace it creates) serving HTTP, and writes
# facts.json: what BackTracker must find (damaged file, detection time, entry point, the attack's
# processes in order) and must not (the decoys), and what the attacker modified.
set -euo pipefail

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)

# A free loopback TCP port.
free_port() {
    "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Unix time in seconds with nanoseconds, as audit stamps it (milliseconds are what matter).
now() { date +%s.%N; }

# Audit stamps have millisecond resolution: keep steps that must be ordered apart.
settle() { sleep 0.05; }

# The attacker's host: a network namespace joined to this host by a veth pair on
# 10.213.$1.0/30 (this host .1, the attacker .2), so the attacker's address is a network peer
# as it would be in the field, not a loopback address. Sets ns, host_ip, atk_ip; removed at exit
# by cleanup.
attacker_host() {
    ns=mamori-atk-$1
    host_ip=10.213.$1.1
    atk_ip=10.213.$1.2
    ip netns del "$ns" 2>/dev/null || true
    ip link del "mamori-h$1" 2>/dev/null || true
    ip netns add "$ns"
    ip link add "mamori-h$1" type veth peer name "mamori-a$1" netns "$ns"
    ip addr add "$host_ip/30" dev "mamori-h$1"
    ip link set "mamori-h$1" up
    ip -n "$ns" addr add "$atk_ip/30" dev "mamori-a$1"
    ip -n "$ns" link set "mamori-a$1" up
    ip -n "$ns" link set lo up
}

# Runs a command on the attacker's host.
on_attacker() { ip netns exec "$ns" "$@"; }

# Background noise for the scenario's length (at most 60 s): a service that logs, rotates its
# log, lists and reads the work directory (the files the attacker damages among them) and
# starts short-lived processes, as a device's daemons and cron jobs do. None of it caused the
# damage, so none of it may show in a backtrack. Sets noise_pid.
background_noise() {
    local dir=$1/noise
    mkdir -p "$dir"
    (
        for i in $(seq 1200); do
            date >> "$dir/app.log"
            cat "$1"/*/* >/dev/null 2>&1 || true
            ls -R "$1" >/dev/null
            [ $((i % 20)) = 0 ] && mv "$dir/app.log" "$dir/app.log.1"
            sleep 0.05
        done
    ) &
    noise_pid=$!
}

# Stops what the scenario started in the background and removes the attacker's host.
cleanup() {
    local pid
    for pid in "$@" ${noise_pid:-}; do kill "$pid" 2>/dev/null || true; done
    [ -z "${ns:-}" ] || ip netns del "$ns" 2>/dev/null || true
}

# Waits until something listens on $1:$2 (at most 10 s).
wait_listen() {
    local i
    for i in $(seq 100); do
        nc -z "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1:$2" >&2
    return 1
}

# Serves directory $1 over HTTP from the attacker's host on a free port; sets http_port,
# http_pid and url.
start_http() {
    http_port=$(free_port)
    # `ip netns exec` execs the server, so $! is the server itself (a function in the background
    # would be a subshell, and killing it would leave the server running).
    ip netns exec "$ns" "$py" -m http.server --bind "$atk_ip" --directory "$1" "$http_port" >/dev/null 2>&1 &
    http_pid=$!
    wait_listen "$atk_ip" "$http_port"
    url="http://$atk_ip:$http_port"
}

# A JSON string (paths and commands here have no control characters).
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

# A JSON array of strings from the arguments.
json_list() {
    local first=1 item
    printf '['
    for item in "$@"; do
        [ $first = 1 ] || printf ', '
        first=0
        json_str "$item"
    done
    printf ']'
}

# The last step: an exec whose argument marks the end of the scenario in the audit log.
end_marker() { /bin/true "mamori-lab-end-$1"; }
