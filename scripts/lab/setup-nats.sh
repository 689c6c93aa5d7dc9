#!/usr/bin/env bash
# Installs Debian's nats-server (JetStream) for mamori-ship's tests, if it is missing.
# Idempotent; runs `apt-get update` only when the first install attempt fails.
set -euo pipefail
if ! command -v nats-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y nats-server; then
    apt-get update
    apt-get install -y nats-server
  fi
fi
nats-server --version
