#!/usr/bin/python3
"""What each byte of a stored world is (docs/benchmarks.md, "What a world's bytes are").

usage: world_bytes.py WORLD [--peers] [--options] [--index-classes]

Prints, for the world directory: every file's bytes, split for segments into
chunk payloads, LOD pyramid payloads, bytes of /payload no live row points at,
the chunk table (/rows as stored: shuffle + deflate), the fence, and HDF5's own
structures (the rest of the file). With --peers it also assembles the volume
(h5py + zstandard only, as tests/scripts/read_world.py) and prints the same
volume as plain zstd level 3 of 64^3 chunks (one frame per chunk, raw uint16,
all-air chunks included: what HDF5's zstd filter stores) and as an HDF5 file
with the zstd filter (id 32015, HDF5_PLUGIN_PATH must name the build directory
holding libh5zstd), one uint16 dataset chunked 64^3. With --options it prints
what the LOD pyramids would take if only their coarse levels were stored, one
zstd frame per chunk or one frame for all chunks (issue 18's measurements).
With --index-classes it splits the pyramid packs into byte classes: each class's
bytes in the entry-by-entry layout (SLPK, before zstd) and in the column-by-column
layout (SLPC streams, before zstd, and each stream alone at zstd 19).
"""
import os
import sys
import tempfile

import h5py
import numpy as np
import zstandard

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "scripts"))
import read_world  # noqa: E402


def breakdown(path):
    C, rows, files = read_world.read_world(path)
    live = {"payload": 0, "pyramid": 0}
    payload_used = {e: 0 for e in files}
    frames = set()
    for r in rows.values():
        if r["codec"] != 0 and r["payload_length"]:
            live["payload"] += int(r["payload_length"])
            payload_used[int(r["payload_segment"])] += int(r["payload_length"])
        frame = (int(r["lod_segment"]), int(r["lod_offset"]))
        if r["lod_length"] and frame not in frames:   # a pack serves many rows: count it once
            frames.add(frame)
            live["pyramid"] += int(r["lod_length"])
            payload_used[int(r["lod_segment"])] += int(r["lod_length"])
    out = {"chunk payloads": live["payload"], "LOD pyramids": live["pyramid"],
           "dead /payload bytes": 0, "chunk table (/rows)": 0, "fence": 0,
           "HDF5 structures": 0, "MANIFEST + LOCK": 0}
    total = 0
    for name in sorted(os.listdir(path)):
        size = os.path.getsize(os.path.join(path, name))
        total += size
        if not name.startswith("seg-"):
            out["MANIFEST + LOCK"] += size
            continue
        e = int(name[4:24])
        f = files.get(e)
        if f is None:
            out["dead /payload bytes"] += size
            continue
        p = f["payload"].id.get_storage_size()
        rw = f["rows"].id.get_storage_size()
        fe = f["fence"].id.get_storage_size()
        out["dead /payload bytes"] += p - payload_used[e]
        out["chunk table (/rows)"] += rw
        out["fence"] += fe
        out["HDF5 structures"] += size - p - rw - fe
    return C, rows, files, out, total


def level_ends(C, row, files):
    """The decompressed pyramid payload of a row and the byte where each level
    ends (levels are stored top-down, so levels L..m are the prefix up to end[m]):
    the layout of docs/index.md, walked as tests/scripts/read_world.py does."""
    f = files[int(row["lod_segment"])]
    off, n = int(row["lod_offset"]), int(row["lod_length"])
    raw = zstandard.ZstdDecompressor().decompress(f["payload"][off:off + n].tobytes())
    version, L, H = raw[4], raw[5], int(np.frombuffer(raw, "<u4", 1, 8)[0])
    ext = [b + 1 for b in raw[12:15]]
    at, ends, mixed_prev = 16 + 6 * H, {}, None

    def inside(l, x, y, z):
        g = lambda e, c: max(0, min(e, (c + 1) << l) - (c << l))
        return g(ext[0], x) * g(ext[1], y) * g(ext[2], z)

    for l in range(L, 0, -1):
        if l == L:
            cells = [(0, 0, 0)]
        else:
            cells = [(2 * px + (d & 1), 2 * py + (d >> 1 & 1), 2 * pz + (d >> 2))
                     for (px, py, pz) in mixed_prev for d in range(8)]
        m = len(cells)
        bits = np.unpackbits(np.frombuffer(raw, "u1", (m + 7) // 8, at), bitorder="little")[:m]
        at += (m + 7) // 8
        at += 2 * m if (version == 1 or H > 256) else m if H > 16 else (m + 1) // 2
        at += ((3 * l + 7) // 8) * int(bits.sum())
        ends[l] = at
        # the mixed cells, in the order their children are listed: [z][y][x] of level l
        mixed_prev = sorted((c for c, bit in zip(cells, bits) if bit), key=lambda c: (c[2], c[1], c[0]))
    assert at == len(raw)
    return raw, ends, 16 + 6 * H


def options(C, rows, files):
    """Stored index bytes if only pyramid levels >= m were kept, per chunk frames
    (zstd -1, as today) or one frame for all chunks' coarse levels (zstd 3 and 19),
    and the histograms alone."""
    items = [level_ends(C, r, files) for r in rows.values() if r["lod_length"]]
    if not items:
        return
    L = max(max(e) for _, e, _ in items)
    c1, c3, c19 = (zstandard.ZstdCompressor(level=v) for v in (-1, 3, 19))
    print("  index options (bytes of stored pyramids):")
    print(f"    {'levels kept':16s} {'raw':>10s} {'frame/chunk -1':>15s} {'one frame 3':>12s} {'one frame 19':>13s}")
    for m in list(range(1, L + 1)) + [L + 1]:
        parts = [raw[:ends[m]] if m <= L else raw[:h] for raw, ends, h in items]
        blob = b"".join(parts)
        label = f"{m}..{L}" if m <= L else "histogram only"
        print(f"    {label:16s} {len(blob):10,d} {sum(len(c1.compress(x)) for x in parts):15,d} "
              f"{len(c3.compress(blob)):12,d} {len(c19.compress(blob)):13,d}")


def payload_options(C, rows, files):
    """Chunk payload bytes if the same payload contents were compressed at other
    zstd levels, one frame per chunk (format-compatible), and one frame for all."""
    import time
    d = zstandard.ZstdDecompressor()
    raws = []
    for r in rows.values():
        if r["codec"] != 0:
            f = files[int(r["payload_segment"])]
            o, n = int(r["payload_offset"]), int(r["payload_length"])
            raws.append(d.decompress(f["payload"][o:o + n].tobytes()))
    print("  payload options (bytes; seconds to compress all, python-zstandard, 1 core):")
    for lv in (3, 9, 15, 19):
        c = zstandard.ZstdCompressor(level=lv, write_checksum=True, write_content_size=True)
        t = time.perf_counter()
        n = sum(len(c.compress(x)) for x in raws)
        print(f"    frame/chunk level {lv:2d} {n:12,d}  {time.perf_counter() - t:6.2f} s")
    blob = b"".join(raws)
    for lv in (3, 19):
        print(f"    one frame level {lv:2d}   {len(zstandard.ZstdCompressor(level=lv).compress(blob)):12,d}")


def volume(path, C, rows, files):
    lines = open(f"{path}/MANIFEST").read().splitlines()
    dims = [int(v) for v in next(l for l in lines if l.startswith("dims ")).split()[1:]]
    v = np.zeros(dims[::-1], np.uint16)
    for key, row in rows.items():
        x, y, z = (c * C for c in unmorton(key))
        part = read_world.chunk_voxels(C, row, files)
        v[z:z + C, y:y + C, x:x + C] = part[:dims[2] - z, :dims[1] - y, :dims[0] - x]
    return v


def unmorton(k):
    return tuple(sum(((k >> 3 * i + a) & 1) << i for i in range(21)) for a in range(3))


def peers(v):
    cctx = zstandard.ZstdCompressor(level=3)
    plain = 0
    for z in range(0, v.shape[0], 64):
        for y in range(0, v.shape[1], 64):
            for x in range(0, v.shape[2], 64):
                b = np.zeros((64, 64, 64), np.uint16)  # edge chunks padded, as HDF5 does
                part = v[z:z + 64, y:y + 64, x:x + 64]
                b[:part.shape[0], :part.shape[1], :part.shape[2]] = part
                plain += len(cctx.compress(b.tobytes()))
    h5 = None
    with tempfile.TemporaryDirectory() as d:
        try:
            with h5py.File(f"{d}/peer.h5", "w") as f:
                f.create_dataset("material", data=v, chunks=tuple(min(64, n) for n in v.shape),
                                 compression=32015, compression_opts=(3,))
            h5 = os.path.getsize(f"{d}/peer.h5")
        except (ValueError, OSError) as exc:
            print(f"HDF5 zstd peer not written ({exc}); set HDF5_PLUGIN_PATH", file=sys.stderr)
    return plain, h5


SLPC_STREAMS = ["keys", "H", "extents", "materials", "histogram counts", "mixed bitmaps",
                "modes", "count plane 0", "count plane 1", "count plane 2"]


def index_classes(rows, files):
    """Byte classes of every pack frame, as SLPK (entry by entry) and SLPC."""
    import struct
    frames = {}
    for r in rows.values():
        if r["lod_length"]:
            frames[(int(r["lod_segment"]), int(r["lod_offset"]))] = int(r["lod_length"])
    before = dict.fromkeys(["directory (key + end per entry)", "entry headers (16 bytes)",
                            "materials (u16)", "histogram counts (u32)", "top level",
                            "levels below the top"], 0)
    after = {k: [0, 0] for k in SLPC_STREAMS}
    after["header"] = [0, 0]
    stored = 0
    for (seg, off), n in frames.items():
        blob = files[seg]["payload"][off:off + n].tobytes()
        stored += n
        raw = zstandard.ZstdDecompressor().decompress(blob)
        if raw[:4] == b"SLPC":
            lens = struct.unpack_from("<10I", raw, 12)
            at = 52
            after["header"][0] += 52
            for k, ln in zip(SLPC_STREAMS, lens):
                after[k][0] += ln
                after[k][1] += len(zstandard.ZstdCompressor(level=19).compress(raw[at:at + ln]))
                at += ln
            raw = read_world.expand_compact_pack(raw)
        if raw[:4] != b"SLPK":
            continue
        cnt = struct.unpack_from("<I", raw, 4)[0]
        ends = struct.unpack_from("<%dI" % cnt, raw, 8 + 8 * cnt)
        area, start = 8 + 12 * cnt, 0
        before["directory (key + end per entry)"] += 8 + 12 * cnt
        for e in ends:
            ent = raw[area + start:area + e]
            H, L = struct.unpack_from("<I", ent, 8)[0], ent[5]
            top = 1 + (1 if H <= 256 else 2) + ((3 * L + 7) // 8 if H > 1 else 0)
            before["entry headers (16 bytes)"] += 16
            before["materials (u16)"] += 2 * H
            before["histogram counts (u32)"] += 4 * H
            before["top level"] += top
            before["levels below the top"] += len(ent) - 16 - 6 * H - top
            start = e
    print(f"  pyramid frames: {len(frames)}, {stored:,d} bytes stored")
    print("  SLPK layout (entry by entry), bytes before zstd:")
    for k, v in before.items():
        print(f"    {k:34s} {v:10,d}")
    if after["header"][0]:
        print("  SLPC layout (column by column): bytes before zstd / that stream alone at zstd 19:")
        for k, (a, c) in after.items():
            print(f"    {k:34s} {a:10,d} {c:10,d}")


def main():
    path = sys.argv[1]
    C, rows, files, parts, total = breakdown(path)
    dense = sum(1 for r in rows.values() if r["codec"] != 0)
    pyr = sum(1 for r in rows.values() if r["lod_length"])
    print(f"world {path}: chunk {C}, {len(rows)} rows ({dense} with payload, {pyr} pyramids), "
          f"{len(files)} live segments")
    for k, val in parts.items():
        print(f"  {k:22s} {val:12,d}  {100.0 * val / total:5.1f} %")
    print(f"  {'total (all files)':22s} {total:12,d}")
    if parts["chunk payloads"]:
        print(f"  index / payloads       {parts['LOD pyramids'] / parts['chunk payloads']:.3f}")
    if "--options" in sys.argv:
        options(C, rows, files)
        payload_options(C, rows, files)
    if "--index-classes" in sys.argv:
        index_classes(rows, files)
    if "--peers" in sys.argv:
        plain, h5 = peers(volume(path, C, rows, files))
        print(f"  plain zstd-3 64^3      {plain:12,d}  ({plain / total:.3f}x the world's size)")
        if h5:
            print(f"  HDF5 zstd-3 64^3 file  {h5:12,d}  ({h5 / total:.3f}x the world's size)")
    for f in files.values():
        f.close()


if __name__ == "__main__":
    main()
