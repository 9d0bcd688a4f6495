#!/usr/bin/python3
"""Read a Strata world with h5py and zstandard alone (docs/format.md).

usage: read_world.py WORLD POINTS_FILE   prints one material id per point
"""
import sys
import zlib

import h5py
import numpy as np
import zstandard


def read_world(path):
    lines = open(f"{path}/MANIFEST").read().splitlines()
    segs = [int(l.split()[1]) for l in lines if l.startswith("segment ")]
    C = int(next(l for l in lines if l.startswith("chunk ")).split()[1])
    body = "".join(l + "\n" for l in lines[:-1]).encode()
    assert lines[-1] == "checksum %08x" % zlib.crc32(body), "manifest checksum"
    rows, files = {}, {}
    for e in segs:  # oldest first: newer rows win
        f = h5py.File(f"{path}/seg-{e:020d}.h5", "r")
        files[e] = f
        for r in f["rows"][:]:
            rows[int(r["key"])] = r
    return C, rows, files


def chunk_voxels(C, row, files):
    if row["codec"] == 0:
        return np.full((C, C, C), row["value"], np.uint16)
    f = files[int(row["payload_segment"])]
    off, n = int(row["payload_offset"]), int(row["payload_length"])
    blob = f["payload"][off:off + n].tobytes()
    assert zlib.crc32(blob) == row["payload_crc"], "payload checksum"
    raw = zstandard.ZstdDecompressor().decompress(blob)
    if row["codec"] == 1:
        lo = np.frombuffer(raw[:C**3], np.uint8).astype(np.uint16)
        hi = np.frombuffer(raw[C**3:], np.uint8).astype(np.uint16)
        return (lo | hi << 8).reshape(C, C, C)  # [z][y][x]
    P = int.from_bytes(raw[:2], "little")
    ids = np.frombuffer(raw[2:2 + 2 * P], "<u2")
    b = next(b for b in (1, 2, 4, 8) if 1 << b >= P)
    packed = np.frombuffer(raw[2 + 2 * P:], np.uint8)
    bits = np.unpackbits(packed, bitorder="little").reshape(-1, b)
    idx = (bits * (1 << np.arange(b))).sum(axis=1)[:C**3]
    return ids[idx].astype(np.uint16).reshape(C, C, C)


def morton(cx, cy, cz):
    k = 0
    for i in range(21):
        k |= ((cx >> i) & 1) << 3 * i | ((cy >> i) & 1) << 3 * i + 1 | ((cz >> i) & 1) << 3 * i + 2
    return k


def main():
    C, rows, files = read_world(sys.argv[1])
    cache = {}
    for line in open(sys.argv[2]):
        line = line.split("#")[0].split()
        if not line:
            continue
        x, y, z = map(int, line)
        key = morton(x // C, y // C, z // C)
        if key not in cache:
            cache[key] = chunk_voxels(C, rows[key], files) if key in rows else None
        v = cache[key]
        print(0 if v is None else int(v[z % C, y % C, x % C]))


if __name__ == "__main__":
    main()
