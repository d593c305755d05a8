#!/usr/bin/env bash
# Set up a throw-away root, start the daemon (with its launcher), run a sample
# job through rnx and show its output, then stop everything. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${JOBLET_DEMO_ROOT:-/tmp/joblet-demo}
PORT=${JOBLET_DEMO_PORT:-50051}
BIN=.venv/bin

"$BIN/joblet" setup --root "$ROOT" --address 127.0.0.1 --port "$PORT" --force >/dev/null
export RNX_CONFIG="$ROOT/config/rnx-config.yml"

"$BIN/joblet" serve --config "$ROOT/config/joblet-config.yml" >"$ROOT/daemon.log" 2>&1 &
daemon=$!
cleanup() {
  kill -TERM "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
  # A clean stop leaves nothing; this catches a daemon that died instead.
  "$BIN/joblet" teardown --config "$ROOT/config/joblet-config.yml" --force >/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  "$BIN/rnx" list >/dev/null 2>&1 && break
  sleep 0.1
done

echo "+ rnx run -f sh -c 'echo hello from \$(hostname); id -u; ls /'"
"$BIN/rnx" run -f --name demo sh -c 'echo "hello from $(hostname)"; id -u; ls /'
echo "+ rnx list"
"$BIN/rnx" list
