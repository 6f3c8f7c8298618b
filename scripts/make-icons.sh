#!/usr/bin/env bash
# Makes the app and tray icons in icons/ with ImageMagick (scripts/install-system-deps.sh installs it).
# The source image is icons/icon.png (512x512: a blue rounded square with a white ring); the bundle
# sizes are resized from it: the PNGs of the Linux icon theme (hicolor 16 … 512, the .deb/.rpm),
# icon.ico (Windows: 16 … 256 in one file) and icon.icns (macOS: PNG entries 16 … 1024, put
# together by scripts/icns.py). The tray icons are flat discs in the health colours (ok, lagging,
# failing), drawn directly: at 64x64 they have no detail to take from a source.
#   scripts/make-icons.sh           # the bundle sizes and the tray icons from icons/icon.png
#   scripts/make-icons.sh --master  # also redraw icons/icon.png itself (after changing it below)
#   scripts/make-icons.sh --check   # remake into a temporary folder, compare pixels with icons/
# Always PNG32: Tauri's generate_context! refuses an indexed PNG ("icon ... is not RGBA").
set -euo pipefail
cd "$(dirname "$0")/.."
command -v convert >/dev/null || { echo "no ImageMagick convert: scripts/install-system-deps.sh installs it" >&2; exit 2; }

mode=${1:-make}
case "$mode" in make | --master | --check) ;; *) echo "usage: $0 [--master | --check]" >&2; exit 2 ;; esac

out=icons
[ "$mode" = --check ] && { out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; }

draw_master() { # $1: output file
  convert -size 512x512 xc:none \
    -fill '#2b6cb0' -draw 'roundrectangle 32,32 480,480 96,96' \
    -fill white -draw 'circle 256,256 256,150' \
    -fill '#2b6cb0' -draw 'circle 256,256 256,200' \
    "PNG32:$1"
}

master=icons/icon.png
if [ "$mode" = --master ]; then
  draw_master "$master"
elif [ "$mode" = --check ]; then
  draw_master "$out/icon.png"
fi

# No time chunks: the same pixels make the same bytes, so icon.ico and icon.icns compare as files.
png() { convert "$master" -resize "$1x$1" -define png:exclude-chunks=date,time "PNG32:$2"; }
for size in 16 24 32 48 64 128 256; do
  png $size "$out/${size}x${size}.png"
done
ico=$(mktemp -d)
for size in 16 24 32 48 64 256; do png $size "$ico/$size.png"; done
convert "$ico"/16.png "$ico"/24.png "$ico"/32.png "$ico"/48.png "$ico"/64.png "$ico"/256.png "$out/icon.ico"
png 1024 "$ico/1024.png"
png 512 "$ico/512.png"
python3 scripts/icns.py "$out/icon.icns" 16="$out/16x16.png" 32="$out/32x32.png" 64="$out/64x64.png" \
  128="$out/128x128.png" 256="$out/256x256.png" 512="$ico/512.png" 1024="$ico/1024.png"
rm -rf "$ico"

# The tray icons differ in shape, not only in colour (colour-blind users): a disc with a check
# mark (ok), a triangle with an exclamation mark (lagging), a disc with a cross (failing).
tray() { # $1: name, $2...: the drawing
  local name=$1
  shift
  convert -size 64x64 xc:none "$@" "PNG32:$out/tray-$name.png"
}
tray ok -fill '#2f9e44' -draw 'circle 32,32 32,4' -fill none -stroke white -strokewidth 7 -draw 'stroke-linecap round stroke-linejoin round polyline 18,33 28,43 46,23'
tray lagging -fill '#f08c00' -draw 'polygon 32,3 62,59 2,59' -fill white -draw 'rectangle 28,21 36,42' -draw 'rectangle 28,47 36,54'
tray failing -fill '#e03131' -draw 'circle 32,32 32,4' -stroke white -strokewidth 7 -draw 'line 20,20 44,44' -draw 'line 44,20 20,44'

if [ "$mode" = --check ]; then
  # Pixels, not bytes: ImageMagick writes the creation time into each file.
  differ=0
  for made in "$out"/icon.ico "$out"/icon.icns; do
    name=$(basename "$made")
    if cmp -s "$made" "icons/$name"; then
      echo "icons/$name: same bytes"
    else
      echo "icons/$name: differs from what this script makes" >&2
      differ=1
    fi
  done
  for made in "$out"/*.png; do
    name=$(basename "$made")
    pixels=$(compare -metric AE "$made" "icons/$name" null: 2>&1) || true
    if [ "$pixels" = 0 ]; then
      echo "icons/$name: same pixels"
    else
      echo "icons/$name: differs from what this script makes ($pixels pixels)" >&2
      differ=1
    fi
  done
  exit $differ
fi
echo "icons: made in $out/"
