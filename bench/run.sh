#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR] — the five scenarios of bench/README.md, streamfenced side by side with the Node
# socket.io@4.8 server and the bare-loop ceiling, all measured in this run.
#
# Prints one line per (scenario, system): scenario, system, figure, ratio to socket.io, ratio to
# ceiling; writes bench/results/latest.md. Ratios are always this system's figure divided by
# the peer's figure from this same run (for latency and memory, lower is better).
#
# Knobs (environment): SUBS=1000 IDLE=10000 WARMUP=3 MEASURE=8 PAYLOAD=100 SF_IO_THREADS=1
#                      SCENARIOS="1 2 3 4 5"
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${1:-build}"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
SUBS="${SUBS:-1000}"
IDLE="${IDLE:-10000}"
WARMUP="${WARMUP:-3}"
MEASURE="${MEASURE:-8}"
PAYLOAD="${PAYLOAD:-100}"
SF_IO_THREADS="${SF_IO_THREADS:-1}"
SCENARIOS="${SCENARIOS:-1 2 3 4 5}"

LOADGEN="${LOADGEN:-$BUILD/bench/loadgen}"
BARELOOP="${BARELOOP:-$BUILD/bench/bareloop}"
SFD="${SFD:-$BUILD/host/streamfenced}"
EMBPUB="${EMBPUB:-$BUILD/bench/embedded_pub}"
PLUGIN_DIR="${PLUGIN_DIR:-$(dirname "$(dirname "$SFD")")/plugins}"
RESULTS="$HERE/results"
WORK="$(mktemp -d /tmp/sfbench.XXXXXX)"
mkdir -p "$RESULTS"

SRV_PID=""
cleanup() {  # the only process of ours that can still be running is the current server
  if [[ -n "$SRV_PID" ]]; then
    kill "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# ------------------------------------------------------------------ prerequisites
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < IDLE + 100 )); then
  log "open-file limit $(ulimit -n) is below IDLE=$IDLE; lowering IDLE"
  IDLE=$(( $(ulimit -n) - 200 ))
fi

if [[ ! -x "$LOADGEN" || ! -x "$BARELOOP" ]]; then
  log "building loadgen and bareloop in $BUILD"
  cmake --build "$BUILD" --target loadgen bareloop -j "$(nproc)" >&2 || { log "cannot build the bench tools"; exit 1; }
fi

HAVE_NODE=0
if command -v node >/dev/null && command -v npm >/dev/null; then
  if [[ ! -d "$HERE/node/node_modules/socket.io" ]]; then
    log "npm ci in bench/node"
    (cd "$HERE/node" && npm ci --no-audit --no-fund >&2) && HAVE_NODE=1
  else
    HAVE_NODE=1
  fi
fi
(( HAVE_NODE )) || log "node/npm unavailable: the socket.io rows will be n/a"
HAVE_SF=0
[[ -x "$SFD" ]] && HAVE_SF=1
(( HAVE_SF )) || log "$SFD not built: the streamfenced rows will be n/a"
HAVE_EMB=0
if (( HAVE_SF )) && [[ ! -x "$EMBPUB" ]]; then
  log "building embedded_pub (embedded-API publisher, links sfhost)"
  cmake --build "$BUILD" --target embedded_pub -j "$(nproc)" >"$WORK/embedded_pub.build.log" 2>&1 ||
    log "embedded_pub does not build (see above); its rows will be n/a"
fi
[[ -x "$EMBPUB" ]] && HAVE_EMB=1

# ------------------------------------------------------------------ servers
SRV_PORT=""; CTL_PORT=""

wait_port_line() {  # logfile pattern -> port
  local f="$1" pat="$2" i
  for i in $(seq 1 150); do
    local p
    p=$(grep -m1 "$pat" "$f" 2>/dev/null | grep -o ' port=[0-9]*' | head -1 | cut -d= -f2)
    if [[ -n "$p" ]]; then echo "$p"; return 0; fi
    sleep 0.1
  done
  return 1
}

start_server() {  # name logfile cmd... ; needs_control(0/1) in NEED_CTL
  local name="$1" logf="$2"; shift 2
  "$@" 2>"$logf" >/dev/null &
  SRV_PID=$!
  SRV_PORT=$(wait_port_line "$logf" "event=listening") || { log "$name did not start:"; tail -5 "$logf" >&2; stop_server; return 1; }
  CTL_PORT=""
  if (( NEED_CTL )); then
    CTL_PORT=$(wait_port_line "$logf" "event=control_listening") || { log "$name: no control port"; stop_server; return 1; }
  fi
  return 0
}

stop_server() {
  if [[ -n "$SRV_PID" ]]; then
    kill "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
  fi
  SRV_PID=""
}

sf_config() {  # file mode overflow [extra namespace JSON fields]
  cat >"$1" <<EOF
{"pluginDir": "$PLUGIN_DIR",
 "servers": {"b": {"host": "127.0.0.1", "port": 0, "ioThreads": $SF_IO_THREADS,
   "control": {"host": "127.0.0.1", "port": 0},
   "namespaces": [{"path": "/feed", "topics": ["t"], "deliveryMode": "$2",
                   "overflowAction": "$3", "maxQueuedMessagesPerClient": 1024${4:-}}]}}}
EOF
}

# system: node | sf | sf-alo | node-ack | bare-single | bare-batch ; extra bareloop args in BARE_ARGS
start_system() {
  local sys="$1"
  NEED_CTL=1
  case "$sys" in
    node) (( HAVE_NODE )) || return 1
          start_server node "$WORK/node.log" node "$HERE/node/server.js" --port 0 --control-port 0 ;;
    node-ack) (( HAVE_NODE )) || return 1
          start_server node "$WORK/node.log" node "$HERE/node/server.js" --port 0 --control-port 0 --ack ;;
    sf)   (( HAVE_SF )) || return 1
          sf_config "$WORK/sf.json" BEST_EFFORT DROP_OLDEST
          start_server streamfenced "$WORK/sf.log" "$SFD" -c "$WORK/sf.json" ;;
    sf-alo) (( HAVE_SF )) || return 1
          sf_config "$WORK/sf.json" AT_LEAST_ONCE REJECT_NEW ', "maxRetries": 3, "ackTimeoutMs": 5000, "maxInFlight": 32'
          start_server streamfenced "$WORK/sf.log" "$SFD" -c "$WORK/sf.json" ;;
    sf-emb) (( HAVE_EMB )) || return 1
          NEED_CTL=0
          sf_config "$WORK/sf.json" BEST_EFFORT DROP_OLDEST
          start_server embedded_pub "$WORK/emb.log" "$EMBPUB" --config "$WORK/sf.json" --server b \
                --payload "$PAYLOAD" ${EMB_ARGS:-} ;;
    bare-single|bare-batch)
          NEED_CTL=0
          local mode=${sys#bare-}
          start_server bareloop "$WORK/bare.log" "$BARELOOP" --port 0 --mode "$mode" --k 16 \
                --payload "$PAYLOAD" ${BARE_ARGS:-} ;;
  esac
}

# run_load system label loadgen-args... -> prints the RESULT line (or "RESULT ok=0")
run_load() {
  local sys="$1" label="$2"; shift 2
  if ! start_system "$sys"; then echo "RESULT ok=0 label=$label"; return; fi
  sleep 0.5
  local ctl=()
  [[ -n "$CTL_PORT" ]] && ctl=(--control "$CTL_PORT")
  local out
  out=$("$LOADGEN" --port "$SRV_PORT" "${ctl[@]}" --server-pid "$SRV_PID" --payload "$PAYLOAD" \
        --label "$label" "$@" 2>>"$WORK/loadgen.log" | grep '^RESULT' | tail -1)
  tail -1 "$WORK/loadgen.log" >&2
  stop_server
  echo "${out:-RESULT ok=0 label=$label}"
}

kv() {  # kv "RESULT ..." key
  local v
  v=$(sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1")
  if [[ -z "$v" ]] || grep -q ' ok=0' <<<"$1"; then echo "n/a"; else echo "$v"; fi
}
ratio() {  # a b -> a/b with 2 decimals, or n/a
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}
lat() {  # microseconds -> "850 us" / "12.3 ms" / "4.21 s"
  awk -v a="$1" 'BEGIN { if (a == "n/a") print "n/a"; else if (a >= 1e6) printf "%.2f s", a / 1e6;
                         else if (a >= 1e3) printf "%.2f ms", a / 1e3; else printf "%.0f us", a }'
}
fmt_rate() { awk -v a="$1" 'BEGIN { if (a == "n/a") print "n/a"; else if (a >= 1e6) printf "%.2f M/s", a / 1e6; else printf "%.1f k/s", a / 1e3 }'; }

ROWS=()
emit() {  # scenario system figure-text ratio-io ratio-ceiling notes
  echo "$1, $2, $3, $4, $5"
  ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 |")
}

LOAD_ARGS=(--conns "$SUBS" --warmup "$WARMUP" --measure "$MEASURE")
cpu_note() {
  local g; g=$(kv "$1" gen_cpu)
  echo "loadgen CPU $g, server CPU $(kv "$1" srv_cpu) cores$(awk -v g="$g" 'BEGIN { if (g != "n/a" && g > 0.85) print " (LOADGEN SATURATED)" }')"
}

log "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; figures are only comparable on an idle machine)"
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ scenario 1
SF_P99_HALF_NODE=n/a; RI_S=""; RA_S=""; RS_S=""
N1=n/a; S1=n/a; B1S=n/a; B1B=n/a; R_N1=""; R_S1=""
if [[ " $SCENARIOS " == *" 1 "* || " $SCENARIOS " == *" 2 "* || " $SCENARIOS " == *" 5 "* ]]; then
  log "scenario 1: fan-out BEST_EFFORT to $SUBS subscribers, ${PAYLOAD}-byte payload, flat out"
  R_N1=$(run_load node s1-node "${LOAD_ARGS[@]}")
  R_S1=$(run_load sf s1-sf "${LOAD_ARGS[@]}")
  R_B1S=$(BARE_ARGS="--expect $SUBS" run_load bare-single s1-bare-single "${LOAD_ARGS[@]}")
  R_B1B=$(BARE_ARGS="--expect $SUBS" run_load bare-batch s1-bare-batch "${LOAD_ARGS[@]}")
  N1=$(kv "$R_N1" deliveries_per_s); S1=$(kv "$R_S1" deliveries_per_s)
  B1S=$(kv "$R_B1S" deliveries_per_s); B1B=$(kv "$R_B1B" deliveries_per_s)
  for pair in "socket.io 4.8 (node)|$R_N1" "streamfenced|$R_S1" "bare loop, 1 write/delivery|$R_B1S" "bare loop, K=16 frames/write|$R_B1B"; do
    name=${pair%%|*}; r=${pair#*|}; f=$(kv "$r" deliveries_per_s)
    emit "1 fan-out $SUBS subs" "$name" "$(fmt_rate "$f") deliveries" "$(ratio "$f" "$N1")" "$(ratio "$f" "$B1B")" \
         "$(cpu_note "$r"); lost $(kv "$r" lost); p99 at saturation $(lat "$(kv "$r" p99_us)") (queueing of the 32-message window)"
  done
fi

# ------------------------------------------------------------------ scenario 2
if [[ " $SCENARIOS " == *" 2 "* ]]; then
  for base in node sf; do
    if [[ $base == node ]]; then sat=$N1; what="half of socket.io's saturation"; else sat=$S1; what="half of streamfenced's saturation"; fi
    if [[ "$sat" == n/a ]]; then log "scenario 2 ($what): no saturation figure, skipped"; continue; fi
    rate=$(awk -v d="$sat" -v n="$SUBS" 'BEGIN { printf "%.0f", d / n / 2 }')
    log "scenario 2: latency at $what = $rate msgs/s x $SUBS subscribers"
    RL_N=$(run_load node "s2-node-$base" "${LOAD_ARGS[@]}" --rate "$rate" --batch 64)
    RL_S=$(run_load sf "s2-sf-$base" "${LOAD_ARGS[@]}" --rate "$rate" --batch 64)
    RL_E=$(EMB_ARGS="--expect $SUBS --rate $rate" run_load sf-emb "s2-emb-$base" "${LOAD_ARGS[@]}")
    RL_B=$(BARE_ARGS="--expect $SUBS --rate $rate" run_load bare-batch "s2-bare-$base" "${LOAD_ARGS[@]}")
    np99=$(kv "$RL_N" p99_us); bp99=$(kv "$RL_B" p99_us)
    [[ $base == node ]] && SF_P99_HALF_NODE=$(kv "$RL_S" p99_us)
    for pair in "socket.io 4.8 (node)|$RL_N" "streamfenced|$RL_S" "streamfenced, embedded publish()|$RL_E" "bare loop, K=16|$RL_B"; do
      name=${pair%%|*}; r=${pair#*|}
      emit "2 latency @ $what ($rate msg/s)" "$name" "p50 $(lat "$(kv "$r" p50_us)"), p99 $(lat "$(kv "$r" p99_us)")" \
           "$(ratio "$(kv "$r" p99_us)" "$np99")" "$(ratio "$(kv "$r" p99_us)" "$bp99")" \
           "p99.9 $(lat "$(kv "$r" p999_us)"), max $(lat "$(kv "$r" max_us)"); $(fmt_rate "$(kv "$r" deliveries_per_s)"); lost $(kv "$r" lost); $(cpu_note "$r")"
    done
  done
fi

# ------------------------------------------------------------------ scenario 3
if [[ " $SCENARIOS " == *" 3 "* ]]; then
  log "scenario 3: $IDLE idle subscribed connections, RSS per connection"
  RI_N=$(run_load node s3-node --idle "$IDLE" --hold 3)
  RI_S=$(run_load sf s3-sf --idle "$IDLE" --hold 3)
  RI_B=$(BARE_ARGS="--expect 999999999" run_load bare-batch s3-bare --idle "$IDLE" --hold 3)
  nb=$(kv "$RI_N" rss_per_conn_b); bb=$(kv "$RI_B" rss_per_conn_b)
  for pair in "socket.io 4.8 (node)|$RI_N" "streamfenced|$RI_S" "bare loop|$RI_B"; do
    name=${pair%%|*}; r=${pair#*|}; f=$(kv "$r" rss_per_conn_b)
    emit "3 idle $IDLE conns" "$name" "$(awk -v b="$f" 'BEGIN { if (b == "n/a") print "n/a"; else printf "%.2f KB RSS/conn", b / 1024 }')" \
         "$(ratio "$f" "$nb")" "$(ratio "$f" "$bb")" \
         "RSS $(kv "$r" rss0_kb) -> $(kv "$r" rss1_kb) KiB for $(kv "$r" conns) conns; kernel (not in RSS, both ends): socket slabs +$(kv "$r" kernel_slab_per_conn_b) B/conn, TCP buffers +$(kv "$r" kernel_tcp_per_conn_b) B/conn"
  done
fi

# ------------------------------------------------------------------ scenario 4
if [[ " $SCENARIOS " == *" 4 "* ]]; then
  log "scenario 4: AT_LEAST_ONCE to $SUBS acking subscribers, flat out"
  RA_N=$(run_load node-ack s4-node "${LOAD_ARGS[@]}" --ack)
  RA_S=$(run_load sf-alo s4-sf "${LOAD_ARGS[@]}" --ack)
  na=$(kv "$RA_N" acks_per_s)
  for pair in "socket.io 4.8 (node, acks counted, no redelivery)|$RA_N" "streamfenced AT_LEAST_ONCE|$RA_S"; do
    name=${pair%%|*}; r=${pair#*|}; f=$(kv "$r" acks_per_s)
    emit "4 at-least-once $SUBS subs" "$name" "$(fmt_rate "$(kv "$r" deliveries_per_s)") delivered, $(fmt_rate "$f") acked" \
         "$(ratio "$f" "$na")" "$(ratio "$f" "$B1B")" \
         "lost $(kv "$r" lost) of $(kv "$r" published) msgs x $(kv "$r" open) subs, dups $(kv "$r" dups); ceiling = scenario 1 K=16 bare loop; $(cpu_note "$r")"
  done
fi

# ------------------------------------------------------------------ scenario 5
if [[ " $SCENARIOS " == *" 5 "* ]]; then
  log "scenario 5: one subscriber stops reading among $SUBS (DROP_OLDEST), flat out"
  RS_N=$(run_load node s5-node "${LOAD_ARGS[@]}" --slow 1)
  RS_S=$(run_load sf s5-sf "${LOAD_ARGS[@]}" --slow 1)
  n5=$(kv "$RS_N" deliveries_per_s)
  for trip in "socket.io 4.8 (node)|$RS_N|$R_N1" "streamfenced|$RS_S|$R_S1"; do
    name=${trip%%|*}; rest=${trip#*|}; r=${rest%%|*}; r1=${rest#*|}; f=$(kv "$r" deliveries_per_s)
    emit "5 one slow subscriber of $SUBS" "$name" "$(fmt_rate "$f") to the others, p99 $(lat "$(kv "$r" p99_us)")" \
         "$(ratio "$f" "$n5")" "$(ratio "$f" "$B1B")" \
         "vs scenario 1: throughput x$(ratio "$f" "$(kv "$r1" deliveries_per_s)"), p99 x$(ratio "$(kv "$r" p99_us)" "$(kv "$r1" p99_us)"); server RSS $(kv "$r" rss_start_kb) -> $(kv "$r" rss_end_kb) KiB over the window; lost (others) $(kv "$r" lost)"
  done
fi

# ------------------------------------------------------------------ targets
TARGETS=()
check() {  # description measured-text awk-condition-on-v value
  local verdict
  if [[ "$4" == n/a ]]; then verdict="not measured"
  else verdict=$(awk -v v="$4" "BEGIN { print (($3) ? \"met\" : \"MISSED\") }"); fi
  TARGETS+=("| $1 | $2 | $verdict |")
  log "target: $1: $2: $verdict"
}
r1=$(ratio "$S1" "$N1")
check "fan-out ≥ 10× socket.io (same run)" "${r1}× ($(fmt_rate "$S1") vs $(fmt_rate "$N1"))" "v >= 10" "$r1"
check "fan-out ≈ 1 M deliveries/s" "$(fmt_rate "$S1")" "v >= 1000000" "$S1"
check "p99 ≤ 5 ms at half of socket.io's saturation" "$(lat "$SF_P99_HALF_NODE")" "v <= 5000" "$SF_P99_HALF_NODE"
v=$(kv "${RI_S:-RESULT ok=0}" rss_per_conn_b)
check "≤ 4 KB RSS per idle connection" "$v B" "v <= 4096" "$v"
v=$(kv "${RA_S:-RESULT ok=0}" lost)
check "AT_LEAST_ONCE: zero loss" "lost $v, dups $(kv "${RA_S:-RESULT ok=0}" dups)" "v == 0" "$v"
v=$(ratio "$(kv "${RS_S:-RESULT ok=0}" deliveries_per_s)" "$S1")
check "slow subscriber: others' throughput within 10% of scenario 1" "×$v" "v >= 0.9" "$v"
v=$(ratio "$(kv "${RS_S:-RESULT ok=0}" p99_us)" "$(kv "${R_S1:-RESULT ok=0}" p99_us)")
check "slow subscriber: others' p99 within 10% of scenario 1" "×$v" "v <= 1.1" "$v"
v=$(awk -v a="$(kv "${RS_S:-RESULT ok=0}" rss_start_kb)" -v b="$(kv "${RS_S:-RESULT ok=0}" rss_end_kb)" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else print b - a }')
check "slow subscriber: server RSS flat (≤ 2 MiB growth over the window)" "${v} KiB" "v <= 2048" "$v"

# ------------------------------------------------------------------ report
{
  echo "# StreamFence benchmarks — latest run"
  echo
  echo "Run $START by \`bench/run.sh\` on $(nproc) cores, $(uname -r); load average at start $LOAD_START."
  echo "Subscribers $SUBS, payload ~$PAYLOAD bytes, warm-up ${WARMUP} s, measurement window ${MEASURE} s per run;"
  echo "streamfenced ioThreads=$SF_IO_THREADS; loadgen, servers and publisher on the same machine (127.0.0.1)."
  echo "Ratios divide this row's figure by the peer's figure measured in this same run"
  echo "(deliveries: higher is better; latency and memory: lower is better). Ceiling = bare loop writing"
  echo "pre-encoded frames, K=16 per write (scenario 3: the bare loop's own per-connection memory)."
  echo
  echo "| Scenario | System | Figure | vs socket.io | vs ceiling | Notes |"
  echo "| --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "## streamfenced against its targets"
  echo
  echo "| Target | Measured | Verdict |"
  echo "| --- | --- | --- |"
  printf '%s\n' "${TARGETS[@]}"
  echo
  echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
} >"$RESULTS/latest.md"
log "wrote $RESULTS/latest.md"
