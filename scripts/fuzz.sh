#!/usr/bin/env bash
# Fuzzes the page parser, the config loader and the webhook verifier with cargo-fuzz (libFuzzer,
# AddressSanitizer). Usage: scripts/fuzz.sh [seconds per target, default 60] [target...]
#
# cargo-fuzz passes compiler flags that only nightly accepts (-Zsanitizer, coverage options). A
# nightly toolchain is used when one is installed; otherwise the stable one with RUSTC_BOOTSTRAP=1,
# which accepts the same flags, so nothing has to be downloaded but cargo-fuzz itself (crates.io,
# once). fuzz/ is its own workspace; its Cargo.lock (not committed) starts as a copy of the
# workspace's, so the engine is fuzzed with the dependency versions it ships with.
# Findings land in fuzz/artifacts/<target>/ (reproduce: cargo fuzz run <target> <file>).
# The seeded mutation tests in crates/syncmon-core/tests/robustness.rs run the same checks in the
# normal test command.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(page_parser config_loader webhook_verifier)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock
cd fuzz
for target in "${targets[@]}"; do
  echo "== $target for ${seconds}s"
  # A dictionary (fuzz/<target>.dict) gives libFuzzer the words the target looks for; without it
  # the webhook target took more than a minute to build a Business Central body at all.
  dict=()
  [ -f "$target.dict" ] && dict=(-dict="$target.dict")
  cargo "${toolchain[@]}" fuzz run -O "$target" -- -max_total_time="$seconds" -max_len=65536 "${dict[@]}"
done
