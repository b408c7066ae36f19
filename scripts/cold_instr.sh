#!/usr/bin/env bash
# Instructions per cold verification, ours next to the raw aws-lc-rs verify
# of the same signature (valgrind's callgrind counts instructions, so the
# ratio does not move with the machine's load); then instructions per request
# through the tower service on a token-cache hit, next to the same request
# (same Authorization header) to the bare inner service.
# Usage: scripts/cold_instr.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../benches"
n="${1:-200}"
if ! command -v valgrind >/dev/null 2>&1; then
  echo "installing valgrind (Debian package)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq valgrind >/dev/null; fi
fi
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
