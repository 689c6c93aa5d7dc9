#!/usr/bin/env bash
# Installs the WoT lab the Thing monitor's tests use: the Eclipse Thingweb node-wot servient
# (@node-wot/cli from npm) into .wot-lab/ (or $MAMORI_WOT_LAB_DIR), with Debian's Node.js when
# none is installed. Idempotent; quiet unless something fails.
#   scripts/lab/setup-wot-lab.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
lab=${MAMORI_WOT_LAB_DIR:-$repo/.wot-lab}
version=0.7.8
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup-wot-lab: needs Node.js and npm; run as root or: sudo apt-get install nodejs npm" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends nodejs npm >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends nodejs npm >/dev/null; }
fi
if [ -f "$lab/node_modules/@node-wot/cli/package.json" ] &&
    grep -q "\"version\": \"$version\"" "$lab/node_modules/@node-wot/cli/package.json"; then
    exit 0
fi
mkdir -p "$lab"
cd "$lab"
[ -f package.json ] || echo '{"name": "mamori-wot-lab", "private": true}' > package.json
npm install --no-audit --no-fund --loglevel=error "@node-wot/cli@$version" >/dev/null
[ -f node_modules/@node-wot/cli/dist/cli.js ] || { echo "setup-wot-lab: node-wot did not install" >&2; exit 1; }
