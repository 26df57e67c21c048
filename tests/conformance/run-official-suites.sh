#!/usr/bin/env bash
# Runs the official Engine.IO and Socket.IO protocol test suites (mocha, from the public
# socketio/engine.io-protocol and socketio/socket.io-protocol repositories) against our
# eio-conformance-server and sio-conformance-server. Their code is fetched into a scratch
# directory and never copied into this repository.
#
#   tests/conformance/run-official-suites.sh [BUILD_DIR] [RUNS]
#
# SUITES_DIR=<dir> reuses checkouts (<dir>/engine.io-protocol, <dir>/socket.io-protocol).
# The suites hard-code http://localhost:3000, so port 3000 must be free. Their locked
# ws@8.5.0 drops a second frame that arrives in the same TCP read: ws@8.16.0 replaces it.
set -euo pipefail

BUILD_DIR=$(cd "${1:-$(dirname "$0")/../../build}" && pwd)
RUNS=${2:-1}
BIN="$BUILD_DIR/tests/conformance"
SUITES_DIR=${SUITES_DIR:-$(mktemp -d /tmp/sf-official-suites.XXXXXX)}
export NODE_OPTIONS="${NODE_OPTIONS:-} --dns-result-order=ipv4first"  # localhost -> 127.0.0.1 on Node 18

for repo in engine.io-protocol socket.io-protocol; do
  if [ ! -d "$SUITES_DIR/$repo/test-suite" ]; then
    git clone --depth 1 "https://github.com/socketio/$repo.git" "$SUITES_DIR/$repo" >/dev/null
  fi
  if [ ! -d "$SUITES_DIR/$repo/test-suite/node_modules/mocha" ]; then
    (cd "$SUITES_DIR/$repo/test-suite" && npm ci --silent && npm install --no-save --silent ws@8.16.0)
  fi
done

server_pid=""
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

status=0
run_suite() {  # <server binary> <suite repo>
  local log="$SUITES_DIR/$1.log"
  "$BIN/$1" --port 3000 2>"$log" &
  server_pid=$!
  for _ in $(seq 50); do grep -q "event=listening" "$log" && break; sleep 0.1; done
  for i in $(seq "$RUNS"); do
    out=$(cd "$SUITES_DIR/$2/test-suite" && npx mocha test-suite.js 2>&1) || status=1
    echo "$2 run $i: $(echo "$out" | grep -E '[0-9]+ passing' | xargs) $(echo "$out" | grep -E '[0-9]+ failing' | xargs)"
    echo "$out" | grep -q ' failing' && echo "$out" | sed -n '/failing/,$p' | head -40
  done
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

run_suite eio-conformance-server engine.io-protocol
run_suite sio-conformance-server socket.io-protocol
exit $status
