#!/usr/bin/env bash
# bench/dashboard.sh [BUILD_DIR] — what an open dashboard costs (docs/dashboard.md): scenario 1
# of run.sh (BEST_EFFORT fan-out to SUBS websocket subscribers, flat out) run PAIRS times with
# no viewer and PAIRS times with a dashboard stream open (GET /v1/stats/stream read by curl,
# one snapshot a second), interleaved closed/open so machine noise hits both alike. Same
# server config, same loadgen, same run. Writes bench/results/dashboard.md.
#
# Knobs (environment): SUBS=1000 WARMUP=3 MEASURE=8 PAYLOAD=100 SF_IO_THREADS=1 PAIRS=4 VIEWERS=1
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${1:-build}"
[[ "$BUILD" = /* ]] || BUILD="$ROOT/$BUILD"
SUBS="${SUBS:-1000}"
WARMUP="${WARMUP:-3}"
MEASURE="${MEASURE:-8}"
PAYLOAD="${PAYLOAD:-100}"
SF_IO_THREADS="${SF_IO_THREADS:-1}"
PAIRS="${PAIRS:-4}"
VIEWERS="${VIEWERS:-1}"
LOADGEN="${LOADGEN:-$BUILD/bench/loadgen}"
SFD="${SFD:-$BUILD/host/streamfenced}"
PLUGIN_DIR="${PLUGIN_DIR:-$(dirname "$(dirname "$SFD")")/plugins}"
RESULTS="$HERE/results"
WORK="$(mktemp -d /tmp/sfdash.XXXXXX)"
mkdir -p "$RESULTS"

SRV_PID=""
VIEWER_PIDS=()
stop_viewers() {
  local p
  for p in "${VIEWER_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  VIEWER_PIDS=()
}
stop_server() {
  if [[ -n "$SRV_PID" ]]; then kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; fi
  SRV_PID=""
}
cleanup() { stop_viewers; stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "bench: $*" >&2; }

ulimit -n 65536 2>/dev/null || true
[[ -x "$SFD" ]] || { log "$SFD not built"; exit 1; }
if [[ ! -x "$LOADGEN" ]]; then
  cmake --build "$BUILD" --target loadgen -j "$(nproc)" >&2 || { log "cannot build loadgen"; exit 1; }
fi
command -v curl >/dev/null || { log "curl is needed for the dashboard stream"; exit 1; }

cat >"$WORK/sf.json" <<JSON
{"pluginDir": "$PLUGIN_DIR",
 "servers": {"b": {"host": "127.0.0.1", "port": 0, "ioThreads": $SF_IO_THREADS,
   "control": {"host": "127.0.0.1", "port": 0},
   "namespaces": [{"path": "/feed", "topics": ["t"], "deliveryMode": "BEST_EFFORT",
                   "overflowAction": "DROP_OLDEST", "maxQueuedMessagesPerClient": 1024}]}}}
JSON

port_of() {  # logfile pattern
  local i p
  for i in $(seq 1 150); do
    p=$(grep -m1 "$2" "$1" 2>/dev/null | grep -o ' port=[0-9]*' | head -1 | cut -d= -f2)
    [[ -n "$p" ]] && { echo "$p"; return 0; }
    sleep 0.1
  done
  return 1
}

# one_run open(0/1) -> deliveries/s (or n/a); the stream's event count goes to $WORK/events
one_run() {
  local open="$1" logf="$WORK/sf.$RANDOM.log"
  "$SFD" -c "$WORK/sf.json" 2>"$logf" >/dev/null &
  SRV_PID=$!
  local port ctl
  port=$(port_of "$logf" "event=listening") && ctl=$(port_of "$logf" "event=control_listening") ||
    { log "streamfenced did not start"; tail -5 "$logf" >&2; stop_server; echo n/a; return; }
  local v
  if (( open )); then
    for v in $(seq 1 "$VIEWERS"); do
      curl -sN "http://127.0.0.1:$ctl/v1/stats/stream" >"$WORK/stream.$v" 2>/dev/null &
      VIEWER_PIDS+=($!)
    done
  fi
  sleep 0.5
  local out
  out=$("$LOADGEN" --port "$port" --control "$ctl" --server-pid "$SRV_PID" --payload "$PAYLOAD" \
        --label "dash-$open" --conns "$SUBS" --warmup "$WARMUP" --measure "$MEASURE" 2>>"$WORK/loadgen.log" |
        grep '^RESULT' | tail -1)
  local events=0 busy=n/a
  if (( open )); then
    events=$(grep -c '^data: ' "$WORK/stream.1" 2>/dev/null || echo 0)
    grep -q '"delivered":[1-9]' "$WORK/stream.1" || { log "the stream showed no deliveries"; events=0; }
    # The loops' time per snapshot (loops.busyUs), median over the run's snapshots.
    busy=$(grep -o '"busyUs":[0-9]*' "$WORK/stream.1" | cut -d: -f2 | sort -g |
           awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "n/a" }')
  fi
  stop_viewers
  stop_server
  echo "$events $busy" >"$WORK/events"
  local d srvcpu
  d=$(sed -n 's/.* deliveries_per_s=\([^ ]*\).*/\1/p' <<<"$out")
  srvcpu=$(sed -n 's/.* srv_cpu=\([^ ]*\).*/\1/p' <<<"$out")
  echo "${d:-n/a} ${srvcpu:-n/a}"
}

fmt() { awk -v a="$1" 'BEGIN { if (a == "n/a") print "n/a"; else if (a >= 1e6) printf "%.3f M/s", a / 1e6; else printf "%.1f k/s", a / 1e3 }'; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "load average before the run: $LOAD_START"
CLOSED=(); OPEN=(); CNS=(); ONS=(); BUSY=(); ROWS=()
for i in $(seq 1 "$PAIRS"); do
  read -r c ccpu < <(one_run 0)
  read -r o ocpu < <(one_run 1)
  read -r ev busy <"$WORK/events"
  # Server CPU per delivery (ns): what each delivery cost the server, whatever else ran.
  cns=$(awk -v c="$ccpu" -v d="$c" 'BEGIN { if (c == "n/a" || d == "n/a" || d == 0) print "n/a"; else printf "%.0f", c / d * 1e9 }')
  ons=$(awk -v c="$ocpu" -v d="$o" 'BEGIN { if (c == "n/a" || d == "n/a" || d == 0) print "n/a"; else printf "%.0f", c / d * 1e9 }')
  log "pair $i: closed $(fmt "$c") (server CPU $ccpu, $cns ns/delivery), open $(fmt "$o") (server CPU $ocpu, $ons ns/delivery, $ev stream events, loops $busy us/snapshot)"
  CLOSED+=("$c"); OPEN+=("$o"); CNS+=("$cns"); ONS+=("$ons"); BUSY+=("$busy")
  ROWS+=("| $i | $(fmt "$c") | $(fmt "$o") | $ccpu / $ocpu | $cns / $ons | $ev | $busy |")
done

# The absolute cost, which machine noise cannot hide: SUBS idle subscribed connections, the
# server's CPU time over IDLE_S seconds without a viewer, then IDLE_S seconds with one.
IDLE_S="${IDLE_S:-10}"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
IDLE_CLOSED=n/a; IDLE_OPEN=n/a
idle_cost() {
  local logf="$WORK/idle.log"
  "$SFD" -c "$WORK/sf.json" 2>"$logf" >/dev/null &
  SRV_PID=$!
  local port ctl
  port=$(port_of "$logf" "event=listening") && ctl=$(port_of "$logf" "event=control_listening") || { stop_server; return; }
  "$LOADGEN" --port "$port" --idle "$SUBS" --hold $(( 2 * IDLE_S + 30 )) >/dev/null 2>>"$WORK/loadgen.log" &
  local lg=$!
  sleep 8  # connected and subscribed
  local hz t0 t1 t2
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$SRV_PID"); sleep "$IDLE_S"; t1=$(cpu_ticks "$SRV_PID")
  curl -sN "http://127.0.0.1:$ctl/v1/stats/stream" >"$WORK/idle.stream" 2>/dev/null &
  VIEWER_PIDS+=($!)
  sleep "$IDLE_S"; t2=$(cpu_ticks "$SRV_PID")
  stop_viewers
  kill "$lg" 2>/dev/null; wait "$lg" 2>/dev/null
  stop_server
  if [[ -n "$t0" && -n "$t2" ]] && grep -q "\"total\":$SUBS," "$WORK/idle.stream"; then
    IDLE_CLOSED=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$IDLE_S" 'BEGIN { printf "%.1f", (b - a) * 1000 / hz / s }')
    IDLE_OPEN=$(awk -v a="$t1" -v b="$t2" -v hz="$hz" -v s="$IDLE_S" 'BEGIN { printf "%.1f", (b - a) * 1000 / hz / s }')
  else
    log "idle cost: the stream did not show $SUBS lanes"
  fi
}
idle_cost
log "idle server with $SUBS lanes: CPU $IDLE_CLOSED ms/s without a viewer, $IDLE_OPEN ms/s with one"

# Medians and means of each side; the drop is 1 - open/closed.
stats() { printf '%s\n' "$@" | grep -v n/a | sort -g | awk '{ a[NR] = $1; s += $1 } END {
  if (NR == 0) { print "n/a n/a"; exit } m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.0f %.0f\n", m, s / NR }'; }
read -r CMED CMEAN < <(stats "${CLOSED[@]}")
read -r OMED OMEAN < <(stats "${OPEN[@]}")
drop() { awk -v c="$1" -v o="$2" 'BEGIN { if (c == "n/a" || o == "n/a" || c == 0) print "n/a"; else printf "%.1f%%", (1 - o / c) * 100 }'; }
DMED=$(drop "$CMED" "$OMED"); DMEAN=$(drop "$CMEAN" "$OMEAN")
read -r CNSMED _ < <(stats "${CNS[@]}")
read -r ONSMED _ < <(stats "${ONS[@]}")
read -r BUSYMED _ < <(stats "${BUSY[@]}")
CPUUP=$(awk -v c="$CNSMED" -v o="$ONSMED" 'BEGIN { if (c == "n/a" || o == "n/a" || c == 0) print "n/a"; else printf "%+.1f%%", (o / c - 1) * 100 }')
# The loops' share of time spent on snapshots: busyUs once a second, over SF_IO_THREADS loops.
SHARE=$(awk -v b="$BUSYMED" -v n="$SF_IO_THREADS" 'BEGIN { if (b == "n/a") print "n/a"; else printf "%.4f%%", b / (1e6 * (n > 0 ? n : 1)) * 100 }')
log "closed median $(fmt "$CMED"), open median $(fmt "$OMED"): drop $DMED (means: $DMEAN)"

{
  echo "# Dashboard cost — latest run"
  echo
  echo "Run $START by \`bench/dashboard.sh\` on $(nproc) cores, $(uname -r); load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Scenario 1 of run.sh: BEST_EFFORT DROP_OLDEST fan-out to $SUBS websocket subscribers, ~$PAYLOAD-byte payload,"
  echo "flat out (closed window), warm-up ${WARMUP} s, measurement ${MEASURE} s, streamfenced ioThreads=$SF_IO_THREADS."
  echo "\"open\" = $VIEWERS dashboard stream(s) (\`GET /v1/stats/stream\`, read by curl) connected for the whole run;"
  echo "closed and open runs alternate, each on a fresh server."
  echo
  echo "| pair | deliveries closed | open | server CPU closed / open (cores) | server CPU per delivery closed / open (ns) | stream events | loops' time per snapshot (us, median) |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "| | closed | open | open vs closed |"
  echo "| --- | --- | --- | --- |"
  echo "| deliveries/s, median | $(fmt "$CMED") | $(fmt "$OMED") | drop **$DMED** |"
  echo "| deliveries/s, mean | $(fmt "$CMEAN") | $(fmt "$OMEAN") | drop $DMEAN |"
  echo "| server CPU per delivery, median | $CNSMED ns | $ONSMED ns | $CPUUP |"
  echo
  echo "The loops spent a median $BUSYMED us per snapshot (one a second): $SHARE of the loops' time."
  echo
  echo "Idle server, $SUBS subscribed connections (one lane each), CPU time measured from /proc over ${IDLE_S} s each:"
  echo "$IDLE_CLOSED ms per second without a viewer, $IDLE_OPEN ms per second with a dashboard stream open"
  echo "(snapshot collection, JSON, the stream's writes; /proc counts in 10 ms ticks)."
} >"$RESULTS/dashboard.md"
log "wrote $RESULTS/dashboard.md"
