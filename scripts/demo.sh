#!/usr/bin/env bash
# Set up a throw-away root, start the daemon (with its launcher), run a sample
# job through rnx and show its output, then stop everything. Needs root.
# The demo's daemon has a cgroup parent of its own and network ranges that
# set-up picks clear of the host's routes and of other daemons' configs, so a
# joblet service on the same host keeps its jobs (JOBLET_DEMO_BRIDGE and
# JOBLET_DEMO_POOL choose the ranges instead).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${JOBLET_DEMO_ROOT:-/tmp/joblet-demo}
PORT=${JOBLET_DEMO_PORT:-50051}
PARENT=${JOBLET_DEMO_CGROUP_PARENT:-joblet-demo}
BIN=.venv/bin

ranges=()
[[ -n ${JOBLET_DEMO_BRIDGE:-} ]] && ranges+=(--bridge-cidr "$JOBLET_DEMO_BRIDGE")
[[ -n ${JOBLET_DEMO_POOL:-} ]] && ranges+=(--isolated-pool "$JOBLET_DEMO_POOL")
"$BIN/joblet" setup --root "$ROOT" --address 127.0.0.1 --port "$PORT" --force \
  --cgroup-parent "$PARENT" "${ranges[@]}" | sed -n 's/^  \(cgroup parent\|networks\):/+ \1:/p'
export RNX_CONFIG="$ROOT/config/rnx-config.yml"

"$BIN/joblet" serve --config "$ROOT/config/joblet-config.yml" >"$ROOT/daemon.log" 2>&1 &
daemon=$!
cleanup() {
  # Its jobs too: a plain SIGTERM would leave running ones to the launcher.
  "$BIN/joblet" shutdown --stop-jobs --config "$ROOT/config/joblet-config.yml" >/dev/null 2>&1 ||
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
