#!/usr/bin/env bash
# Load harness: a release axum hello-world server without and with the guard
# (every request carries one valid token, so the guard answers from its
# verified-token cache), driven by wrk on 127.0.0.1 with server and load
# generator pinned to different cores. Modes are interleaved; prints req/s,
# p50, p99 per run and the guard/plain ratios.
#
# Usage: scripts/load.sh [SECONDS_PER_RUN (default 10)] [ROUNDS (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
rounds="${2:-3}"
addr=127.0.0.1:18081

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk (Debian package)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
fi
(cd benches && cargo build --release --quiet --bin load_server)
bin=benches/target/release/load_server

run() { # mode -> "req/s p50 p99"
  local mode=$1 out token pid
  out=$(mktemp)
  taskset -c 0 "$bin" "$mode" "$addr" >"$out" &
  pid=$!
  for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
  sleep 0.3
  token=$(head -n1 "$out")
  local hdr=()
  [ "$mode" = guard ] && hdr=(-H "Authorization: Bearer $token")
  local res
  res=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" --latency "${hdr[@]}" "http://$addr/mcp")
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

plain_total=0; guard_total=0
printf '%-6s %-6s %12s %10s %10s\n' round mode req/s p50 p99
for r in $(seq "$rounds"); do
  for mode in plain guard; do
    read -r rps p50 p99 < <(run "$mode")
    printf '%-6s %-6s %12s %10s %10s\n' "$r" "$mode" "$rps" "$p50" "$p99"
    if [ "$mode" = plain ]; then plain_total=$(awk -v a="$plain_total" -v b="$rps" 'BEGIN {print a + b}')
    else guard_total=$(awk -v a="$guard_total" -v b="$rps" 'BEGIN {print a + b}'); fi
  done
done
echo "ratio guard/plain (mean req/s over $rounds rounds): $(awk -v g="$guard_total" -v p="$plain_total" 'BEGIN {printf "%.3f", g / p}')"
