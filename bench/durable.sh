#!/usr/bin/env bash
# Durable AT_LEAST_ONCE publish throughput (docs/recovery.md): embedded_pub floods a durable
# namespace from T threads (each publish() returns once its batch is fsynced: open loop, no
# window), loadgen holds N acking subscribers. Prints publishes/s accepted (on disk), refused,
# deliveries/s and the journal's batches. Usage: bench/durable.sh [SUBS...] (default 100 1000)
# PROFILE=DIR records the server process with `perf record -g` into DIR/perf-<subs>.data.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${BUILD:-$PWD/build}"
THREADS="${THREADS:-64}"
WINDOW="${WINDOW:-0}"  # > 0: publishAsync with WINDOW in flight per thread instead of blocking publish()
SECONDS_RUN="${SECONDS_RUN:-10}"
PAYLOAD="${PAYLOAD:-100}"
cmake --build "$BUILD" --target embedded_pub loadgen -j2 >/dev/null
WORK=$(mktemp -d /tmp/sf-durable-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
for SUBS in "${@:-100 1000}"; do
  for subs in $SUBS; do
    rm -rf "$WORK/spill"
    cat >"$WORK/sf.json" <<JSON
{"pluginDir": "$BUILD/plugins", "logLevel": "warn",
 "servers": {"b": {"host": "127.0.0.1", "port": 0, "ioThreads": 1, "spillRootPath": "$WORK/spill",
   "connectionStateRecovery": {"maxDisconnectionDurationMs": 60000},
   "namespaces": [{"path": "/feed", "topics": ["t"], "deliveryMode": "AT_LEAST_ONCE", "durable": true,
     "overflowAction": "REJECT_NEW", "maxRetries": 1, "ackTimeoutMs": 30000, "maxInFlight": 256,
     "maxQueuedMessagesPerClient": 1024, "maxQueuedBytesPerClient": 4194304,
     "maxBufferedMessagesPerTopic": 65536}]}}}
JSON
    PREFIX=()
    [ -n "${PROFILE:-}" ] && PREFIX=(perf record -g -o "$PROFILE/perf-$subs.data" --)
    "${PREFIX[@]}" "$BUILD/bench/embedded_pub" --config "$WORK/sf.json" --server b --ns /feed --topic t --rate 0 \
      --threads "$THREADS" --window "$WINDOW" --expect "$subs" --seconds "$SECONDS_RUN" --payload "$PAYLOAD" \
      >"$WORK/pub.out" 2>"$WORK/pub.err" &
    PUB=$!
    for _ in $(seq 100); do grep -q "port=" "$WORK/pub.err" 2>/dev/null && break; sleep 0.1; done
    PORT=$(sed -n 's/.*event=listening server=embedded host=127.0.0.1 port=\([0-9]*\).*/\1/p' "$WORK/pub.err" | head -1)
    "$BUILD/bench/loadgen" --port "$PORT" --ns /feed --topic t --conns "$subs" --ack --warmup 2 \
      --measure $((SECONDS_RUN - 3)) --drain 1 --label "durable-$subs" >"$WORK/lg.out" 2>"$WORK/lg.err" || true
    sleep 1
    kill -TERM "$PUB" 2>/dev/null || true
    wait "$PUB" || true
    PUBRES=$(grep RESULT "$WORK/pub.out" || echo "RESULT n/a")
    LGRES=$(grep RESULT "$WORK/lg.out" || echo "RESULT n/a")
    acc=$(sed -n 's/.*accepted=\([0-9]*\).*/\1/p' <<<"$PUBRES")
    ovl=$(sed -n 's/.*overloaded=\([0-9]*\).*/\1/p' <<<"$PUBRES")
    secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$PUBRES")
    dps=$(sed -n 's/.*deliveries_per_s=\([0-9.]*\).*/\1/p' <<<"$LGRES")
    echo "subs=$subs threads=$THREADS window=$WINDOW payload=$PAYLOAD accepted=$acc refused=$ovl seconds=$secs" \
         "publishes_per_s=$(awk -v a="$acc" -v s="$secs" 'BEGIN{printf "%.0f", a/s}')" \
         "deliveries_per_s=${dps:-n/a} journal_bytes=$(du -sb "$WORK/spill" | cut -f1)"
  done
done
