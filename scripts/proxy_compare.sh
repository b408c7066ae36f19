#!/usr/bin/env bash
# mcp-guard-proxy side by side with nginx and mcp-proxy, in one run: the
# same upstream, the same tools/call. Per target: user-space instructions
# per tools/call (callgrind: 1 and N+1 keep-alive requests, the difference
# divided by N, so startup cancels out), then req/s and latency (wrk,
# interleaved rounds) with the target alone on core 1 and the upstream and
# wrk on core 0 (one runtime worker or one nginx worker each).
#
# Targets: the upstream reached directly; nginx (Debian's package, plain
#   proxy_pass, keep-alive to the upstream, no auth: the floor); mcp-proxy
#   0.6 (crates.io, built with its `oauth` and `protocol-2026-07-28`
#   features, JWT auth against the same issuer's JWKS, a role mapping the
#   token's todo:read scope to the one tool); mcp-guard-proxy (release,
#   the documented policy file: the guard, the MCP policy, the identity
#   headers).
# The request: a stateless 2026-07-28 tools/call of whoami with a Bearer
#   token from the interop suite's todo server's development issuer. mcp-proxy
#   differs as it must: it serves MCP at `/`, namespaces tools
#   (`up/whoami`), and wants its audience without a path.
#
# UPSTREAM=python: the interop suite's Python SDK server (MCPServer,
#   tests/interop/.venv: run the interop suite once first) instead of the
#   fast Rust one (benches' load_server mcp-server).
# INSTR_TARGETS, LOAD_TARGETS: the targets of each part (default: all;
#   nginx is the reference of the ratios).
# MCP_PROXY_BIN: an mcp-proxy binary; else it is installed into
#   target/peers (cargo install mcp-proxy 0.6.0, a few minutes once).
#
# Usage: [UPSTREAM=rust|python] scripts/proxy_compare.sh [N (default 1000)] [SECONDS (default 5)] [ROUNDS (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"; secs="${2:-5}"; rounds="${3:-3}"
. scripts/need.sh
need valgrind valgrind
need wrk wrk
need nginx nginx-light
cargo build --release --quiet -p interop-harness --bin todo_server
cargo build --release --quiet -p mcp-guard-proxy
(cd benches && cargo build --release --quiet --bin load_server)
mcp_proxy="${MCP_PROXY_BIN:-target/peers/bin/mcp-proxy}"
if [ ! -x "$mcp_proxy" ]; then
  cargo install --quiet --locked mcp-proxy --version 0.6.0 --no-default-features \
    --features oauth,protocol-2026-07-28 --root target/peers
fi
up=127.0.0.1:18291; iss=127.0.0.1:18293
declare -A port=([direct]=18291 [nginx]=18295 [mcp-proxy]=18296 [mcp-guard-proxy]=18297)
declare -A path=([direct]=/mcp [nginx]=/mcp [mcp-proxy]=/ [mcp-guard-proxy]=/mcp)
declare -A tool=([direct]=whoami [nginx]=whoami [mcp-proxy]=up/whoami [mcp-guard-proxy]=whoami)
declare -A audience=([direct]=http://127.0.0.1:18297/mcp [nginx]=http://127.0.0.1:18297/mcp
  [mcp-proxy]=http://127.0.0.1:18296 [mcp-guard-proxy]=http://127.0.0.1:18297/mcp)
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
error_log $work/nginx-error.log warn;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx-body;
  proxy_temp_path $work/nginx-proxy;
  upstream up { server $up; keepalive 64; }
  server {
    listen 127.0.0.1:${port[nginx]};
    location /mcp {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $up;
      proxy_buffering off;
    }
  }
}
NGINX
cat >"$work/mcp-proxy.toml" <<TOML
[proxy]
name = "bench"
separator = "/"
[proxy.listen]
host = "127.0.0.1"
port = ${port[mcp-proxy]}
[[backends]]
name = "up"
transport = "http"
url = "http://$up/mcp"
[auth]
type = "jwt"
issuer = "http://$iss"
audience = "${audience[mcp-proxy]}"
jwks_uri = "http://$iss/jwks"
[[auth.roles]]
name = "reader"
allow_tools = ["up/whoami"]
[auth.role_mapping]
claim = "scope"
mapping = { "todo:read" = "reader" }
[security]
admin_token = "bench-admin-token-0123456789"
[observability]
audit = false
log_level = "warn"
TOML

start_upstream() {
  if [ "${UPSTREAM:-rust}" = python ]; then
    (cd tests/interop && exec taskset -c 0 .venv/bin/python py_server.py "${up#*:}" "$work/py.jsonl" >/dev/null 2>&1) & pids+=($!)
  else
    taskset -c 0 benches/target/release/load_server mcp-server "$up" >/dev/null 2>&1 & pids+=($!)
  fi
  MCP_DEV_ISSUER_BIND=$iss MCP_DEV_CLIENT_SECRET=bench-secret MCP_BIND=127.0.0.1:18294 RUST_LOG=warn \
    taskset -c 0 target/release/todo_server >/dev/null 2>&1 & pids+=($!)
  for _ in $(seq 100); do curl -s -o /dev/null "http://$iss/jwks" && curl -s -o /dev/null -X POST "http://$up/mcp" && return 0; sleep 0.1; done
  echo "the upstream or the issuer did not start" >&2; exit 1
}

# start TARGET [WRAPPER...]: the target on core 1, under WRAPPER (valgrind).
start_target() {
  local t=$1; shift
  case $t in
    direct) return 0 ;;
    nginx) taskset -c 1 "$@" nginx -c "$work/nginx.conf" -g 'master_process off;' >/dev/null 2>&1 & ;;
    mcp-proxy) TOKIO_WORKER_THREADS=1 taskset -c 1 "$@" "$mcp_proxy" -c "$work/mcp-proxy.toml" >/dev/null 2>&1 & ;;
    mcp-guard-proxy) MCP_UPSTREAM="http://$up/mcp" MCP_ISSUER="http://$iss" MCP_RESOURCE="${audience[mcp-guard-proxy]}" \
      MCP_BIND="127.0.0.1:${port[mcp-guard-proxy]}" MCP_POLICY=proxy/examples/todo-policy.toml RUST_LOG=warn \
      TOKIO_WORKER_THREADS=1 taskset -c 1 "$@" target/release/mcp-guard-proxy >/dev/null 2>&1 & ;;
  esac
  target_pid=$!
  for _ in $(seq 300); do
    [ "$(send "$t" 1 2>/dev/null)" = ok ] && return 0
    sleep 0.2
  done
  echo "$t did not answer" >&2; exit 1
}

token() { # audience -> access token
  curl -s -u todo-agent:bench-secret -d grant_type=client_credentials -d scope=todo:read \
    -d resource="$1" "http://$iss/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

body() { # tool -> the request body
  printf '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"%s","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' "$1"
}

send() { # target count -> "ok" after count keep-alive calls, all 200
  python3 - "${tokens[$1]}" "$2" "127.0.0.1:${port[$1]}" "${path[$1]}" "${tool[$1]}" "$(body "${tool[$1]}")" <<'PY'
import http.client, sys
token, n, target, path, tool, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
host, port = target.split(":")
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
     "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool}
c = http.client.HTTPConnection(host, int(port), timeout=10)
for _ in range(n):
    c.request("POST", path, body, h)
    r = c.getresponse(); data = r.read()
    assert r.status == 200 and b'"result"' in data, (r.status, data)
print("ok")
PY
}

stop_target() {
  [ -n "${target_pid:-}" ] || return 0
  kill -TERM "$target_pid" 2>/dev/null || true
  wait "$target_pid" 2>/dev/null || true
  target_pid=""
}

start_upstream
declare -A tokens
for t in direct nginx mcp-proxy mcp-guard-proxy; do tokens[$t]=$(token "${audience[$t]}"); done

echo "== instructions per tools/call (callgrind, user space, the target process only)"
declare -A instr
for t in ${INSTR_TARGETS-nginx mcp-proxy mcp-guard-proxy}; do
  for count in 1 $((n + 1)); do
    start_target "$t" valgrind --tool=callgrind --callgrind-out-file="$work/cg.$t.$count"
    send "$t" "$count" >/dev/null
    stop_target
  done
  one=$(awk '/^totals:/ {print $2}' "$work/cg.$t.1"); many=$(awk '/^totals:/ {print $2}' "$work/cg.$t.$((n + 1))")
  instr[$t]=$(( (many - one) / n ))
  printf '%-16s %10s\n' "$t" "${instr[$t]}"
done

echo "== req/s (wrk -t1 -c32, ${secs}s runs, $rounds interleaved rounds; target on core 1, upstream and wrk on core 0)"
lua() { # target -> a wrk script
  local f="$work/$1.lua"
  cat >"$f" <<LUA
wrk.method = "POST"
wrk.path = "${path[$1]}"
wrk.headers["Authorization"] = "Bearer ${tokens[$1]}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "${tool[$1]}"
wrk.body = '$(body "${tool[$1]}")'
LUA
  echo "$f"
}
declare -A total
for t in direct nginx mcp-proxy mcp-guard-proxy; do total[$t]=0; done
printf '%-6s %-16s %10s %10s %10s\n' round target req/s p50 p99
for r in $(seq "$rounds"); do
  for t in ${LOAD_TARGETS-direct nginx mcp-proxy mcp-guard-proxy}; do
    start_target "$t"
    res=$(taskset -c 0 wrk -t1 -c32 -d"${secs}s" --latency -s "$(lua "$t")" "http://127.0.0.1:${port[$t]}")
    stop_target
    if echo "$res" | grep -q "Non-2xx"; then echo "error: non-2xx answers from $t" >&2; echo "$res" >&2; exit 1; fi
    rps=$(echo "$res" | awk '/Requests\/sec/ {print $2}')
    printf '%-6s %-16s %10s %10s %10s\n' "$r" "$t" "$rps" "$(echo "$res" | awk '$1=="50%" {print $2}')" "$(echo "$res" | awk '$1=="99%" {print $2}')"
    total[$t]=$(awk -v a="${total[$t]}" -v b="$rps" 'BEGIN {print a + b}')
  done
done
echo "== summary (mean req/s over $rounds rounds; ratios to nginx)"
for t in ${LOAD_TARGETS-direct nginx mcp-proxy mcp-guard-proxy}; do
  mean=$(awk -v a="${total[$t]}" -v r="$rounds" 'BEGIN {printf "%.0f", a / r}')
  ratio=$(awk -v a="${total[$t]}" -v b="${total[nginx]}" 'BEGIN {printf "%.3f", a / b}')
  ins="${instr[$t]:--}"
  iratio=$([ "$ins" = - ] || [ -z "${instr[nginx]:-}" ] && echo - || awk -v a="$ins" -v b="${instr[nginx]}" 'BEGIN {printf "%.2f", a / b}')
  printf '%-16s %10s req/s  %6sx nginx   %10s instructions  %6sx nginx\n' "$t" "$mean" "$ratio" "$ins" "$iratio"
done
