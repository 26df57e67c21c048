#!/usr/bin/env bash
# bench/overload.sh [BUILD_DIR] — the open-loop overload scenario (docs/message-path.md):
# publishers that do NOT wait for subscribers, against 1,000 and 10,000 websocket subscribers
# of a BEST_EFFORT DROP_OLDEST topic (maxQueuedMessagesPerClient 1024), next to the
# closed-window saturation of the same build in the same run, the Node socket.io@4.8 peer
# under the same flood and the bare-loop ceiling.
#
# Per row: deliveries/s during the flood, ratio to streamfenced's closed-window saturation
# (same subscriber count, same run), ratio to socket.io under the same flood and to the
# ceiling, what the publisher was told (accepted / refused per s), server RSS when the
# flood starts and at the end of the window (and its maximum), and the time from SIGTERM
# (sent while the publisher is still flooding) to exit. Writes bench/results/overload.md.
#
# Knobs: SUBS_LIST="1000 10000" WARMUP=2 MEASURE=6 PAYLOAD=100 BATCH=20 SF_IO_THREADS=0 PUBS="1 4"
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${1:-build}"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
SUBS_LIST="${SUBS_LIST:-1000 10000}"
WARMUP="${WARMUP:-2}"
MEASURE="${MEASURE:-6}"
PAYLOAD="${PAYLOAD:-100}"
BATCH="${BATCH:-20}"
PUBS="${PUBS:-1 4}"
SF_IO_THREADS="${SF_IO_THREADS:-0}"
LOADGEN="$BUILD/bench/loadgen"; BARELOOP="$BUILD/bench/bareloop"; FLOOD="$BUILD/bench/flood_pub"
SFD="$BUILD/host/streamfenced"; EMBPUB="$BUILD/bench/embedded_pub"; PLUGIN_DIR="$BUILD/plugins"
RESULTS="$HERE/results"; WORK="$(mktemp -d /tmp/sfoverload.XXXXXX)"
mkdir -p "$RESULTS"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
log() { echo "overload: $*" >&2; }
ulimit -n 65536 2>/dev/null || true

cmake --build "$BUILD" --target loadgen bareloop flood_pub embedded_pub -j "$(nproc)" >"$WORK/build.log" 2>&1 ||
  { log "cannot build the bench tools (see $WORK/build.log)"; cat "$WORK/build.log" >&2; exit 1; }
HAVE_NODE=0
if command -v node >/dev/null; then
  [[ -d "$HERE/node/node_modules/socket.io" ]] || (cd "$HERE/node" && npm ci --no-audit --no-fund >&2)
  [[ -d "$HERE/node/node_modules/socket.io" ]] && HAVE_NODE=1
fi

cat >"$WORK/sf.json" <<EOC
{"pluginDir": "$PLUGIN_DIR",
 "servers": {"b": {"host": "127.0.0.1", "port": 0, "ioThreads": $SF_IO_THREADS,
   "control": {"host": "127.0.0.1", "port": 0},
   "namespaces": [{"path": "/feed", "topics": ["t"], "deliveryMode": "BEST_EFFORT",
                   "overflowAction": "DROP_OLDEST", "maxQueuedMessagesPerClient": 1024}]}}}
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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
rate() { awk -v a="$1" 'BEGIN { if (a == "n/a") print "n/a"; else if (a >= 1e6) printf "%.2f M/s", a / 1e6; else if (a >= 1e3) printf "%.1f k/s", a / 1e3; else printf "%.0f /s", a }'; }
mb() { awk -v a="$1" 'BEGIN { if (a == "n/a" || a == "") print "n/a"; else printf "%.0f MB", a / 1024 }'; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo n/a; }

# start_server kind logfile -> SRV_PID, SRV_PORT, CTL_PORT
start_server() {
  local kind="$1" logf="$2"; shift 2
  case "$kind" in
    sf) "$SFD" -c "$WORK/sf.json" 2>"$logf" >/dev/null & ;;
    node) node "$HERE/node/server.js" --port 0 --control-port 0 2>"$logf" >/dev/null & ;;
    emb) "$EMBPUB" --config "$WORK/sf.json" --server b --payload "$PAYLOAD" "$@" 2>"$logf" >"$WORK/emb.out" & ;;
    bare) "$BARELOOP" --port 0 --mode batch --k 16 --payload "$PAYLOAD" "$@" 2>"$logf" >/dev/null & ;;
  esac
  SRV_PID=$!; PIDS+=("$SRV_PID")
  SRV_PORT=$(port_of "$logf" "event=listening") || { log "$kind did not start"; tail -3 "$logf" >&2; return 1; }
  CTL_PORT=""
  if [[ $kind == sf || $kind == node ]]; then CTL_PORT=$(port_of "$logf" "event=control_listening") || return 1; fi
}

# flood_run kind subs pubs [offered msgs/s] -> RESULT-ish line of key=values
flood_run() {
  local kind="$1" subs="$2" pubs="$3" offered="${4:-0}" dur
  dur=$(awk -v w="$WARMUP" -v m="$MEASURE" 'BEGIN { print w + m + 3 }')
  local extra=()
  [[ $kind == emb ]] && extra=(--rate 0 --threads "$pubs" --expect "$subs" --seconds "$dur")
  start_server "$kind" "$WORK/srv.log" "${extra[@]}" || { echo "ok=0"; return; }
  "$LOADGEN" --port "$SRV_PORT" --conns "$subs" --warmup "$WARMUP" --measure "$MEASURE" --drain 0 \
      --server-pid "$SRV_PID" --payload "$PAYLOAD" --label "flood-$kind-$pubs" >"$WORK/lg.out" 2>"$WORK/lg.err" &
  local lg=$!
  local i; for i in $(seq 1 600); do grep -q "subscribed in" "$WORK/lg.err" && break; sleep 0.1; done
  local rss0; rss0=$(rss "$SRV_PID")
  local fp=""
  if [[ $kind != emb ]]; then
    "$FLOOD" --control "$CTL_PORT" --threads "$pubs" --batch "$BATCH" --seconds "$dur" --payload "$PAYLOAD" \
        --rate "$offered" >"$WORK/fp.out" 2>"$WORK/fp.err" &
    fp=$!
  fi
  local rmax=$rss0
  while kill -0 "$lg" 2>/dev/null; do
    local r; r=$(rss "$SRV_PID"); [[ "$r" != n/a && "$r" -gt "$rmax" ]] && rmax=$r; sleep 0.2
  done
  wait "$lg"
  local lgr; lgr=$(grep '^RESULT' "$WORK/lg.out" | tail -1)
  local rss1; rss1=$(rss "$SRV_PID")
  local t0 t1; t0=$(date +%s%N)
  kill -TERM "$SRV_PID"
  local waited=0
  while kill -0 "$SRV_PID" 2>/dev/null && (( waited < 300 )); do sleep 0.05; waited=$((waited + 1)); done
  t1=$(date +%s%N)
  local exitms=$(( (t1 - t0) / 1000000 ))
  kill -0 "$SRV_PID" 2>/dev/null && { kill -KILL "$SRV_PID"; exitms=">15000"; }
  wait "$SRV_PID" 2>/dev/null
  local pubr
  if [[ -n "$fp" ]]; then wait "$fp" 2>/dev/null; pubr=$(grep '^RESULT' "$WORK/fp.out" | tail -1)
  else pubr=$(grep '^RESULT' "$WORK/emb.out" | tail -1); fi
  local acc ref secs
  acc=$(kv "$pubr" accepted); secs=$(kv "$pubr" seconds)
  ref=$(kv "$pubr" refused); [[ $ref == n/a ]] && ref=$(kv "$pubr" overloaded)
  echo "ok=1 dps=$(kv "$lgr" deliveries_per_s) p99_us=$(kv "$lgr" p99_us) gen_cpu=$(kv "$lgr" gen_cpu) srv_cpu=$(kv "$lgr" srv_cpu) rss0=$rss0 rss1=$rss1 rssmax=$rmax exit_ms=$exitms acc_s=$(ratio "$acc" "$secs") ref_s=$(ratio "$ref" "$secs")"
}

ROWS=(); ROWS_PENDING=()
row() { echo "$*" | tr '|' ',' >&2; ROWS+=("| $* |"); }
START=$(date -u +%Y-%m-%dT%H:%M:%SZ); LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average at start: $LOAD_START"
for SUBS in $SUBS_LIST; do
  # Closed window: the publisher keeps at most 256 messages per subscriber in flight (lanes
  # hold 1024, so nothing is dropped): the rate the server reaches when it is just saturated.
  start_server sf "$WORK/srv.log" || continue
  SAT=$("$LOADGEN" --port "$SRV_PORT" --control "$CTL_PORT" --window 256 --batch 64 --conns "$SUBS" --warmup "$WARMUP" --measure "$MEASURE" \
        --server-pid "$SRV_PID" --payload "$PAYLOAD" --label sat 2>>"$WORK/lg.err" | grep '^RESULT' | tail -1)
  kill -TERM "$SRV_PID"; wait "$SRV_PID" 2>/dev/null
  SATD=$(kv "$SAT" deliveries_per_s)
  start_server bare "$WORK/srv.log" --expect "$SUBS" || continue
  BARE=$("$LOADGEN" --port "$SRV_PORT" --conns "$SUBS" --warmup "$WARMUP" --measure "$MEASURE" --drain 0 \
         --payload "$PAYLOAD" --label bare 2>>"$WORK/lg.err" | grep '^RESULT' | tail -1)
  kill -TERM "$SRV_PID"; wait "$SRV_PID" 2>/dev/null
  BARED=$(kv "$BARE" deliveries_per_s)
  row "$SUBS | streamfenced, closed window (saturation) | $(rate "$SATD") | 1.00 | – | $(ratio "$SATD" "$BARED") | publisher waits: $(rate "$(kv "$SAT" published_per_s)") msgs | RSS $(mb "$(kv "$SAT" rss_start_kb)") → $(mb "$(kv "$SAT" rss_end_kb)") | –"
  row "$SUBS | bare loop K=16 (ceiling) | $(rate "$BARED") | – | – | 1.00 | generated in the loop | – | –"
  # 10x overload at a fixed offered rate: ten times what the closed window reached.
  TENX=$(awk -v d="$SATD" -v n="$SUBS" 'BEGIN { if (d == "n/a") print 0; else printf "%.0f", 10 * d / n }')
  if [[ "$TENX" != 0 ]]; then
    log "subs=$SUBS kind=sf 10x overload: $TENX msgs/s offered"
    R=$(flood_run sf "$SUBS" 1 "$TENX")
    D=$(kv "$R" dps)
    row "$SUBS | streamfenced, control API, 10× overload ($TENX msgs/s offered, open loop) | $(rate "$D") | $(ratio "$D" "$SATD") | – | $(ratio "$D" "$BARED") | accepted $(rate "$(kv "$R" acc_s)"), refused $(rate "$(kv "$R" ref_s)") | $(mb "$(kv "$R" rss0)") → $(mb "$(kv "$R" rss1)") (max $(mb "$(kv "$R" rssmax)")) | $(kv "$R" exit_ms) ms"
  fi
  declare -A NODE=()
  for PUB in $PUBS; do
    for KIND in sf emb node; do
      [[ $KIND == node && $HAVE_NODE == 0 ]] && continue
      log "subs=$SUBS kind=$KIND publishers=$PUB"
      R=$(flood_run "$KIND" "$SUBS" "$PUB")
      D=$(kv "$R" dps)
      [[ $KIND == node ]] && NODE[$PUB]=$D
      case $KIND in sf) NAME="streamfenced, control API ×$PUB";; emb) NAME="streamfenced, embed publish() ×$PUB";; node) NAME="socket.io 4.8, control API ×$PUB";; esac
      ROWS_PENDING+=("$SUBS|$NAME|$D|$R")
    done
    for e in "${ROWS_PENDING[@]}"; do
      IFS='|' read -r s name d r <<<"$e"
      row "$s | $name (flood) | $(rate "$d") | $(ratio "$d" "$SATD") | $(ratio "$d" "${NODE[$PUB]:-n/a}") | $(ratio "$d" "$BARED") | accepted $(rate "$(kv "$r" acc_s)"), refused $(rate "$(kv "$r" ref_s)") | $(mb "$(kv "$r" rss0)") → $(mb "$(kv "$r" rss1)") (max $(mb "$(kv "$r" rssmax)")) | $(kv "$r" exit_ms) ms"
    done
    ROWS_PENDING=()
  done
done

{
  echo "# Open-loop overload — latest run"
  echo
  echo "Run $START by \`bench/overload.sh\` on $(nproc) cores; load average at start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "BEST_EFFORT DROP_OLDEST topic, maxQueuedMessagesPerClient 1024, payload ~$PAYLOAD B, control-API batches of $BATCH,"
  echo "warm-up $WARMUP s then $MEASURE s measured; the flood publishers never wait for subscribers. SIGTERM is sent while they"
  echo "are still flooding. Ratios: this row's deliveries/s over streamfenced's closed-window saturation (same"
  echo "subscriber count, same run), over socket.io under the same flood, over the bare-loop ceiling."
  echo "streamfenced ioThreads=$SF_IO_THREADS (0 = one per core); loadgen, publisher and server share the machine."
  echo
  echo "| subs | system | delivered/s | vs saturation | vs socket.io | vs ceiling | publisher told | server RSS flood start → end | exit after SIGTERM |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${ROWS[@]}"
} >"$RESULTS/overload.md"
log "wrote $RESULTS/overload.md"
