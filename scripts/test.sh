#!/usr/bin/env bash
# Runs every test: unit and integration tests of the engine, the simulated source, the `syncmon`
# command (including the crash test, the keyring test and the desktop-notification test on a
# private D-Bus), the desktop shell's command mapping (Tauri's mock runtime), then the real desktop
# window end to end under Xvfb over WebDriver.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh
scripts/install-tauri-driver.sh
# The desktop app embeds the built UI: build it before the Rust build.
if [ -f ui/package.json ]; then
  npm ci --prefix ui --no-audit --no-fund
  npm run --prefix ui build
fi
# Each test binary's tests run on 2 threads: the suites start real servers and child processes.
cargo test --workspace --locked -- --test-threads=2
if [ -f ui/package.json ]; then
  cargo build --locked -p syncmon-desktop
  SHOTS=target/e2e-screenshots scripts/e2e-desktop.sh   # docs/screenshots/ stays as committed
else
  echo "desktop end-to-end test skipped: no ui/ to embed yet"
fi
