#!/usr/bin/env bash
# bench/soak.sh [BUILD_DIR] — connection churn at full rate, for a leak check: SLOTS clients at
# once, each over and over connects (websocket), subscribes, publishes one AT_LEAST_ONCE message,
# receives and acks it, and drops the connection (every RST_EVERY'th abortively), for SECONDS
# (bench/soak.cpp). streamfenced's RSS and open descriptors are sampled every SAMPLE_MS; flat at
# the end means no per-connection leak. Writes bench/results/soak.md.
#
# Knobs: SECONDS_RUN=600 SLOTS=64 SAMPLE_MS=5000 RST_EVERY=4 PAYLOAD=64 SF_IO_THREADS=0
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${1:-build}"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
SECONDS_RUN="${SECONDS_RUN:-600}"
SLOTS="${SLOTS:-64}"
SAMPLE_MS="${SAMPLE_MS:-5000}"
RST_EVERY="${RST_EVERY:-4}"
PAYLOAD="${PAYLOAD:-64}"
SF_IO_THREADS="${SF_IO_THREADS:-0}"
SOAK="$BUILD/bench/soak"; SFD="$BUILD/host/streamfenced"; PLUGIN_DIR="$BUILD/plugins"
RESULTS="$HERE/results"; WORK="$(mktemp -d /tmp/sfsoak.XXXXXX)"
mkdir -p "$RESULTS"
SRV_PID=""
cleanup() { [[ -n "$SRV_PID" ]] && kill "$SRV_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
log() { echo "soak: $*" >&2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

{ cmake --build "$BUILD" --target soak streamfenced -j "$(nproc)" || { cmake "$BUILD" && cmake --build "$BUILD" --target soak streamfenced -j "$(nproc)"; }; } \
  >"$WORK/build.log" 2>&1 || { log "cannot build the soak tool (see below)"; cat "$WORK/build.log" >&2; exit 1; }

TOPICS=$(seq -s, 0 $((SLOTS - 1)) | sed 's/\([0-9]*\)/"t\1"/g')
cat >"$WORK/sf.json" <<EOC
{"pluginDir": "$PLUGIN_DIR", "logLevel": "info",
 "servers": {"s": {"host": "127.0.0.1", "port": 0, "ioThreads": $SF_IO_THREADS,
   "control": {"host": "127.0.0.1", "port": 0},
   "namespaces": [{"path": "/soak", "topics": [$TOPICS], "deliveryMode": "AT_LEAST_ONCE",
                   "overflowAction": "REJECT_NEW", "ackTimeoutMs": 5000, "maxRetries": 2}]}}}
EOC

"$SFD" -c "$WORK/sf.json" 2>"$WORK/srv.log" >/dev/null &
SRV_PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(grep -m1 "event=listening" "$WORK/srv.log" 2>/dev/null | grep -o ' port=[0-9]*' | head -1 | cut -d= -f2)
  [[ -n "$PORT" ]] && break
  sleep 0.1
done
[[ -n "$PORT" ]] || { log "streamfenced did not start"; cat "$WORK/srv.log" >&2; exit 1; }

START=$(date -u +%Y-%m-%dT%H:%M:%SZ); LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "churning $SLOTS slots for $SECONDS_RUN s against pid $SRV_PID port $PORT; load $LOAD_START"
"$SOAK" --port "$PORT" --server-pid "$SRV_PID" --slots "$SLOTS" --seconds "$SECONDS_RUN" --sample-ms "$SAMPLE_MS" \
  --rst-every "$RST_EVERY" --payload "$PAYLOAD" >"$WORK/soak.out" 2>"$WORK/soak.err"
tail -5 "$WORK/soak.err" >&2
R=$(grep '^RESULT' "$WORK/soak.out" | tail -1)
[[ -n "$R" ]] || { log "no result"; cat "$WORK/soak.out" "$WORK/soak.err" >&2; exit 1; }
kv() { local v; v=$(sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"); echo "${v:-n/a}"; }
ERRORS=$(grep -c 'level=error' "$WORK/srv.log" || true)
kill -TERM "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; SRV_PID=""

# The samples after the first minute (warm-up: allocator arenas, buffers reach their working size).
first_after() { awk -v t="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } if (v["t_s"] + 0 >= t) { print; exit } }'; }
FIRST=$(grep '^SAMPLE' "$WORK/soak.out" | sed -n 2p)
WARM=$(grep '^SAMPLE' "$WORK/soak.out" | first_after 60)
[[ -n "$WARM" ]] || WARM="$FIRST"
LAST=$(grep '^SAMPLE' "$WORK/soak.out" | tail -1)
IB=$(grep '^IDLE_BEFORE' "$WORK/soak.out"); IA=$(grep '^IDLE_AFTER' "$WORK/soak.out")
MAXRSS=$(grep '^SAMPLE' "$WORK/soak.out" | sed 's/.* rss_kb=\([0-9]*\).*/\1/' | sort -n | tail -1)
MAXFDS=$(grep '^SAMPLE' "$WORK/soak.out" | sed 's/.* fds=\([0-9]*\).*/\1/' | sort -n | tail -1)

{
  echo "# Soak: connection churn — latest run"
  echo
  echo "Run $START by \`bench/soak.sh\` on $(nproc) cores; load average at start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "$SLOTS websocket clients at once (one thread, \`bench/soak.cpp\`), each over and over: TCP connect, Engine.IO"
  echo "handshake, CONNECT \`/soak\`, subscribe to its own AT_LEAST_ONCE topic, publish one ${PAYLOAD}-byte message with an ack id,"
  echo "receive it and ack it, wait for the publish ack, drop the connection (every ${RST_EVERY}th with a RST). streamfenced"
  echo "ioThreads=$SF_IO_THREADS (0 = one per core), default limits. RSS and open descriptors of streamfenced read from"
  echo "/proc every $((SAMPLE_MS / 1000)) s, and with no client connected before the first and 3 s after the last."
  echo
  echo "| | value |"
  echo "|---|---|"
  echo "| connections churned | $(kv "$R" churned) in $(kv "$R" seconds) s ($(kv "$R" rate)/s) |"
  echo "| deliveries received and acked | $(kv "$R" delivered) |"
  echo "| connections that failed and were redone: connect / reset / stalled 10 s / refused | $(kv "$R" fail_connect) / $(kv "$R" fail_reset) / $(kv "$R" fail_stall) / $(kv "$R" fail_refused) |"
  echo "| RSS idle before / first sample / after 60 s / last sample / max / idle after | $(kv "$IB" rss_kb) / $(kv "$FIRST" rss_kb) / $(kv "$WARM" rss_kb) / $(kv "$LAST" rss_kb) / $MAXRSS / $(kv "$IA" rss_kb) KiB |"
  echo "| open fds idle before / first sample / after 60 s / last sample / max / idle after | $(kv "$IB" fds) / $(kv "$FIRST" fds) / $(kv "$WARM" fds) / $(kv "$LAST" fds) / $MAXFDS / $(kv "$IA" fds) |"
  echo "| server log lines at level error | $ERRORS |"
  echo
  echo "Samples (t in s, connections churned so far, churn per second since the previous sample, RSS KiB, open fds, failed so far):"
  echo
  echo '```'
  grep -E '^(IDLE|SAMPLE)' "$WORK/soak.out"
  echo '```'
} >"$RESULTS/soak.md"
log "wrote $RESULTS/soak.md"
sed -n '9,18p' "$RESULTS/soak.md" >&2
