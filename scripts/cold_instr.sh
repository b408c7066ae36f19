#!/usr/bin/env bash
# Instructions per cold verification, ours next to the raw aws-lc-rs verify
# of the same signature (valgrind's callgrind counts instructions, so the
# ratio does not move with the machine's load); then instructions per request
# through the tower service on a token-cache hit, next to the same request
# (same Authorization header) to the bare inner service.
# (The same hit in a real server, per keep-alive request: scripts/hit_instr.sh.)
# Usage: scripts/cold_instr.sh [N]
set -euo pipefail
. "$(dirname "$0")/need.sh"
need valgrind valgrind
cd "$(dirname "$0")/../benches"
n="${1:-200}"
cargo build -q --release --bin cold_instr
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    --toggle-collect='*cold_instr::run*' target/release/cold_instr "$1" "$2" "$n" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-6s %14s %14s %8s %14s\n' alg raw/verify guard/verify ratio overhead
for alg in RS256 PS256 ES256 EdDSA; do
  raw=$(count raw "$alg")
  guard=$(count guard "$alg")
  awk -v a="$alg" -v r="$raw" -v g="$guard" -v n="$n" 'BEGIN {
    printf "%-6s %14d %14d %8.3f %14d\n", a, r / n, g / n, g / r, (g - r) / n }'
done
printf '\n%-22s %14s %14s %14s\n' 'per request' 'no guard' 'cache hit' 'guard adds'
plain=$(count plain ES256)
hit=$(count hit ES256)
awk -v p="$plain" -v h="$hit" -v n="$n" 'BEGIN {
  printf "%-22s %14d %14d %14d\n", "service, same request", p / n, h / n, (h - p) / n }'
aplain=$(count axum-plain ES256)
ahit=$(count axum-hit ES256)
awk -v p="$aplain" -v h="$ahit" -v n="$n" 'BEGIN {
  printf "%-22s %14d %14d %14d\n", "axum route, same req.", p / n, h / n, (h - p) / n }'

# A DPoP request with a cached bound token vs the raw verify of its proof.
dr=$(count dpop-raw ES256)
dh=$(count dpop-hit ES256)
awk -v p="$dr" -v h="$dh" -v n="$n" 'BEGIN {
  printf "%-22s %14d %14d %14d  (%.3fx)\n", "DPoP ES256 proof", p / n, h / n, (h - p) / n, h / p }'

# The MCP layer per tools/call: the guard alone vs guard + McpLayer with the
# same request bytes, next to serde_json's IgnoredAny on the same body.
cargo build -q --release --bin mcp_instr
mcp() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    --toggle-collect='*mcp_instr::run*' target/release/mcp_instr "$@" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '\n%-22s %12s %12s %12s %12s %8s\n' 'mcp tools/call' 'guard only' 'guard+mcp' 'mcp adds' 'IgnoredAny' 'ratio'
for wire in session stateless; do
  for size in 1024 65536; do
    p=$(mcp plain "$wire" "$size" "$n"); l=$(mcp layered "$wire" "$size" "$n"); i=$(mcp ignored "$wire" "$size" "$n")
    awk -v w="$wire $size" -v p="$p" -v l="$l" -v i="$i" -v n="$n" 'BEGIN {
      printf "%-22s %12d %12d %12d %12d %8.3f\n", w, p / n, l / n, (l - p) / n, i / n, (l - p) / i }'
  done
done
