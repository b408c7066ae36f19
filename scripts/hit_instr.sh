#!/usr/bin/env bash
# User-space instructions per request of a real server (callgrind): the
# release hello-world axum server of the load harness (benches/load_server)
# without the guard, with it as the router's layer (`Router::layer`, inside
# axum's routing: `guard`; `noop-layer` is a layer that does nothing, given
# the same way: what axum's per-route layering costs by itself) and around
# the router (`guard-outer`), each sent
# the same keep-alive GET /mcp with
# the same Authorization header (in guard mode, a token-cache hit). Counting
# starts once the server answers (startup, key generation included, is not
# counted); each mode is measured with 1 and with N+1 requests on one
# connection, and the difference divided by N is the per-request cost.
#
# Usage: scripts/hit_instr.sh [N (default 1000)]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
. scripts/need.sh
need valgrind valgrind
(cd benches && cargo build --release --quiet --bin load_server)
bin=benches/target/release/load_server
addr=127.0.0.1:18195
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

measure() { # mode count -> instructions
  local mode=$1 count=$2 pid
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg" \
    "$bin" "$mode" "$addr" >"$out/token" 2>/dev/null &
  pid=$!
  for _ in $(seq 300); do
    [ -s "$out/token" ] && curl -s -o /dev/null "http://$addr/mcp" && break
    sleep 0.1
  done
  callgrind_control -i on "$pid" >/dev/null 2>&1
  python3 - "$(head -n1 "$out/token")" "$count" "$addr" <<'PY'
import http.client, sys
token, n, addr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
host, port = addr.split(":")
c = http.client.HTTPConnection(host, int(port))
for _ in range(n):
    c.request("GET", "/mcp", headers={"Authorization": "Bearer " + token})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  awk '/^totals:/ {print $2}' "$out/cg"
}

printf '%-12s %14s %14s\n' mode 'instr/request' 'guard adds'
plain=0
for mode in plain noop-layer guard guard-outer; do
  one=$(measure "$mode" 1)
  many=$(measure "$mode" $((n + 1)))
  per=$(( (many - one) / n ))
  [ "$mode" = plain ] && plain=$per
  printf '%-12s %14d %14d\n' "$mode" "$per" $(( per - plain ))
done
