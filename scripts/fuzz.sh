#!/usr/bin/env bash
# Fuzzes the page parser and the config loader with cargo-fuzz (needs a nightly toolchain).
# Usage: scripts/fuzz.sh [seconds per target, default 60]. The seeded mutation tests in
# crates/syncmon-core/tests/robustness.rs run the same checks in every `scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
cd fuzz
for target in page_parser config_loader; do
  echo "== $target for ${seconds}s"
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -max_len=65536
done
