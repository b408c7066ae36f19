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
root="$(cd ../.. && pwd)"
# Every crate builds into one target folder (the workspace's unless the caller
# names another): the peers share their dependencies' builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
(cd ../.. && cargo build --quiet --all-features --example agent && cargo build --quiet -p interop-harness)
# The guard proxy as a user installs it (release; the workspace's lockfile
# and target folder, so a second run reuses the build).
(cd ../.. && cargo install --quiet --locked --force --path proxy --root "$CARGO_TARGET_DIR/proxy-install")
# The rmcp peer of the differential harness (a workspace crate).
(cd ../.. && cargo build --quiet -p rmcp-upstream)
TODO_SERVER_BIN="$CARGO_TARGET_DIR/debug/todo_server" \
AGENT_BIN="$CARGO_TARGET_DIR/debug/examples/agent" \
CONFORMANCE_CLIENT_BIN="$CARGO_TARGET_DIR/debug/conformance_client" \
GATEWAY_BIN="$CARGO_TARGET_DIR/debug/todo_gateway" \
GUARD_PROXY_BIN="$CARGO_TARGET_DIR/proxy-install/bin/mcp-guard-proxy" \
RMCP_UPSTREAM_BIN="$CARGO_TARGET_DIR/debug/rmcp-upstream" \
JUDGE_URI_BIN="$CARGO_TARGET_DIR/debug/judge_uri" \
GUARD_PROXY_POLICY="$root/proxy/examples/todo-policy.toml" node run.mjs
