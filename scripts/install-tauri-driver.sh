#!/usr/bin/env bash
# Installs tauri-driver (the WebDriver front for the desktop window; it drives
# /usr/bin/WebKitWebDriver from webkit2gtk-driver). Idempotent: skipped when present.
set -euo pipefail
if command -v tauri-driver >/dev/null; then
  echo "tauri-driver: present ($(command -v tauri-driver))"
  exit 0
fi
echo "tauri-driver: installing (cargo install, about a minute)"
cargo install tauri-driver --locked
