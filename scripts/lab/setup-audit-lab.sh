#!/usr/bin/env bash
# Installs and starts the audit lab the root-cause tests and benchmarks use, as root on Debian:
#   - auditd (auditd, auditctl, ausearch): a private audit daemon whose ENRICHED log is
#     $MAMORI_AUDIT_LAB_DIR/audit.log (default /var/lib/mamori-audit-lab; not under /tmp or
#     /root, which the rules watch), with mamori's rules (profiles/audit/mamori.rules) loaded
#   - graphviz: `dot`, for `mamori trace --svg`
#   - curl, busybox, socat, netcat-openbsd, python3: the real programs of the intrusion
#     scenarios (scripts/lab/audit/*.sh)
# Idempotent: an audit daemon it started before is kept (its rules are reloaded). Refuses to
# replace an audit daemon it did not start, unless --replace (CI: a package's own auditd may
# have started at install). Prints the log's path.
#   scripts/lab/setup-audit-lab.sh [--replace | --stop]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
lab=${MAMORI_AUDIT_LAB_DIR:-/var/lib/mamori-audit-lab}

if [ "$(id -u)" != 0 ]; then
    echo "setup-audit-lab: the audit daemon needs root" >&2
    exit 1
fi

running_pid() { auditctl -s 2>/dev/null | awk '$1 == "pid" { print $2 }'; }

if [ "${1:-}" = "--stop" ]; then
    auditctl -D >/dev/null 2>&1 || true
    pid=$(running_pid || true)
    [ -n "$pid" ] && [ "$pid" != 0 ] && [ -f "$lab/auditd.pid" ] && [ "$(cat "$lab/auditd.pid")" = "$pid" ] &&
        kill "$pid"
    exit 0
fi

need=()
command -v auditd >/dev/null || need+=(auditd)
command -v dot >/dev/null || need+=(graphviz)
command -v curl >/dev/null || need+=(curl)
command -v socat >/dev/null || need+=(socat)
command -v nc >/dev/null || need+=(netcat-openbsd)
command -v busybox >/dev/null || need+=(busybox-static)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v run-parts >/dev/null || need+=(debianutils)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

mkdir -p "$lab/plugins"
pid=$(running_pid || true)
if [ -n "$pid" ] && [ "$pid" != 0 ] && kill -0 "$pid" 2>/dev/null; then
    if ! [ -f "$lab/auditd.pid" ] || [ "$(cat "$lab/auditd.pid")" != "$pid" ]; then
        if [ "${1:-}" != "--replace" ]; then
            echo "setup-audit-lab: an audit daemon this script did not start runs (pid $pid); stop it," \
                "run with --replace, or point the tests at its log with MAMORI_AUDIT_LOG" >&2
            exit 1
        fi
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        pid=
    fi
fi
if [ -z "$pid" ] || [ "$pid" = 0 ] || ! kill -0 "$pid" 2>/dev/null; then
    cat > "$lab/auditd.conf" <<CONF
local_events = yes
write_logs = yes
log_file = $lab/audit.log
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 256
num_logs = 4
max_log_file_action = ROTATE
space_left = 75
space_left_action = IGNORE
admin_space_left = 50
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
name_format = NONE
priority_boost = 4
q_depth = 2000
overflow_action = SYSLOG
max_restarts = 10
plugin_dir = $lab/plugins
end_of_event_timeout = 2
CONF
    # The af_unix plugin: the same events as a stream on a socket (mamori's audisp reader).
    cat > "$lab/plugins/af_unix.conf" <<CONF
active = yes
direction = out
path = builtin_af_unix
type = builtin
args = 0640 $lab/audispd_events string
format = string
CONF
    auditd -c "$lab"
    for _ in $(seq 50); do
        pid=$(running_pid || true)
        [ -n "$pid" ] && [ "$pid" != 0 ] && break
        sleep 0.1
    done
    [ -n "$pid" ] && [ "$pid" != 0 ] || { echo "setup-audit-lab: auditd did not start" >&2; exit 1; }
    echo "$pid" > "$lab/auditd.pid"
fi
auditctl -R "$repo/profiles/audit/mamori.rules" >/dev/null
echo "$lab/audit.log"
