#!/usr/bin/env bash
# The whole test suite: the Rust tests, then the interop suite (which installs
# its pinned npm and PyPI peers itself).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-features
bash tests/interop/run.sh
