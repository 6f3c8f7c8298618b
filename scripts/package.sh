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

# PACKAGE_PROFILE=debug (what scripts/test.sh uses): the packages are made from the debug build
# the test command has already built, with its debug info stripped, so that the package test does
# not add a 20-minute release build to every run; what they hold and where is the same. Shipped
# packages are release builds (the default).
profile=${PACKAGE_PROFILE:-release}
case "$profile" in
  release)
    # One release build of both binaries (one feature resolution, so their shared crates are
    # built once). custom-protocol: what `tauri build` sets, the embedded UI served as shipped.
    cargo build --release --locked -p syncmon-cli -p syncmon-desktop --features syncmon-desktop/custom-protocol
    bundle_flags=()
    ;;
  debug)
    cargo build --locked -p syncmon-cli -p syncmon-desktop
    # The bundler packs target/debug/syncmon-desktop itself: strip it there (it is rebuilt from
    # the same sources by the next `cargo build` that changes it, and runs the same).
    strip --strip-debug target/debug/syncmon-desktop
    bundle_flags=(--debug)
    ;;
  *) echo "PACKAGE_PROFILE is release or debug, not $profile" >&2; exit 2 ;;
esac
bin=target/$profile
rm -rf "$stage"
mkdir -p "$stage/bin"
# The CLI goes in from the staging directory (stripped), so both profiles map the same path.
cp "$bin/syncmon" "$stage/bin/syncmon"
strip --strip-debug "$stage/bin/syncmon"
"$stage/bin/syncmon" generate man --output "$stage/man1" >/dev/null
gzip -9n "$stage"/man1/*.1
for shell in bash zsh fish; do
  "$stage/bin/syncmon" generate completions "$shell" --output "$stage/completions" >/dev/null
done
# Validators first: a broken menu entry or metainfo fails here, not on a user's desktop.
desktop-file-validate packaging/linux/syncmon.desktop
appstreamcli validate --no-net --explain packaging/linux/app.syncmon.Syncmon.metainfo.xml >/dev/null

# The bundler only (the binaries are built above). --ci: no prompts.
rm -rf "$bin/bundle"
(cd src-tauri && "$root/ui/node_modules/.bin/tauri" bundle --ci --bundles deb,rpm "${bundle_flags[@]}")

rm -rf dist
mkdir -p dist
cp "$bin"/bundle/deb/*.deb "$bin"/bundle/rpm/*.rpm dist/
for f in "$stage/bin/syncmon" "$bin/syncmon-desktop" dist/*; do
  printf '%-50s %6.1f MB\n' "$f" "$(stat -c %s "$f" | awk '{print $1 / 1e6}')"
done
