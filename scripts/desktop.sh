#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine (system packages, the UI's npm packages), builds the web UI
# and the desktop app, and opens Syncmon on the built-in demo source (simulated source with faults).
# Extra arguments go to the app, e.g. `scripts/desktop.sh --no-faults`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare-machine.sh
if [ -f ui/package.json ]; then
  npm ci --prefix ui
  npm run --prefix ui build
fi
cargo build --release --locked -p syncmon-desktop -p syncmon-cli
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "No display: the window opens on a virtual one (Xvfb); screenshots with" >&2
  echo "  DISPLAY=<the :N below> import -window root shot.png" >&2
  exec xvfb-run -a -s "-screen 0 1280x800x24" target/release/syncmon-desktop --demo "$@"
fi
exec target/release/syncmon-desktop --demo "$@"
