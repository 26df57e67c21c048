#!/usr/bin/env bash
# Runs every fuzz target (or those named) for FUZZ_SECONDS each, one after another on one
# core, starting from the committed corpus. New inputs go to BUILD/fuzz-work/<target>/corpus,
# crashes to BUILD/fuzz-work/<target>/; a summary line per target at the end. Exits non-zero
# if any target crashed, leaked or tripped a sanitizer.
#   tests/fuzz/run.sh BUILD_DIR SECONDS [target...]
# Extra libFuzzer flags: FUZZ_FLAGS="-runs=10000000" (then SECONDS is only the upper bound).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?build dir}" && pwd)
seconds=${2:?seconds}
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http_request websocket engine_io socket_io json jwt config disk_record hpkv_codec emitter spill_record durable_record session_wire)
summary=()
failed=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/fuzz_$t"
  work="$build/fuzz-work/$t"
  mkdir -p "$work/corpus"
  echo "== fuzz_$t for ${seconds}s"
  start=$(date +%s)
  # The first corpus dir receives new inputs; the committed one is only read.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$work/" ${FUZZ_FLAGS:-} "$work/corpus" "$here/corpus/$t" >"$work/log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | tail -1 | awk '{print $2}')
  crashes=$(ls "$work" | grep -cE '^(crash|leak|timeout|oom)-' || true)
  summary+=("$t runs=${runs:-?} seconds=$secs exit=$rc artifacts=$crashes")
  if [ $rc -ne 0 ]; then
    failed=1
    tail -40 "$work/log"
  fi
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $failed
