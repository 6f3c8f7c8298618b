#!/usr/bin/env bash
# Runs every test: unit and integration tests of the engine, the simulated source and the
# `syncmon` command (including the crash test and the keyring test on a private D-Bus).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-deps.sh
# Each test binary's tests run on 2 threads: the suites start real servers and child processes.
cargo test --workspace --locked -- --test-threads=2
