#!/usr/bin/env bash
# `syncmon serve` end to end in Chromium (headless, Debian's chromium + chromedriver): the demo
# journey through the served UI, the token/Host/Origin refusals, and 100,000 failed items
# (tests/e2e/serve.test.mjs); then two agents on a throwaway PostgreSQL replica, one of them
# SIGKILLed (tests/e2e/fleet.test.mjs). Needs the built UI (ui/dist) and `syncmon`:
#   SYNCMON=target/release/syncmon scripts/e2e-serve.sh   # another build
set -euo pipefail
cd "$(dirname "$0")/.."
export SYNCMON=${SYNCMON:-$PWD/target/debug/syncmon}
[ -x "$SYNCMON" ] || { echo "no syncmon at $SYNCMON: cargo build -p syncmon-cli first" >&2; exit 2; }
[ -f ui/dist/index.html ] || { echo "no built UI in ui/dist: npm ci --prefix ui && npm run --prefix ui build" >&2; exit 2; }
command -v chromedriver >/dev/null || { echo "no chromedriver: scripts/install-system-deps.sh installs chromium-driver" >&2; exit 2; }
# A private session bus: Chromium looks for one and must not find the user's.
exec env -u DBUS_SESSION_BUS_ADDRESS dbus-run-session -- \
  timeout 900 node --test --test-concurrency=1 tests/e2e/serve.test.mjs tests/e2e/fleet.test.mjs
