#!/usr/bin/env bash
# The whole test suite: the Rust tests (installing redis-server if missing),
# then the interop suite (which installs its pinned npm and PyPI peers itself).
set -euo pipefail
cd "$(dirname "$0")/.."
# The shared-store and fleet tests start a real redis-server (Debian's).
if ! command -v redis-server >/dev/null; then
  echo "installing redis-server (Debian package) for the shared-store tests"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; fi
fi
cargo test --all-features
bash tests/interop/run.sh
