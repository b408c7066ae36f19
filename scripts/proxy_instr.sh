#!/usr/bin/env bash
# User-space instructions per tools/call (callgrind): the guard proxy
# (mcp-guard-proxy, release, the documented policy file) and, for
# scale, the fast upstream it forwards to; each process measured with 1 and
# with N+1 keep-alive requests carrying the same bytes, the difference
# divided by N (startup cancels out).
#
# Usage: scripts/proxy_instr.sh [N (default 1000)]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
. scripts/need.sh
need valgrind valgrind
cargo build --release --quiet -p interop-harness --bin todo_server && cargo build --release --quiet -p mcp-guard-proxy
(cd benches && cargo build --release --quiet --bin load_server)
up=127.0.0.1:18191; proxy=127.0.0.1:18192; iss=127.0.0.1:18193
out=$(mktemp -d)
measure() { # which count -> instructions
  local which=$1 count=$2 pids=() target
  if [ "$which" = upstream ]; then
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" benches/target/release/load_server mcp-upstream "$up" >/dev/null 2>&1 & pids+=($!)
    target=$up
  else
    benches/target/release/load_server mcp-upstream "$up" >/dev/null 2>&1 & pids+=($!)
  fi
  MCP_DEV_ISSUER_BIND=$iss MCP_DEV_CLIENT_SECRET=bench-secret MCP_BIND=127.0.0.1:18194 RUST_LOG=warn \
    target/release/todo_server >/dev/null 2>&1 & pids+=($!)
  sleep 1
  if [ "$which" = proxy ]; then
    MCP_UPSTREAM="http://$up/mcp" MCP_ISSUER="http://$iss" MCP_RESOURCE="http://$proxy/mcp" MCP_BIND=$proxy \
      MCP_POLICY=proxy/examples/todo-policy.toml RUST_LOG=warn TOKIO_WORKER_THREADS=1 \
      valgrind --tool=callgrind --callgrind-out-file="$out/cg" target/release/mcp-guard-proxy >/dev/null 2>&1 & pids+=($!)
    target=$proxy
    for _ in $(seq 150); do curl -s -o /dev/null "http://$proxy/.well-known/oauth-protected-resource/mcp" && break; sleep 0.2; done
  else
    for _ in $(seq 150); do curl -s -o /dev/null -X POST "http://$up/mcp" && break; sleep 0.2; done
  fi
  local token
  token=$(curl -s -u todo-agent:bench-secret -d grant_type=client_credentials -d scope=todo:read \
    -d resource="http://$proxy/mcp" "http://$iss/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  python3 - "$token" "$count" "$target" <<'PY'
import http.client, sys
token, n, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
host, port = target.split(":")
body = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
     "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "whoami"}
c = http.client.HTTPConnection(host, int(port))
for _ in range(n):
    c.request("POST", "/mcp", body, h)
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
  # The measured process is the last one started for the proxy, the first for the upstream.
  if [ "$which" = proxy ]; then kill -TERM "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true
  else kill -TERM "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; fi
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  awk '/^totals:/ {print $2}' "$out/cg"
}
for which in upstream proxy; do
  one=$(measure "$which" 1); many=$(measure "$which" $((n + 1)))
  echo "$which: $(( (many - one) / n )) instructions per tools/call"
done
rm -rf "$out"
