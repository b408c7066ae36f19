#!/usr/bin/env bash
# What the guard proxy adds per tools/call: wrk against a fast upstream MCP
# endpoint reached directly, and through mcp-guard-proxy (release, the
# documented policy file, a token from the todo_server's development
# issuer), interleaved rounds, the same request bytes (Authorization header
# included) in both modes. Upstream and proxy on core 0 (one runtime worker
# each, as the upstream), wrk on core 1.
#
# UPSTREAM=python runs the interop suite's Python SDK server (MCPServer,
# tests/interop/.venv: run the interop suite once first) as the upstream
# instead of the fast Rust one.
#
# PROXY_CORE=1 puts the proxy on the load generator's core instead (a
# sidecar with its own CPU, the upstream alone on core 0).
#
# Usage: [UPSTREAM=rust|python] [PROXY_CORE=0|1] scripts/proxy_load.sh [SECONDS_PER_RUN (default 8)] [ROUNDS (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
rounds="${2:-3}"
. scripts/need.sh
need wrk wrk
cargo build --release --quiet -p interop-harness --bin todo_server && cargo build --release --quiet -p mcp-guard-proxy
(cd benches && cargo build --release --quiet --bin load_server)
up=127.0.0.1:18091; proxy=127.0.0.1:18092; iss=127.0.0.1:18093
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
if [ "${UPSTREAM:-rust}" = python ]; then
  log=$(mktemp)
  (cd tests/interop && taskset -c 0 .venv/bin/python py_server.py "${up#*:}" "$log" >/dev/null 2>&1) & pids+=($!)
  sleep 3
else
  taskset -c 0 benches/target/release/load_server mcp-upstream "$up" >/dev/null & pids+=($!)
fi
MCP_DEV_ISSUER_BIND=$iss MCP_DEV_CLIENT_SECRET=bench-secret MCP_BIND=127.0.0.1:18094 RUST_LOG=warn \
  target/release/todo_server >/dev/null 2>&1 & pids+=($!)
sleep 1
MCP_UPSTREAM="http://$up/mcp" MCP_ISSUER="http://$iss" MCP_RESOURCE="http://$proxy/mcp" MCP_BIND=$proxy \
  MCP_POLICY=proxy/examples/todo-policy.toml RUST_LOG=warn TOKIO_WORKER_THREADS=1 taskset -c "${PROXY_CORE:-0}" target/release/mcp-guard-proxy >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://$proxy/.well-known/oauth-protected-resource/mcp" && break; sleep 0.1; done
token=$(curl -s -u todo-agent:bench-secret -d grant_type=client_credentials -d scope=todo:read \
  -d resource="http://$proxy/mcp" "http://$iss/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
lua=$(mktemp --suffix=.lua)
cat >"$lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "whoami"
wrk.body = '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
LUA
run() { # url -> "req/s p50 p99"
  local res
  res=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" --latency -s "$lua" "$1")
  if echo "$res" | grep -q "Non-2xx"; then echo "error: non-2xx answers from $1" >&2; echo "$res" >&2; exit 1; fi
  echo "$(echo "$res" | awk '/Requests\/sec/ {print $2}') $(echo "$res" | awk '$1=="50%" {print $2}') $(echo "$res" | awk '$1=="99%" {print $2}')"
}
d_total=0; p_total=0
printf '%-6s %-8s %12s %10s %10s\n' round mode req/s p50 p99
for r in $(seq "$rounds"); do
  read -r rps p50 p99 < <(run "http://$up/mcp"); printf '%-6s %-8s %12s %10s %10s\n' "$r" direct "$rps" "$p50" "$p99"
  d_total=$(awk -v a="$d_total" -v b="$rps" 'BEGIN {print a + b}')
  read -r rps p50 p99 < <(run "http://$proxy/mcp"); printf '%-6s %-8s %12s %10s %10s\n' "$r" proxied "$rps" "$p50" "$p99"
  p_total=$(awk -v a="$p_total" -v b="$rps" 'BEGIN {print a + b}')
done
rm -f "$lua"
echo "ratio proxied/direct (mean req/s over $rounds rounds): $(awk -v p="$p_total" -v d="$d_total" 'BEGIN {printf "%.3f", p / d}')"
