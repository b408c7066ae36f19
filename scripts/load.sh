#!/usr/bin/env bash
# Load harness: a release axum hello-world server without and with the guard
# (every request, in every mode, carries the same valid token, so the guard
# answers from its verified-token cache), driven by wrk on 127.0.0.1 with
# server and load generator pinned to different cores. Modes are
# interleaved; prints req/s, p50, p99 per run and each mode's ratio to plain.
#
# Modes (LOAD_MODES, default "plain guard"): plain, guard (`Router::layer`),
# guard-outer (the guard around the router), noop-layer (a layer that does
# nothing, given to `Router::layer`), guard-redis (the guard of one fleet
# replica sharing state through a local redis-server, started here on the
# load generator's core).
#
# Usage: [LOAD_MODES="plain guard guard-redis"] scripts/load.sh [SECONDS_PER_RUN (default 10)] [ROUNDS (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
rounds="${2:-3}"
addr=127.0.0.1:18081

. scripts/need.sh
need wrk wrk
modes="${LOAD_MODES:-plain guard}"
(cd benches && cargo build --release --quiet --bin load_server)
bin=benches/target/release/load_server
redis_pid=""
if [[ " $modes " == *" guard-redis "* ]]; then
  need redis-server redis-server
  taskset -c 1 redis-server --port 18082 --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
  redis_pid=$!
  trap 'kill $redis_pid 2>/dev/null || true' EXIT
  export REDIS_URL=redis://127.0.0.1:18082/
  sleep 0.5
fi

run() { # mode -> "req/s p50 p99"
  local mode=$1 out token pid
  out=$(mktemp)
  taskset -c 0 "$bin" "$mode" "$addr" >"$out" &
  pid=$!
  for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
  sleep 0.3
  token=$(head -n1 "$out")
  local res
  res=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" --latency -H "Authorization: Bearer $token" "http://$addr/mcp")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$out"
  local non2xx
  non2xx=$(echo "$res" | awk '/Non-2xx/ {print $NF}')
  if [ -n "$non2xx" ]; then echo "error: $mode answered $non2xx non-2xx responses" >&2; exit 1; fi
  local rps p50 p99
  rps=$(echo "$res" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$res" | awk '$1=="50%" {print $2}')
  p99=$(echo "$res" | awk '$1=="99%" {print $2}')
  echo "$rps $p50 $p99"
}

declare -A total
for mode in $modes; do total[$mode]=0; done
printf '%-6s %-12s %12s %10s %10s\n' round mode req/s p50 p99
for r in $(seq "$rounds"); do
  for mode in $modes; do
    read -r rps p50 p99 < <(run "$mode")
    printf '%-6s %-12s %12s %10s %10s\n' "$r" "$mode" "$rps" "$p50" "$p99"
    total[$mode]=$(awk -v a="${total[$mode]}" -v b="$rps" 'BEGIN {print a + b}')
  done
done
for mode in $modes; do
  [ "$mode" = plain ] && continue
  echo "ratio $mode/plain (mean req/s over $rounds rounds): $(awk -v g="${total[$mode]}" -v p="${total[plain]}" 'BEGIN {printf "%.3f", g / p}')"
done
