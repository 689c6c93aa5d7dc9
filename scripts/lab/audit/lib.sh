# Shared by the intrusion scenarios (sourced, not run). Each scenario runs real programs in its own
# work directory, with its own HTTP server ("the attacker's host") on a loopback port, and writes
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

# Waits until something listens on 127.0.0.1:$1 (at most 10 s).
wait_port() {
    local i
    for i in $(seq 100); do
        nc -z 127.0.0.1 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# Serves directory $1 over HTTP on a free port; sets http_port and http_pid.
start_http() {
    http_port=$(free_port)
    "$py" -m http.server --bind 127.0.0.1 --directory "$1" "$http_port" >/dev/null 2>&1 &
    http_pid=$!
    wait_port "$http_port"
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
