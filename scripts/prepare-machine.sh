#!/usr/bin/env bash
# What a fresh Debian/Ubuntu machine needs before Syncmon builds on it: the system packages, and
# Rust (which it cannot install for you). scripts/demo.sh and scripts/desktop.sh start with it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh
if ! command -v cargo >/dev/null; then
  echo "Rust is needed: install it from https://rustup.rs (curl https://sh.rustup.rs -sSf | sh), then run this again." >&2
  exit 2
fi
