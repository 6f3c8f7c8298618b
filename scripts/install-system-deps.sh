#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Syncmon needs to build and test. Idempotent: packages
# already present are skipped, and nothing is fetched when everything is there.
set -euo pipefail

packages=(
  pkg-config libdbus-1-dev          # keyring crate (Secret Service over D-Bus)
  dbus gnome-keyring keyutils        # a real keyring backend for the tests, on a private bus
  curl ca-certificates python3-venv  # demo and benchmark helpers
  # The desktop app (Tauri 2: GTK 3, WebKitGTK 4.1, tray, libxdo for menus) and its tests:
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev
  libxdo-dev libsoup-3.0-dev
  xvfb xauth dbus-x11 webkit2gtk-driver  # the real window under Xvfb, driven by WebDriver
  imagemagick                            # icons and screenshots
  dunst                                  # a notification daemon for the notification test
  chromium chromium-driver               # browser tests of the served UI
  desktop-file-utils appstream           # validators of the packages' menu entry and metainfo
  man-db rpm x11-utils                   # the package test: man page, the .rpm listing, xwininfo
  prometheus                             # the metrics test: prometheus and promtool (scripts/test-prometheus.sh)
  postgresql                             # the PostgreSQL tests: throwaway clusters (crates/syncmon-testpg)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
else
  echo "system packages: installing ${missing[*]}"
  # Stale package lists make the install fail on version conflicts: always refresh first.
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node.js for the UI build and the desktop end-to-end test (Debian's package when absent).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "system packages: installing nodejs npm"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm
fi
