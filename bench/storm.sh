#!/usr/bin/env bash
# bench/storm.sh [BUILD_DIR] — the reconnect storm of connection-state recovery (docs/recovery.md):
# N websocket clients of a BEST_EFFORT topic, each holding a pid and an offset, are cut at once
# (TCP RST) and reconnect at once with {pid, offset} while the control-API publisher keeps
# publishing at a steady rate. Per client, from its cut: the CONNECT answer (recovered = same
# sid), the first message it missed, and the moment it holds everything published until its
# CONNECT answer; per client a seq check for gaps and duplicates. streamfenced and the Node
# socket.io@4.8 peer (connectionStateRecovery on) in the same run. Writes bench/results/storm.md.
#
# A second storm at the largest N spreads the reconnects over JITTER_MS (each client waits a
# random 0..JITTER_MS first, as socket.io-client's own randomised backoff would); its times run
# from each client's reconnect start.
#
# Knobs: CONNS_LIST="1000 10000" RATE=20 PRE=3 TIMEOUT=60 CUT=rst SF_IO_THREADS=0 PAYLOAD=100
#        SYSTEMS="sf node" JITTER_MS=1000 (0: no spread storm)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${1:-build}"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
CONNS_LIST="${CONNS_LIST:-1000 10000}"
RATE="${RATE:-20}"
PRE="${PRE:-3}"
TIMEOUT="${TIMEOUT:-60}"
CUT="${CUT:-rst}"
PAYLOAD="${PAYLOAD:-100}"
SF_IO_THREADS="${SF_IO_THREADS:-0}"
SYSTEMS="${SYSTEMS:-sf node}"
JITTER_MS="${JITTER_MS:-1000}"
STORM="$BUILD/bench/storm"; SFD="$BUILD/host/streamfenced"; PLUGIN_DIR="$BUILD/plugins"
RESULTS="$HERE/results"; WORK="$(mktemp -d /tmp/sfstorm.XXXXXX)"
mkdir -p "$RESULTS"
SRV_PID=""
cleanup() { [[ -n "$SRV_PID" ]] && kill "$SRV_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
log() { echo "storm: $*" >&2; }
# N clients need N descriptors here and N more in the server (which inherits this limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# (a build directory configured before bench/storm.cpp existed knows no such target: configure it again)
{ cmake --build "$BUILD" --target storm -j "$(nproc)" || { cmake "$BUILD" && cmake --build "$BUILD" --target storm -j "$(nproc)"; }; } \
  >"$WORK/build.log" 2>&1 || { log "cannot build the storm tool (see below)"; cat "$WORK/build.log" >&2; exit 1; }
HAVE_NODE=0
if command -v node >/dev/null; then
  [[ -d "$HERE/node/node_modules/socket.io" ]] || (cd "$HERE/node" && npm ci --no-audit --no-fund >&2)
  [[ -d "$HERE/node/node_modules/socket.io" ]] && HAVE_NODE=1
fi
(( HAVE_NODE )) || log "node/npm unavailable: the socket.io rows will be n/a"

cat >"$WORK/sf.json" <<EOC
{"pluginDir": "$PLUGIN_DIR",
 "servers": {"b": {"host": "127.0.0.1", "port": 0, "ioThreads": $SF_IO_THREADS,
   "control": {"host": "127.0.0.1", "port": 0},
   "connectionStateRecovery": {"maxDisconnectionDurationMs": 120000},
   "namespaces": [{"path": "/feed", "topics": ["t"], "deliveryMode": "BEST_EFFORT",
                   "overflowAction": "DROP_OLDEST", "maxQueuedMessagesPerClient": 4096}]}}}
EOC

port_of() {  # logfile pattern
  local i p
  for i in $(seq 1 300); do
    p=$(grep -m1 "$2" "$1" 2>/dev/null | grep -o ' port=[0-9]*' | head -1 | cut -d= -f2)
    [[ -n "$p" ]] && { echo "$p"; return 0; }
    sleep 0.1
  done
  return 1
}
kv() { local v; v=$(sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"); echo "${v:-n/a}"; }
ms() { awk -v a="$1" -v t="$TIMEOUT" 'BEGIN { if (a == "n/a") print "n/a"; else if (a < 0) printf "> %s s", t; else if (a >= 1000) printf "%.2f s", a / 1000; else printf "%.0f ms", a }'; }
mb() { awk -v a="$1" 'BEGIN { if (a == "n/a" || a == "" || a == 0) print "n/a"; else printf "%.0f MB", a / 1024 }'; }

# storm_run kind conns jitter_ms -> the RESULT line (or "RESULT ok=0")
storm_run() {
  local kind="$1" conns="$2" jitter="$3" logf="$WORK/srv.log"
  case "$kind" in
    sf) "$SFD" -c "$WORK/sf.json" 2>"$logf" >/dev/null & ;;
    node) node "$HERE/node/server.js" --port 0 --control-port 0 --recovery 2>"$logf" >/dev/null & ;;
  esac
  SRV_PID=$!
  local port ctl
  port=$(port_of "$logf" "event=listening") && ctl=$(port_of "$logf" "event=control_listening") ||
    { log "$kind did not start"; tail -3 "$logf" >&2; kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; SRV_PID=""; echo "RESULT ok=0"; return; }
  local r
  r=$("$STORM" --port "$port" --control "$ctl" --conns "$conns" --rate "$RATE" --pre "$PRE" --cut "$CUT" \
        --timeout "$TIMEOUT" --payload "$PAYLOAD" --jitter-ms "$jitter" --server-pid "$SRV_PID" --label "$kind-$conns-j$jitter" 2>"$WORK/storm.err" |
      grep '^RESULT' | tail -1)
  sed 's/^/  /' "$WORK/storm.err" >&2
  kill -TERM "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; SRV_PID=""
  echo "${r:-RESULT ok=0}"
}

ROWS=()
row() { echo "$*" | tr '|' ',' >&2; ROWS+=("| $* |"); }
START=$(date -u +%Y-%m-%dT%H:%M:%SZ); LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average at start: $LOAD_START; ulimit -n $(ulimit -n)"
LAST_N=$(echo $CONNS_LIST | awk '{ print $NF }')
RUNS=()
for CONNS in $CONNS_LIST; do RUNS+=("$CONNS 0"); done
(( JITTER_MS > 0 )) && RUNS+=("$LAST_N $JITTER_MS")
for RUN in "${RUNS[@]}"; do
  read -r CONNS JIT <<<"$RUN"
  if (( $(ulimit -n) < CONNS + 200 )); then log "ulimit -n $(ulimit -n) is too low for $CONNS clients: skipped"; continue; fi
  WHEN="at once"; (( JIT > 0 )) && WHEN="spread over $JIT ms"
  for KIND in $SYSTEMS; do
    case $KIND in sf) NAME="streamfenced (ioThreads $SF_IO_THREADS)";; node) NAME="socket.io 4.8 (node)";; *) continue;; esac
    if [[ $KIND == node && $HAVE_NODE == 0 ]]; then row "$CONNS $WHEN | $NAME | n/a | | | | | | | | | | |"; continue; fi
    log "$CONNS clients reconnecting $WHEN, $NAME, load $(cut -d' ' -f1-3 /proc/loadavg)"
    LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
    R=$(storm_run "$KIND" "$CONNS" "$JIT")
    if [[ $(kv "$R" ok) != 1 ]]; then row "$CONNS $WHEN | $NAME | did not run | | | | | | | | | | |"; continue; fi
    row "$CONNS $WHEN | $NAME | $(kv "$R" recovered) / $(kv "$R" fresh) / $(( $(kv "$R" failed) + $(kv "$R" no_answer) )) |" \
        "$(ms "$(kv "$R" connect_p50_ms)") / $(ms "$(kv "$R" connect_p99_ms)") / $(ms "$(kv "$R" connect_max_ms)") |" \
        "$(ms "$(kv "$R" all_recovered_ms)") |" \
        "$(ms "$(kv "$R" first_p50_ms)") / $(ms "$(kv "$R" first_p99_ms)") / $(ms "$(kv "$R" first_max_ms)") |" \
        "$(ms "$(kv "$R" caught_p50_ms)") / $(ms "$(kv "$R" caught_p99_ms)") / $(ms "$(kv "$R" caught_max_ms)") |" \
        "$(ms "$(kv "$R" all_caught_ms)") |" \
        "$(kv "$R" gaps) / $(kv "$R" dups) / $(kv "$R" tail_missing) |" \
        "$(kv "$R" retries) | $(kv "$R" listen_overflows) |" \
        "$(kv "$R" srv_cpu) / $(kv "$R" srv_runq) / $(kv "$R" gen_cpu) |" \
        "$(mb "$(kv "$R" rss0_kb)") → $(mb "$(kv "$R" rssmax_kb)") | $LOAD_BEFORE"
  done
done

{
  echo "# Reconnect storm — latest run"
  echo
  echo "Run $START by \`bench/storm.sh\` on $(nproc) cores; load average at start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "N websocket clients of a BEST_EFFORT DROP_OLDEST topic (maxQueuedMessagesPerClient 4096, more than a client away for the whole TIMEOUT misses, so a gap is a loss, not the policy; recovery window 120 s) each"
  echo "receive $PRE messages (so each holds a pid and an offset), then all N TCP connections are cut at once ($CUT) and"
  echo "all N reconnect at once (TCP + websocket Engine.IO handshake + \`40/feed,{pid, offset}\`), no jitter, retried after"
  echo "200 ms if refused. The control-API publisher keeps publishing $RATE msgs/s (~$PAYLOAD B) throughout. Times are per"
  echo "client from its own cut: the CONNECT answer; the first message it missed (socket.io sends missed messages before"
  echo "its CONNECT answer: they count when the answer arrives, as socket.io-client hands them over); caught up = it holds"
  echo "everything published until its CONNECT answer arrived. Percentiles are over all N clients: one that did not get its"
  echo "session back within TIMEOUT=$TIMEOUT s counts as never (\"> $TIMEOUT s\"). \"all\" = from the first cut until the last"
  echo "client (\"> $TIMEOUT s\": not all did). Rows \"spread over J ms\": each client first waits a random 0..J ms (a client's"
  echo "own randomised backoff), and its times run from its reconnect start."
  echo "Gaps/dups are per-client seq checks over the whole run; tail = messages missing at the end."
  echo "streamfenced ioThreads=$SF_IO_THREADS (0 = one per core); the storm tool (one thread), the publisher and the server"
  echo "share the machine; other work was running on it (load column = 1-min load average before the row)."
  echo "CPU columns are averages over the storm (cut to all caught up, or TIMEOUT): cores used by the server and the"
  echo "tool, and the seconds per second the server's threads spent runnable but waiting for a core (/proc schedstat):"
  echo "when that exceeds its CPU, the storm's time is the shared machine's, not the server's work. retries = reconnects"
  echo "refused or reset (a full accept queue) and tried again 200 ms later. Accept-queue overflows: the kernel's"
  echo "ListenOverflows over the storm (system-wide): connections dropped because the listener's accept queue was full"
  echo "(streamfenced listens with a backlog of 1024, node with 511); each such client waits for TCP to resend (1 s, 3 s, 7 s...)."
  echo
  echo "| N | system | recovered / fresh / failed | cut → CONNECT p50 / p99 / max | all recovered | cut → first missed p50 / p99 / max | cut → caught up p50 / p99 / max | all caught up | gaps / dups / tail | retries | accept-queue overflows | server CPU / run-queue wait / tool CPU | server RSS before → max | load |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${ROWS[@]}"
} >"$RESULTS/storm.md"
log "wrote $RESULTS/storm.md"
