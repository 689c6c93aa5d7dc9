#!/usr/bin/env bash
# Runs the Eclipse Thingweb node-wot servient (installed by scripts/lab/setup-wot-lab.sh) in the
# foreground on 127.0.0.1, serving scripts/lab/wot/things.js (or the scripts given).
#   scripts/lab/wot-servient.sh HTTP_PORT [SCRIPT.js...]
# Its HTTP directory is http://127.0.0.1:HTTP_PORT/ (a JSON array of TD URLs).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
lab=${MAMORI_WOT_LAB_DIR:-$repo/.wot-lab}
port=${1:?usage: wot-servient.sh HTTP_PORT [SCRIPT.js...]}
shift
cli=$lab/node_modules/@node-wot/cli/dist/cli.js
[ -f "$cli" ] || { echo "wot-servient: node-wot is not installed; run scripts/lab/setup-wot-lab.sh" >&2; exit 1; }
scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=("$repo/scripts/lab/wot/things.js")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# static address 127.0.0.1 so the TDs' hrefs name loopback; CoAP is left on its default port
# (5683) by this node-wot version, so only one servient runs at a time.
cat > "$work/wot-servient.conf.json" <<CONF
{"servient": {"staticAddress": "127.0.0.1"}, "http": {"port": $port}, "log": {"level": 1}}
CONF
cd "$work"
exec node "$cli" -f "$work/wot-servient.conf.json" "${scripts[@]}"
