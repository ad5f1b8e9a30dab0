#!/usr/bin/env bash
# Runs `switchboard serve` under callgrind, for the pipeline bench:
#
#   SWITCHBOARD_BENCH_BINARY=host/benches/support/callgrind.sh \
#   CALLGRIND_SIDECAR=<path to a release switchboard binary> \
#   CALLGRIND_OUT=<directory> \
#   SWITCHBOARD_BENCH_EVENTS=1000 SWITCHBOARD_BENCH_CUSTOMERS=100 \
#   SWITCHBOARD_BENCH_SINGLE_EVENTS=0 SWITCHBOARD_BENCH_PACED_EVENTS=0 \
#   cargo bench -p switchboard --bench pipeline
#
# Counting starts once /readyz answers 200 (start-up and compiling the rule
# module are left out) and the counts are dumped every 10 s, since the bench
# ends the sidecar with SIGKILL: each dump `out.<pid>.<n>` covers one span.
# Other subcommands (`fields provision`) run as they are.
set -euo pipefail
bin="${CALLGRIND_SIDECAR:?set CALLGRIND_SIDECAR to the switchboard binary to profile}"
out="${CALLGRIND_OUT:-${TMPDIR:-/tmp}/switchboard-callgrind}"
[ "${1:-}" = serve ] || exec "$bin" "$@"
mkdir -p "$out"
me=$$
(
  until port=$(ss -ltnpH 2>/dev/null | grep "pid=$me," | awk '{print $4}' | head -1 | sed 's/.*://') \
    && [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
    sleep 1
  done
  callgrind_control -i on "$me"
  while kill -0 "$me" 2>/dev/null; do
    sleep 10
    callgrind_control -d "$me" || true
  done
) </dev/null >/dev/null 2>&1 &
exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/out.%p" "$bin" "$@"
