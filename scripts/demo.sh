#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine and starts Syncmon on the built-in demo source.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh
if ! command -v cargo >/dev/null; then
  echo "Rust is needed: install it from https://rustup.rs (curl https://sh.rustup.rs -sSf | sh), then run this again." >&2
  exit 2
fi
cargo build --release --locked -p syncmon-cli
exec target/release/syncmon demo "$@"
