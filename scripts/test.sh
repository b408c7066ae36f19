#!/usr/bin/env bash
# The whole test suite: the Rust tests of the library and the proxy
# (installing redis-server if missing),
# then the interop suite (which installs its pinned npm and PyPI peers itself).
set -euo pipefail
cd "$(dirname "$0")/.."
# The shared-store and fleet tests start a real redis-server (Debian's).
. scripts/need.sh
need redis-server redis-server
cargo test --workspace --all-features
bash tests/interop/run.sh
