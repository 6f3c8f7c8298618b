#!/usr/bin/env bash
# Builds the installable Linux packages into dist/: a .deb and an .rpm made by the Tauri bundler
# (the pinned @tauri-apps/cli in ui/'s devDependencies), from one release build.
#
# They hold the desktop app (/usr/bin/syncmon-desktop, menu entry, hicolor icons), the `syncmon`
# CLI (/usr/bin/syncmon) with its man pages and bash/zsh/fish completions (generated from the
# CLI's clap definition by the hidden `syncmon generate`), the systemd user unit of the headless
# agent, the AppStream metainfo, and the built web UI in /usr/share/syncmon/ui, where an
# installed `syncmon serve` looks (<exe dir>/../share/syncmon/ui). What goes where is
# bundle.linux.{deb,rpm}.files in src-tauri/tauri.conf.json.
#   scripts/package.sh             # UI build, release build, packages
#   SKIP_UI=1 scripts/package.sh   # ui/dist is already built (scripts/test.sh builds it)
# Windows (.msi/.exe) and macOS (.app/.dmg) bundles are configured in tauri.conf.json too; build
# them on those systems with `npx --prefix ui tauri build` (docs/platforms.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
stage=target/package

[ -x ui/node_modules/.bin/tauri ] || npm ci --prefix ui --no-audit --no-fund
[ -n "${SKIP_UI:-}" ] || npm run --prefix ui build
[ -f ui/dist/index.html ] || { echo "no built UI in ui/dist" >&2; exit 1; }

# One release build of both binaries (one feature resolution, so their shared crates are built
# once). custom-protocol: what `tauri build` sets, the embedded UI served as shipped.
cargo build --release --locked -p syncmon-cli -p syncmon-desktop --features syncmon-desktop/custom-protocol
rm -rf "$stage"
mkdir -p "$stage"
target/release/syncmon generate man --output "$stage/man1" >/dev/null
gzip -9n "$stage"/man1/*.1
for shell in bash zsh fish; do
  target/release/syncmon generate completions "$shell" --output "$stage/completions" >/dev/null
done
# Validators first: a broken menu entry or metainfo fails here, not on a user's desktop.
desktop-file-validate packaging/linux/syncmon.desktop
appstreamcli validate --no-net --explain packaging/linux/app.syncmon.Syncmon.metainfo.xml >/dev/null

# The bundler only (the binaries are built above). --ci: no prompts.
(cd src-tauri && "$root/ui/node_modules/.bin/tauri" bundle --ci --bundles deb,rpm)

rm -rf dist
mkdir -p dist
cp target/release/bundle/deb/*.deb target/release/bundle/rpm/*.rpm dist/
for f in target/release/syncmon target/release/syncmon-desktop dist/*; do
  printf '%-50s %6.1f MB\n' "$f" "$(stat -c %s "$f" | awk '{print $1 / 1e6}')"
done
