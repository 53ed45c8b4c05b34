"""A stand-in for Katana's renderboot: reads the copied Op Tree file, prints progress the way
the Katana plug-in parses it, and writes a real PNG (Disk Render) or sends pixels to the
Catalog Server (Preview Render)."""

import argparse
import socket
import struct
import sys
import time
import zlib


def write_png(path, width, height, seed):
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows += bytes([(x * 255 // width + seed) % 256, y * 255 // height, seed % 256])

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b""))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--optree", required=True)
    p.add_argument("--output")
    p.add_argument("--catalog")
    p.add_argument("--delay", type=float, default=0.0)
    args = p.parse_args()
    with open(args.optree) as f:
        scene = f.read()
    print("renderboot: loaded op tree %s (%d bytes)" % (args.optree, len(scene)), flush=True)
    for step in range(1, 5):
        time.sleep(args.delay)
        print("Render progress: %d%%" % (step * 25), flush=True)
    if args.catalog:
        host, port = args.catalog.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"PIXELS " + scene.strip().encode() + b"\n")
        print("renderboot: sent pixels to the Catalog Server %s" % args.catalog, flush=True)
    if args.output:
        write_png(args.output, 32, 16, len(scene))
        print("renderboot: wrote %s" % args.output, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
