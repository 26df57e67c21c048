#!/usr/bin/env bash
# bench/cluster.sh [BUILD_DIR] — 1,000 subscribers spread over three streamfenced nodes sharing
# a redis-server, publishes on one node, beside one node alone with the same 1,000 subscribers
# and the same publisher, in the same run (bench/README.md "Cluster"). Fixed publish rates: the
# publisher (loadgen --rate) and 1/3 of the subscribers talk to node A, two passive loadgens
# hold the other 2/3 on nodes B and C. Deliveries/s are summed over the three loadgens, p99 is
# the worst of them (publish -> receive, CLOCK_MONOTONIC on one host).
# Writes bench/results/cluster.md. Knobs: SUBS=1000 RATES="200 1000" WARMUP=3 MEASURE=8
# PAYLOAD=100 SF_IO_THREADS=1 DELIVERY=BEST_EFFORT (or AT_LEAST_ONCE: the loadgens ack).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${1:-build}"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
SUBS="${SUBS:-1000}"
RATES="${RATES:-200 1000}"
WARMUP="${WARMUP:-3}"
MEASURE="${MEASURE:-8}"
PAYLOAD="${PAYLOAD:-100}"
SF_IO_THREADS="${SF_IO_THREADS:-1}"
DELIVERY="${DELIVERY:-BEST_EFFORT}"
LOADGEN="${LOADGEN:-$BUILD/bench/loadgen}"
SFD="${SFD:-$BUILD/host/streamfenced}"
PLUGIN_DIR="${PLUGIN_DIR:-$BUILD/plugins}"
REDIS="${REDIS:-$(command -v redis-server || echo /usr/bin/redis-server)}"
RESULTS="$HERE/results"
WORK="$(mktemp -d /tmp/sfcluster.XXXXXX)"
mkdir -p "$RESULTS"

PIDS=()
cleanup() {  # only processes this script started, by pid
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "cluster-bench: $*" >&2; }

for b in "$LOADGEN" "$SFD" "$REDIS"; do [[ -x "$b" ]] || { log "missing $b (build loadgen and streamfenced; scripts/setup.sh --test installs redis-server)"; exit 1; }; done
ulimit -n 65536 2>/dev/null || true

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_port_line() {  # logfile pattern -> port
  local f="$1" pat="$2" i p
  for i in $(seq 1 150); do
    p=$(grep -m1 "$pat" "$f" 2>/dev/null | grep -o ' port=[0-9]*' | head -1 | cut -d= -f2)
    if [[ -n "$p" ]]; then echo "$p"; return 0; fi
    sleep 0.1
  done
  return 1
}

ALO_FIELDS=""
ACK=()
if [[ "$DELIVERY" == AT_LEAST_ONCE ]]; then
  ALO_FIELDS=', "maxRetries": 3, "ackTimeoutMs": 5000, "maxInFlight": 32'
  ACK=(--ack)
fi
OVERFLOW=DROP_OLDEST
[[ "$DELIVERY" == AT_LEAST_ONCE ]] && OVERFLOW=REJECT_NEW

node_config() {  # file nodeId|"" redisPort
  local cluster=""
  [[ -n "$2" ]] && cluster="\"cluster\": {\"redis\": {\"url\": \"redis://127.0.0.1:$3\"}, \"nodeId\": \"$2\", \"socketioEmitterKey\": null},"
  cat >"$1" <<JSON
{"pluginDir": "$PLUGIN_DIR", $cluster
 "servers": {"b": {"host": "127.0.0.1", "port": 0, "ioThreads": $SF_IO_THREADS,
   "control": {"host": "127.0.0.1", "port": 0},
   "namespaces": [{"path": "/feed", "topics": ["t"], "deliveryMode": "$DELIVERY",
                   "overflowAction": "$OVERFLOW", "maxQueuedMessagesPerClient": 1024$ALO_FIELDS}]}}}
JSON
}

start_node() {  # name config -> sets NODE_PID NODE_PORT NODE_CTL
  "$SFD" -c "$2" 2>"$WORK/$1.log" >/dev/null &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  NODE_PORT=$(wait_port_line "$WORK/$1.log" "event=listening") || { log "$1 did not start"; tail -5 "$WORK/$1.log" >&2; exit 1; }
  NODE_CTL=$(wait_port_line "$WORK/$1.log" "event=control_listening") || { log "$1: no control port"; exit 1; }
}

stop_pids() { for p in "$@"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }

kv() { local v; v=$(sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"); echo "${v:-n/a}"; }

ROWS=()
one_node_once() {  # rate
  node_config "$WORK/alone.json" "" 0
  start_node alone "$WORK/alone.json"
  local pid=$NODE_PID
  sleep 0.5
  local out
  out=$("$LOADGEN" --port "$NODE_PORT" --control "$NODE_CTL" --rate "$1" --conns "$SUBS" --server-pid "$pid" \
        --payload "$PAYLOAD" --warmup "$WARMUP" --measure "$MEASURE" "${ACK[@]}" --label alone 2>>"$WORK/loadgen.log" | grep '^RESULT' | tail -1)
  stop_pids "$pid"
  [[ -n "$out" ]] || { log "one node at $1 msgs/s: no result"; tail -3 "$WORK/loadgen.log" >&2; tail -3 "$WORK/alone.log" >&2; }
  echo "$out"
}

cluster_run_once() {  # rate
  local rport; rport=$(free_port)
  "$REDIS" --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning >"$WORK/redis.log" 2>&1 &
  local rpid=$!
  PIDS+=("$rpid")
  sleep 0.3
  local pids=() ports=() ctls=()
  for n in a b c; do
    node_config "$WORK/node-$n.json" "node-$n" "$rport"
    start_node "node-$n" "$WORK/node-$n.json"
    pids+=("$NODE_PID"); ports+=("$NODE_PORT"); ctls+=("$NODE_CTL")
  done
  for c in "${ctls[@]}"; do
    for i in $(seq 1 100); do
      curl -s "http://127.0.0.1:$c/health" | grep -q '"link":"UP"' && break
      sleep 0.1
    done
  done
  local share=$(( SUBS / 3 )) first=$(( SUBS - 2 * (SUBS / 3) ))
  # B and C: passive subscribers; their window starts a little later and ends before A's.
  "$LOADGEN" --port "${ports[1]}" --conns "$share" --server-pid "${pids[1]}" --payload "$PAYLOAD" \
      --warmup $(( WARMUP + 2 )) --measure "$MEASURE" "${ACK[@]}" --label node-b >"$WORK/b.out" 2>>"$WORK/loadgen.log" &
  local lb=$!
  "$LOADGEN" --port "${ports[2]}" --conns "$share" --server-pid "${pids[2]}" --payload "$PAYLOAD" \
      --warmup $(( WARMUP + 2 )) --measure "$MEASURE" "${ACK[@]}" --label node-c >"$WORK/c.out" 2>>"$WORK/loadgen.log" &
  local lc=$!
  sleep 1
  local outa
  outa=$("$LOADGEN" --port "${ports[0]}" --control "${ctls[0]}" --rate "$1" --conns "$first" --server-pid "${pids[0]}" \
        --payload "$PAYLOAD" --warmup "$WARMUP" --measure $(( MEASURE + 2 )) "${ACK[@]}" --label node-a 2>>"$WORK/loadgen.log" | grep '^RESULT' | tail -1)
  wait "$lb" "$lc"
  local outb outc
  outb=$(grep '^RESULT' "$WORK/b.out" | tail -1)
  outc=$(grep '^RESULT' "$WORK/c.out" | tail -1)
  local rtt
  rtt=$(curl -s "http://127.0.0.1:${ctls[0]}/metrics" | sed -n 's/^streamfence_cluster_redis_rtt_seconds \(.*\)/\1/p')
  stop_pids "${pids[@]}" "$rpid"
  echo "A $outa"
  echo "B $outb"
  echo "C $outc"
  echo "RTT $rtt"
}

# A loaded machine sometimes starves the publisher long enough for the control listener to
# close its idle connection (loadgen then reports nothing): such a run is repeated, twice at most.
one_node() {
  local out i
  for i in 1 2 3; do
    out=$(one_node_once "$1")
    [[ -n "$out" ]] && break
  done
  echo "$out"
}
cluster_run() {
  local out i
  for i in 1 2 3; do
    out=$(cluster_run_once "$1")
    grep -q '^A RESULT' <<<"$out" && grep -q '^B RESULT' <<<"$out" && grep -q '^C RESULT' <<<"$out" && break
    log "cluster run at $1 msgs/s incomplete, repeating"
  done
  echo "$out"
}

START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average $LOAD_START (2 cores shared: figures are only comparable within this run)"
for rate in $RATES; do
  alone=$(one_node "$rate")
  c=$(cluster_run "$rate")
  ra=$(sed -n 's/^A //p' <<<"$c"); rb=$(sed -n 's/^B //p' <<<"$c"); rc=$(sed -n 's/^C //p' <<<"$c"); rtt=$(sed -n 's/^RTT //p' <<<"$c")
  d1=$(kv "$alone" deliveries_per_s); p1=$(kv "$alone" p99_us)
  # n/a anywhere (a starved publisher, a loadgen that reported nothing) makes the row n/a
  dsum=$(awk -v a="$(kv "$ra" deliveries_per_s)" -v b="$(kv "$rb" deliveries_per_s)" -v c="$(kv "$rc" deliveries_per_s)" 'BEGIN { if (a == "n/a" || b == "n/a" || c == "n/a") print "n/a"; else printf "%.0f", a + b + c }')
  p99=$(printf '%s\n' "$(kv "$ra" p99_us)" "$(kv "$rb" p99_us)" "$(kv "$rc" p99_us)" | sort -g | tail -1)
  grep -q n/a <<<"$(kv "$ra" p99_us) $(kv "$rb" p99_us) $(kv "$rc" p99_us)" && p99=n/a
  ratio=$(awk -v a="$dsum" -v b="$d1" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }')
  ms() { awk -v a="$1" 'BEGIN { if (a == "n/a") print "n/a"; else printf "%.2f", a / 1000 }'; }
  added=$(awk -v a="$p99" -v b="$p1" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.2f", (a - b) / 1000 }')
  line="| $DELIVERY | $rate | $SUBS | $d1 | $(ms "$p1") | $dsum | $(ms "$p99") | $ratio | $added | $(kv "$ra" deliveries_per_s)/$(kv "$rb" deliveries_per_s)/$(kv "$rc" deliveries_per_s) | $(kv "$ra" lost) | $(awk -v r="$rtt" 'BEGIN{ if (r == "" || r < 0) print "n/a"; else printf "%.2f", r * 1000 }') |"
  echo "$line"
  ROWS+=("$line")
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "# Cluster benchmark ($START)"
  echo
  echo "\`bench/cluster.sh\`: $SUBS subscribers, one node alone vs three nodes + redis-server on this host (2 cores shared"
  echo "by everything, load average $LOAD_START at start, $LOAD_END at end). Publishes on node A at a fixed rate"
  echo "(msgs/s); the subscribers of the cluster run are split 1/3 per node. Payload $PAYLOAD B, SF_IO_THREADS=$SF_IO_THREADS."
  echo "p99 = publish -> receive; cluster p99 = the worst node. Targets (issue 13): cluster deliveries >= 0.7x one node, <= 2 ms added p99."
  echo
  echo "| delivery | rate msgs/s | subs | one node deliveries/s | one node p99 ms | cluster deliveries/s | cluster p99 ms | ratio | added p99 ms | per node a/b/c | lost (node A subs) | Redis RTT ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
} >"$RESULTS/cluster.md"
log "wrote $RESULTS/cluster.md"
