#!/usr/bin/env bash
# The package test (scripts/test.sh runs it): builds the .deb and .rpm (scripts/package.sh, one
# release build), installs the .deb with apt as a user would, and checks from the installed paths
# only: `syncmon --version`, the man page, the completions, the menu entry, metainfo and icons,
# the systemd user unit, `syncmon serve` serving the packaged web UI on loopback, and the
# desktop app opening its window under Xvfb. Then removes the package again (also on failure).
# Needs root (or sudo) for apt. SKIP_UI=1: ui/dist is already built. SKIP_BUILD=1: dist/ is
# already made by scripts/package.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -n "${SKIP_BUILD:-}" ] || scripts/package.sh
deb=$(ls dist/*.deb)
rpm=$(ls dist/*.rpm)
[ "$(echo "$deb" | wc -l)" = 1 ] || fail "expected one .deb in dist/, found: $deb"

tmp=$(mktemp -d)
pids=()
cleanup() {
  [ -f "$tmp/desktop.pid" ] && kill "$(cat "$tmp/desktop.pid")" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if dpkg-query -W -f='${Status}' syncmon 2>/dev/null | grep -q "install ok installed"; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get remove -y -qq syncmon >/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

step "the .rpm holds the same files"
if command -v rpm >/dev/null; then
  listing=$(rpm -qlp "$rpm" 2>/dev/null)
  for f in /usr/bin/syncmon /usr/bin/syncmon-desktop /usr/share/man/man1/syncmon.1.gz /usr/lib/systemd/user/syncmon.service \
    /usr/share/zsh/site-functions/_syncmon /usr/share/syncmon/ui/index.html /usr/share/syncmon/monitoring/alerts.yml /usr/share/applications/Syncmon.desktop; do
    grep -qx "$f" <<<"$listing" || fail "$rpm lacks $f"
  done
  echo "ok: $(wc -l <<<"$listing") files"
else
  echo "no rpm command: the listing is not checked"
fi

step "apt-get install $deb"
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "./$deb" >/dev/null
dpkg-query -W -f='${Package} ${Version} ${Installed-Size} KiB installed\n' syncmon

step "the CLI on PATH"
[ "$(command -v syncmon)" = /usr/bin/syncmon ] || fail "syncmon on PATH is $(command -v syncmon), not /usr/bin/syncmon"
version=$(/usr/bin/syncmon --version)
[ "$version" = "syncmon $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" ] || fail "syncmon --version said: $version"
echo "$version"

step "the man pages"
page=$(man -w syncmon) || fail "man -w syncmon found no page"
[ "$page" = /usr/share/man/man1/syncmon.1.gz ] || fail "man -w syncmon: $page"
man -w syncmon-run >/dev/null || fail "no page for syncmon-run"
MANWIDTH=100 man -P cat syncmon 2>/dev/null | grep -q "syncmon-serve(1)" || fail "syncmon(1) does not list syncmon-serve(1)"
echo "$page and $(ls /usr/share/man/man1/syncmon*.1.gz | wc -l) pages in all"

step "the completions"
for f in /usr/share/bash-completion/completions/syncmon /usr/share/zsh/vendor-completions/_syncmon /usr/share/fish/vendor_completions.d/syncmon.fish; do
  grep -q serve "$f" || fail "$f is missing or does not complete serve"
done
bash -c 'source /usr/share/bash-completion/completions/syncmon && complete -p syncmon' || fail "the bash completion does not register"

step "menu entry, metainfo, icons"
desktop-file-validate /usr/share/applications/Syncmon.desktop
grep -qx "Exec=syncmon-desktop" /usr/share/applications/Syncmon.desktop || fail "the menu entry does not start syncmon-desktop"
appstreamcli validate --no-net /usr/share/metainfo/app.syncmon.Syncmon.metainfo.xml >/dev/null
for size in 16 24 32 48 64 128 256 512; do
  icon=/usr/share/icons/hicolor/${size}x${size}/apps/syncmon-desktop.png
  [ "$(identify -format '%wx%h' "$icon" 2>/dev/null)" = "${size}x${size}" ] || fail "no ${size}x${size} icon at $icon"
done
echo "ok"

step "the monitoring examples"
for f in alerts.yml alerts.test.yml grafana-dashboard.json; do
  cmp -s "/usr/share/syncmon/monitoring/$f" "packaging/monitoring/$f" || fail "/usr/share/syncmon/monitoring/$f is not packaging/monitoring/$f"
done
if command -v promtool >/dev/null; then
  promtool check rules /usr/share/syncmon/monitoring/alerts.yml >/dev/null || fail "the installed alert rules do not pass promtool check rules"
fi
echo "ok"

step "the systemd user unit"
unit=/usr/lib/systemd/user/syncmon.service
grep -qx "ExecStart=/usr/bin/syncmon run" "$unit" || fail "$unit does not run /usr/bin/syncmon run"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
  echo "systemd-analyze verify: ok"
fi

step "syncmon serve from /usr/bin serves the packaged UI"
mkdir -p "$tmp/home" "$tmp/data"
: >"$tmp/syncmon.toml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
(cd "$tmp" && exec env -u SYNCMON_UI_DIR HOME="$tmp/home" SYNCMON_TOKEN="$token" /usr/bin/syncmon serve \
  --config "$tmp/syncmon.toml" --data-dir "$tmp/data" --listen "127.0.0.1:$port" --token-env SYNCMON_TOKEN >"$tmp/serve.log" 2>&1) &
pids+=($!)
for _ in $(seq 100); do
  grep -q "syncmon serve: open" "$tmp/serve.log" && break
  sleep 0.1
done
grep -q "syncmon serve: open" "$tmp/serve.log" || { cat "$tmp/serve.log"; fail "syncmon serve did not start within 10 s"; }
grep -q "no built UI" "$tmp/serve.log" && { cat "$tmp/serve.log"; fail "syncmon serve did not find the packaged UI"; }
curl -fsS -L -c "$tmp/jar" -o "$tmp/index.html" "http://127.0.0.1:$port/?token=$token" || fail "GET / with the token"
cmp -s "$tmp/index.html" /usr/share/syncmon/ui/index.html || fail "the served index is not /usr/share/syncmon/ui/index.html"
status=$(curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/status") || fail "GET /api/status with the token"
echo "index.html served ($(wc -c <"$tmp/index.html") bytes); /api/status: $status"
kill "${pids[-1]}"

step "the desktop app opens its window under Xvfb"
display=
for n in $(seq 90 120); do
  [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ] || { display=:$n; break; }
done
[ -n "$display" ] || fail "no free X display number"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$tmp/xvfb.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do xwininfo -display "$display" -root >/dev/null 2>&1 && break; sleep 0.1; done
started=$(date +%s.%N)
# On its own session bus (single-instance, notifications); the app's PID is written so that it,
# not just the bus wrapper, is stopped at the end.
env HOME="$tmp/home" DISPLAY="$display" NO_AT_BRIDGE=1 LIBGL_ALWAYS_SOFTWARE=1 dbus-run-session -- \
  sh -c 'echo $$ >"$0/desktop.pid"; exec /usr/bin/syncmon-desktop --config "$0/syncmon.toml" --data-dir "$0/desktop-data"' "$tmp" \
  >"$tmp/desktop.log" 2>&1 &
pids+=($!)
window=
for _ in $(seq 300); do
  window=$(xwininfo -display "$display" -root -tree 2>/dev/null | grep -m1 '"Syncmon"' || true)
  [ -n "$window" ] && break
  sleep 0.1
done
[ -n "$window" ] || { cat "$tmp/desktop.log"; fail "no Syncmon window within 30 s"; }
echo "window after $(python3 -c "import time; print(f'{time.time() - $started:.2f}')") s: $(echo "$window" | sed 's/^ *//')"
kill "$(cat "$tmp/desktop.pid")"

step "apt-get remove"
DEBIAN_FRONTEND=noninteractive $sudo apt-get remove -y -qq syncmon >/dev/null
[ ! -e /usr/bin/syncmon ] && [ ! -e /usr/bin/syncmon-desktop ] && [ ! -e /usr/share/syncmon/ui/index.html ] && [ ! -e /usr/share/syncmon/monitoring/alerts.yml ] || fail "files left after apt-get remove"
echo "removed"
echo
echo "package test: ok"
