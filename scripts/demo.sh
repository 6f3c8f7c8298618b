#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine and starts Syncmon on the built-in demo source.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare-machine.sh
cargo build --release --locked -p syncmon-cli
exec target/release/syncmon demo "$@"
