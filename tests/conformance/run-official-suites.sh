#!/usr/bin/env bash
# Runs the official socket.io-protocol and engine.io-protocol test suites (mocha) against
# our conformance servers. The suites are not our code and are not in this repository:
# clone github.com/socketio/socket.io-protocol and github.com/socketio/engine.io-protocol
# yourself and pass their paths.
#   tests/conformance/run-official-suites.sh BUILD_DIR SIO_PROTOCOL_REPO EIO_PROTOCOL_REPO
# Their locked ws@8.5.0 loses a second WebSocket frame that arrives in the same TCP read,
# so ws@8.16.0 is installed over it. The suites hard-code port 3000.
set -euo pipefail
build=$(cd "$1" && pwd); sio=$(cd "$2" && pwd); eio=$(cd "$3" && pwd)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
run() {  # run <server binary> <suite dir>
  (cd "$2/test-suite" && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } \
     && npm install --no-save --no-audit --no-fund --loglevel=error ws@8.16.0)
  "$1" --port 3000 2>/dev/null & pids+=($!)
  sleep 0.5
  (cd "$2/test-suite" && npx mocha test-suite.js)
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
}
run "$build/tests/conformance/eio-conformance-server" "$eio"
run "$build/tests/conformance/sio-conformance-server" "$sio"
