#!/usr/bin/env bash
# bench/control_publish.sh — control-API publish throughput: messages/s that one keep-alive
# publisher connection gets through POST /v1/publish, for three request shapes:
#   single   one message per request, the bare-object form
#   batch1   one message per request, the array (batch) form
#   batch250 250 messages per request, the array form
# each with SUBS websocket subscribers of the topic (0 = the publish path alone; >0 adds the
# encoding and fan-out a published message costs), against one or two streamfenced builds.
# Rows of several builds are interleaved (A B A B ...) so a machine that gets busier during the
# run shifts every build alike; the figure is the median of REPEAT runs. Beside messages/s it
# reports the server's CPU time per accepted message (utime + stime from /proc over the
# flood), which other load on a shared machine disturbs far less than a rate.
#
#   bench/control_publish.sh NAME=BUILD_DIR [NAME=BUILD_DIR ...]
#   e.g. bench/control_publish.sh before=/work/wt-before/build now=build
#
# BUILD_DIR needs host/streamfenced and plugins/ (overflow_drop_oldest.so); flood_pub and
# loadgen come from the first build that has them (the client side is the same for all).
# Knobs: SECONDS_PER_RUN=5 REPEAT=5 PAYLOAD=100 SUBS_LIST="0 10" SHAPES="single batch1 batch250"
# Prints one line per row and a markdown table on stdout.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-5}"
REPEAT="${REPEAT:-5}"
PAYLOAD="${PAYLOAD:-100}"
SUBS_LIST="${SUBS_LIST:-0 10}"
SHAPES="${SHAPES:-single batch1 batch250}"
[[ $# -ge 1 ]] || { echo "usage: $0 NAME=BUILD_DIR [NAME=BUILD_DIR ...]" >&2; exit 2; }

NAMES=(); DIRS=()
for a in "$@"; do NAMES+=("${a%%=*}"); DIRS+=("$(cd "${a#*=}" && pwd)"); done
FLOOD=""; LOADGEN=""
for d in "${DIRS[@]}"; do
  [[ -z $FLOOD && -x $d/bench/flood_pub ]] && FLOOD=$d/bench/flood_pub
  [[ -z $LOADGEN && -x $d/bench/loadgen ]] && LOADGEN=$d/bench/loadgen
done
[[ -n $FLOOD && -n $LOADGEN ]] || { echo "control_publish: no build has bench/flood_pub and bench/loadgen" >&2; exit 1; }
for d in "${DIRS[@]}"; do
  [[ -x $d/host/streamfenced && -f $d/plugins/overflow_drop_oldest.so ]] ||
    { echo "control_publish: $d lacks host/streamfenced or plugins/overflow_drop_oldest.so" >&2; exit 1; }
done

WORK="$(mktemp -d /tmp/sfctlpub.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
log() { echo "control_publish: $*" >&2; }

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

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo n/a; }
TICK=$(getconf CLK_TCK)

# run_one BUILD_DIR SHAPE SUBS -> "accepted_msgs_per_s server_cpu_us_per_msg" (or n/a n/a)
run_one() {
  local dir="$1" shape="$2" subs="$3"
  cat >"$WORK/sf.json" <<EOC
{"pluginDir": "$dir/plugins",
 "servers": {"b": {"host": "127.0.0.1", "port": 0,
   "control": {"host": "127.0.0.1", "port": 0},
   "namespaces": [{"path": "/feed", "topics": ["t"], "deliveryMode": "BEST_EFFORT",
                   "overflowAction": "DROP_OLDEST", "maxQueuedMessagesPerClient": 1024}]}}}
EOC
  "$dir/host/streamfenced" -c "$WORK/sf.json" 2>"$WORK/srv.log" >/dev/null &
  local srv=$!; PIDS+=("$srv")
  local port ctl
  port=$(port_of "$WORK/srv.log" "event=listening") && ctl=$(port_of "$WORK/srv.log" "event=control_listening") ||
    { log "streamfenced of $dir did not start"; tail -3 "$WORK/srv.log" >&2; kill "$srv"; wait "$srv" 2>/dev/null; echo "n/a n/a"; return; }
  local lg=""
  if (( subs > 0 )); then
    "$LOADGEN" --port "$port" --conns "$subs" --warmup 1 --measure "$((SECONDS_PER_RUN + 1))" --drain 0 \
        --payload "$PAYLOAD" --label ctlpub >/dev/null 2>"$WORK/lg.err" &
    lg=$!
    local i; for i in $(seq 1 300); do grep -q "subscribed in" "$WORK/lg.err" && break; sleep 0.1; done
  fi
  local args=(--control "$ctl" --threads 1 --seconds "$SECONDS_PER_RUN" --payload "$PAYLOAD")
  case $shape in
    single) args+=(--single) ;;
    batch1) args+=(--batch 1) ;;
    batch250) args+=(--batch 250) ;;
  esac
  local c0 c1 r
  c0=$(cpu_ticks "$srv")
  r=$("$FLOOD" "${args[@]}" 2>"$WORK/fp.err" | grep '^RESULT' | tail -1)
  c1=$(cpu_ticks "$srv")
  [[ -n $lg ]] && { kill "$lg" 2>/dev/null; wait "$lg" 2>/dev/null; }
  kill -TERM "$srv"; wait "$srv" 2>/dev/null
  local acc err n; acc=$(kv "$r" accepted_per_s); err=$(kv "$r" errors); n=$(kv "$r" accepted)
  [[ $err != 0 && $err != n/a ]] && log "$shape subs=$subs: $err errors ($(kv "$r" refused) refused)"
  echo "$acc $(awk -v a="$c0" -v b="$c1" -v n="$n" -v t="$TICK" 'BEGIN { if (a == "n/a" || b == "n/a" || n == "n/a" || n + 0 == 0) print "n/a"; else printf "%.2f", (b - a) * 1e6 / t / n }')"
}

median() { printf '%s\n' "$@" | grep -v n/a | sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else print a[int((NR + 1) / 2)] }'; }
rate() { awk -v a="$1" 'BEGIN { if (a == "n/a") print "n/a"; else if (a >= 1e6) printf "%.2f M", a / 1e6; else if (a >= 1e3) printf "%.1f k", a / 1e3; else printf "%.0f", a }'; }

START=$(date -u +%Y-%m-%dT%H:%M:%SZ); LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average at start: $LOAD_START"
declare -A FIG CPU
for SUBS in $SUBS_LIST; do
  for SHAPE in $SHAPES; do
    declare -A RUNS=() CPUS=()
    for rep in $(seq 1 "$REPEAT"); do
      for i in "${!NAMES[@]}"; do
        read -r v c <<<"$(run_one "${DIRS[$i]}" "$SHAPE" "$SUBS")"
        RUNS[$i]="${RUNS[$i]:-} $v"
        CPUS[$i]="${CPUS[$i]:-} $c"
        log "subs=$SUBS $SHAPE ${NAMES[$i]} run $rep: $v msgs/s, server CPU $c us/msg"
      done
    done
    for i in "${!NAMES[@]}"; do
      # shellcheck disable=SC2086
      FIG["$SUBS $SHAPE $i"]=$(median ${RUNS[$i]})
      # shellcheck disable=SC2086
      CPU["$SUBS $SHAPE $i"]=$(median ${CPUS[$i]})
    done
    unset RUNS CPUS
  done
done

echo "Run $START on $(nproc) cores; load average at start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg)."
echo "One keep-alive publisher connection, flat out, ${SECONDS_PER_RUN} s per run, median of $REPEAT interleaved runs; payload ~$PAYLOAD B;"
echo "BEST_EFFORT DROP_OLDEST topic. Server CPU/msg: the server's utime + stime over the flood / accepted messages (lower is better)."
echo
hdr="| subscribers | request |"; sep="|---|---|"
for n in "${NAMES[@]}"; do hdr+=" $n msgs/s |"; sep+="---|"; done
(( ${#NAMES[@]} == 2 )) && { hdr+=" ${NAMES[1]} / ${NAMES[0]} |"; sep+="---|"; }
for n in "${NAMES[@]}"; do hdr+=" $n server CPU/msg |"; sep+="---|"; done
(( ${#NAMES[@]} == 2 )) && { hdr+=" ${NAMES[1]} / ${NAMES[0]} |"; sep+="---|"; }
echo "$hdr"; echo "$sep"
for SUBS in $SUBS_LIST; do
  for SHAPE in $SHAPES; do
    case $SHAPE in single) what="1 message, bare object";; batch1) what="1 message, array (batch form)";; batch250) what="250 messages, array (batch form)";; esac
    line="| $SUBS | $what |"
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f×", a / b }'; }
    for i in "${!NAMES[@]}"; do line+=" $(rate "${FIG["$SUBS $SHAPE $i"]}") |"; done
    (( ${#NAMES[@]} == 2 )) && line+=" $(ratio "${FIG["$SUBS $SHAPE 1"]}" "${FIG["$SUBS $SHAPE 0"]}") |"
    for i in "${!NAMES[@]}"; do line+=" ${CPU["$SUBS $SHAPE $i"]} µs |"; done
    (( ${#NAMES[@]} == 2 )) && line+=" $(ratio "${CPU["$SUBS $SHAPE 1"]}" "${CPU["$SUBS $SHAPE 0"]}") |"
    echo "$line"
  done
done
