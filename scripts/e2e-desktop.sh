#!/usr/bin/env bash
# The real desktop window end to end: syncmon-desktop on the demo source under Xvfb, on a private
# D-Bus, driven over WebDriver (tauri-driver + WebKitWebDriver) by tests/e2e/desktop.test.mjs.
# Screenshots of the main screens go to docs/screenshots/ (SHOTS to change).
#   APP=target/release/syncmon-desktop scripts/e2e-desktop.sh   # another build
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export APP=${APP:-$root/target/debug/syncmon-desktop}
case "$APP" in /*) ;; *) APP=$root/$APP ;; esac
export SHOTS=${SHOTS:-$root/docs/screenshots}

if [ -z "${SYNCMON_E2E_INNER:-}" ]; then
  [ -x "$APP" ] || { echo "no desktop app at $APP: cargo build -p syncmon-desktop first" >&2; exit 2; }
  command -v tauri-driver >/dev/null || scripts/install-tauri-driver.sh
  # One Xvfb and one private session bus for the whole run (no stray daemons, no user bus).
  export SYNCMON_E2E_INNER=1
  exec env -u DBUS_SESSION_BUS_ADDRESS -u DISPLAY -u WAYLAND_DISPLAY \
    xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- "$0" "$@"
fi

export NO_AT_BRIDGE=1 LIBGL_ALWAYS_SOFTWARE=1
port=${WD_PORT:-4444}
log=$(mktemp -d)
tauri-driver --port "$port" --native-port $((port + 1)) >"$log/tauri-driver.log" 2>&1 &
driver=$!
trap 'kill $driver 2>/dev/null || true; wait 2>/dev/null || true' EXIT
# Bounded wait for the driver to listen.
for i in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/status" >/dev/null 2>&1 && break
  kill -0 $driver 2>/dev/null || { cat "$log/tauri-driver.log"; exit 1; }
  sleep 0.1
done
export WEBDRIVER=http://127.0.0.1:$port

status=0
for attempt in 1 2; do
  if timeout 600 node --test --test-concurrency=1 tests/e2e/desktop.test.mjs 2>&1 | tee "$log/node.log"; then
    status=0
    break
  fi
  status=1
  # About one start in thirty produces no window under Xvfb (PLATFORM.md): one retry for that
  # case only; any other failure stands.
  if [ $attempt = 1 ] && grep -q "new session:" "$log/node.log"; then
    echo "e2e: the window did not start; trying once more"
    continue
  fi
  break
done
[ $status = 0 ] || { echo "--- tauri-driver log"; tail -50 "$log/tauri-driver.log"; }
exit $status
