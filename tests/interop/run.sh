#!/usr/bin/env bash
# Installs the interop peers (pinned) and runs the interop suite.
# Under CI=true a missing tool is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")"
missing=""
for tool in node npm python3 curl; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "interop: missing$missing: required under CI" >&2
    exit 1
  fi
  echo "interop: SKIPPED (missing$missing)"
  exit 0
fi
# `npm install` (it follows package-lock.json): `npm ci` refuses the lock
# because an optional, Windows-only dependency of the Inspector's vite is not
# in the registry.
npm install --no-audit --no-fund --loglevel=error
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
(cd ../.. && cargo build --quiet --example todo_server --example agent --example gateway --example conformance_client)
# The guard proxy as a user installs it (release; the workspace's lockfile
# and target folder, so a second run reuses the build).
(cd ../.. && CARGO_TARGET_DIR="$(pwd)/target" cargo install --quiet --locked --force --path proxy --root "$(pwd)/target/proxy-install")
# The rmcp peer of the differential harness: its own crate (and lockfile).
cargo build --quiet --manifest-path rmcp_upstream/Cargo.toml
TODO_SERVER_BIN="$(cd ../.. && pwd)/target/debug/examples/todo_server" \
AGENT_BIN="$(cd ../.. && pwd)/target/debug/examples/agent" \
CONFORMANCE_CLIENT_BIN="$(cd ../.. && pwd)/target/debug/examples/conformance_client" \
GATEWAY_BIN="$(cd ../.. && pwd)/target/debug/examples/gateway" \
GUARD_PROXY_BIN="$(cd ../.. && pwd)/target/proxy-install/bin/mcp-guard-proxy" \
RMCP_UPSTREAM_BIN="$(pwd)/rmcp_upstream/target/debug/rmcp-upstream" \
GUARD_PROXY_POLICY="$(cd ../.. && pwd)/proxy/examples/todo-policy.toml" node run.mjs
