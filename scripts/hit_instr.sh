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
# With --discovered, the guard discovers a real authorization server
# (oidc-provider, scripts/hit_as.mjs: RFC 8414 metadata, then its JWKS) as a
# deployment does, and each mode is measured with that server's RS256 tokens
# of about 0.7, 2 and 4.7 KB (needs tests/interop's npm install).
#
# Usage: scripts/hit_instr.sh [--discovered] [N (default 1000)]
set -euo pipefail
cd "$(dirname "$0")/.."
discovered=""
if [ "${1:-}" = --discovered ]; then discovered=1; shift; fi
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
  local token; token=${TOKEN:-$(head -n1 "$out/token")}
  python3 - "$token" "$count" "$addr" <<'PY'
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

table() {
  printf '%-12s %14s %14s\n' mode 'instr/request' 'guard adds'
  local plain=0 mode one many per
  for mode in plain noop-layer guard guard-outer; do
    one=$(measure "$mode" 1)
    many=$(measure "$mode" $((n + 1)))
    per=$(( (many - one) / n ))
    [ "$mode" = plain ] && plain=$per
    printf '%-12s %14d %14d\n' "$mode" "$per" $(( per - plain ))
  done
}

if [ -z "$discovered" ]; then
  table
  exit 0
fi
need node nodejs
[ -d tests/interop/node_modules/oidc-provider ] ||
  (cd tests/interop && npm install --no-audit --no-fund --loglevel=error)
node scripts/hit_as.mjs 18196 "http://$addr/mcp" >"$out/as" 2>/dev/null &
as_pid=$!
trap 'kill $as_pid 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 100); do
  [ "$(grep -c '^token ' "$out/as")" = 3 ] && break
  sleep 0.1
done
export MCP_ISSUER MCP_RESOURCE="http://$addr/mcp"
MCP_ISSUER=$(sed -n 's/^issuer //p' "$out/as")
for TOKEN in $(sed -n 's/^token //p' "$out/as"); do
  export TOKEN
  printf '\nRS256 token from %s, %d bytes\n' "$MCP_ISSUER" "${#TOKEN}"
  table
done
