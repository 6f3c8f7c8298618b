#!/usr/bin/env python3
"""Puts PNG files together into a macOS .icns (scripts/make-icons.sh calls it).

  icns.py OUT.icns SIZE=FILE.png ...   (SIZE: 16 32 64 128 256 512 1024, pixels of the PNG)

An .icns is 'icns' + total length, then per image a 4-byte type + length + the PNG itself. The
types below are the PNG-capable ones macOS 10.7+ reads (ic11..ic14 are the @2x variants).
"""
import struct
import sys

TYPES = {16: [b"icp4"], 32: [b"icp5", b"ic11"], 64: [b"icp6", b"ic12"], 128: [b"ic07"],
         256: [b"ic08", b"ic13"], 512: [b"ic09", b"ic14"], 1024: [b"ic10"]}


def main(out, pairs):
    body = b""
    for pair in pairs:
        size, path = pair.split("=", 1)
        data = open(path, "rb").read()
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            sys.exit(f"{path}: not a PNG")
        width, height = struct.unpack(">II", data[16:24])
        if width != int(size) or height != int(size):
            sys.exit(f"{path}: {width}x{height}, not {size}x{size}")
        for kind in TYPES[int(size)]:
            body += kind + struct.pack(">I", 8 + len(data)) + data
    with open(out, "wb") as f:
        f.write(b"icns" + struct.pack(">I", 8 + len(body)) + body)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
