#!/usr/bin/env bash
# Runs every test: unit and integration tests of the engine, the simulated source, the `syncmon`
# command (including the crash test, the keyring test and the desktop-notification test on a
# private D-Bus, and the 2-minute soak: crates/syncmon-cli/tests/soak.rs, see scripts/soak.sh), the
# desktop shell's command mapping (Tauri's mock runtime), then the real desktop
# window end to end under Xvfb over WebDriver, the served UI end to end in Chromium, a real
# Prometheus scraping the agent (scripts/test-prometheus.sh), and last the
# installable package: the .deb (made from the debug build, stripped) installed with apt, run from
# its installed paths, removed (scripts/test-package.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-shot build gains nothing from the incremental cache, which adds gigabytes to target/.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
NEEDED_GB=12   # what a run from a fresh clone takes: target/ plus the suites' temporary files
free_gb() { df -Pk "$1" | awk 'NR == 2 { printf "%d", $4 / 1048576 }'; }
disk() {
  echo "disk ($1): $(free_gb .) GB free here, $(free_gb "${TMPDIR:-/tmp}") GB free in ${TMPDIR:-/tmp}," \
    "target/ $(du -sh target 2>/dev/null | cut -f1 || echo 0)"
}
disk start
if [ "$(free_gb .)" -lt "$NEEDED_GB" ]; then
  echo "warning: a full test run needs about $NEEDED_GB GB free; tests that write large" \
    "databases fail with 'database or disk is full' when it runs out" >&2
fi
scripts/install-system-deps.sh
scripts/install-tauri-driver.sh
scripts/make-icons.sh --check     # icons/ is what its source image makes
# The desktop app embeds the built UI: build it before the Rust build.
npm ci --prefix ui --no-audit --no-fund
npm run --prefix ui check   # svelte-check: types and accessibility
npm test --prefix ui        # the UI's logic (Vitest)
npm run --prefix ui build
# Formatting (rustfmt.toml) and lints: a warning fails the run.
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Each test binary's tests run on 2 threads: the suites start real servers and child processes.
cargo test --workspace --locked -- --test-threads=2
disk "after cargo test"
cargo build --locked -p syncmon-desktop
SHOTS=target/e2e-screenshots scripts/e2e-desktop.sh   # docs/screenshots/ stays as committed
SHOTS=target/e2e-screenshots scripts/e2e-serve.sh
scripts/test-prometheus.sh   # alert rules, dashboard queries, a real Prometheus scraping the agent
# The packages from the debug build above (a release build would add about 20 minutes here;
# scripts/package.sh makes the shipped ones): installed with apt, run from their paths, removed.
SKIP_UI=1 PACKAGE_PROFILE=debug scripts/test-package.sh
disk end
