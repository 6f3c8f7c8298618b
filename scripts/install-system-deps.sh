#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Syncmon needs to build and test. Idempotent: packages
# already present are skipped, and nothing is fetched when everything is there.
set -euo pipefail

packages=(
  pkg-config libdbus-1-dev          # keyring crate (Secret Service over D-Bus)
  dbus gnome-keyring keyutils        # a real keyring backend for the tests, on a private bus
  curl ca-certificates python3-venv  # demo and benchmark helpers
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system packages: installing ${missing[*]}"
# Stale package lists make the install fail on version conflicts: always refresh first.
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
