#!/usr/bin/python3
"""Read a Strata world with h5py and zstandard alone (docs/format.md).

usage: read_world.py WORLD POINTS_FILE   prints one material id per point
       read_world.py WORLD --pyramids     decodes every LOD pyramid as docs/index.md
                                          says and checks each cell against the
                                          chunk's voxels (exact modes, ties to the
                                          smallest id); prints how many agreed
"""
import sys
import struct
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
            rows[int(r["key"])] = r.copy()
    # Format 3: index segments (a reindex beside the writer), ascending serial.
    # An index-only row (flag 2) gives its summary and pyramid to the chunk's
    # row only when both have the same epoch: built from the current data.
    for s in [int(l.split()[1]) for l in lines if l.startswith("index_segment ")]:
        f = h5py.File(f"{path}/idx-{s:020d}.h5", "r")
        files[(1 << 63) | s] = f
        for x in f["rows"][:]:
            assert x["flags"] & 2, "index-only row"
            r = rows.get(int(x["key"]))
            if r is None or r["epoch"] != x["epoch"]:
                continue  # built from data a later commit replaced: never serves
            for k in ("lod_segment", "lod_offset", "lod_length", "lod_crc", "dominant",
                      "dominant_count", "distinct"):
                r[k] = x[k]
            r["flags"] &= ~1  # no longer stale
    return C, rows, files


def chunk_voxels(C, row, files):
    v = base_voxels(C, row, files)
    names = row.dtype.names
    depth = int(row["delta_depth"]) if "delta_depth" in names else 0  # format 2: no chains
    if depth:
        apply_chain(C, row, files, v)
    return v


def apply_chain(C, row, files, v):
    """A delta chain (docs/format.md, "Delta records"): read newest first by the
    back-references, applied oldest first."""
    seg, off, n, crc = (int(row["delta_segment"]), int(row["delta_offset"]),
                        int(row["delta_length"]), int(row["delta_crc"]))
    records = []
    for depth in range(int(row["delta_depth"]), 0, -1):
        blob = files[seg]["payload"][off:off + n].tobytes()
        assert zlib.crc32(blob) == crc, "delta checksum"
        assert blob[:4] == b"SDLT" and blob[4] in (1, 2), "delta magic"
        h = np.frombuffer(blob, "<u2", 1, 6)[0]
        key, epoch, bseg, boff = np.frombuffer(blob, "<u8", 4, 8)
        btag, count = np.frombuffer(blob, "<u4", 2, 40)
        pseg, poff = np.frombuffer(blob, "<u8", 2, 48)
        plen, pcrc = np.frombuffer(blob, "<u4", 2, 64)
        assert h == depth and key == row["key"] and epoch == seg, "delta chain order"
        assert bseg == row["payload_segment"] and boff == row["payload_offset"], "delta base"
        records.append((int(blob[4]), int(count), blob[72:]))
        seg, off, n, crc = int(pseg), int(poff), int(plen), int(pcrc)
    flat = v.reshape(-1)
    ib = 2 if C ** 3 <= 1 << 16 else 3
    for version, count, body in reversed(records):
        if version == 1:  # one zstd frame of byte planes
            raw = np.frombuffer(zstandard.ZstdDecompressor().decompress(body), np.uint8)
            planes = raw.reshape(ib + 2, count).astype(np.uint32)
            gaps = sum(planes[b] << (8 * b) for b in range(ib))
            flat[np.cumsum(gaps)] = (planes[ib] | planes[ib + 1] << 8).astype(np.uint16)
            continue
        at, materials = delta_v2(body, count, C)
        flat[at] = materials


def delta_v2(body, count, C):
    """A version-2 record's body: flags (1: the rest is one zstd frame of it), Rice
    parameter k, material byte (bits 0-4: width w of a material id, bit 7: palette),
    with a palette its size P (varint); then a little-endian bit stream: the first
    index (3 log2 C bits), count - 1 Rice codes of gap - 1 (ones, a zero, k low bits),
    then with a palette P ids and count indices of ceil(log2 P) bits, else count ids,
    all ids w bits."""
    raw = body[1:] if body[0] == 0 else zstandard.ZstdDecompressor().decompress(body[1:])
    k, w, palette = raw[0], raw[1] & 0x1F, raw[1] & 0x80
    q, P, shift = 2, 0, 0
    while palette:
        P |= (raw[q] & 0x7F) << shift
        shift += 7
        q += 1
        if not raw[q - 1] & 0x80:
            break
    bits = np.unpackbits(np.frombuffer(raw, np.uint8, offset=q), bitorder="little")
    pos = 0

    def take(n):
        nonlocal pos
        v = int(bits[pos:pos + n] @ (1 << np.arange(n))) if n else 0
        pos += n
        return v

    at = [take(3 * (C.bit_length() - 1))]
    for _ in range(count - 1):
        ones = int(np.argmin(bits[pos:]))  # the unary quotient ends at the first zero bit
        pos += ones + 1
        at.append(at[-1] + (ones << k | take(k)) + 1)
    if palette:
        ids = [take(w) for _ in range(P)]
        mb = (P - 1).bit_length()
        materials = [ids[take(mb)] for _ in range(count)]
    else:
        materials = [take(w) for _ in range(count)]
    return np.array(at, np.int64), np.array(materials, np.uint16)


def base_voxels(C, row, files):
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


def _varints(b):
    """The LEB128 values of a stream, in order."""
    v = shift = 0
    for c in b:
        v |= (c & 127) << shift
        shift += 7
        if not c & 128:
            yield v
            v = shift = 0
    assert shift == 0, "compact pack: cut varint"


def expand_compact_pack(raw):
    """An SLPC content (docs/index.md, "Compact packs") back to the SLPK content
    it rearranges: per entry the SLOD header, histogram (the last count is the
    voxels inside minus the others), the top level derived from the histogram,
    then the levels below from the bitmap, mode and count-plane streams."""
    n, L, low = int(np.frombuffer(raw, "<u4", 1, 4)[0]), raw[8], raw[9]
    lens = np.frombuffer(raw, "<u4", 10, 12).tolist()
    streams, at = [], 52
    for ln in lens:
        streams.append(raw[at:at + ln])
        at += ln
    assert at == len(raw), "compact pack length"
    keys, hs, mats, hists = (_varints(streams[k]) for k in (0, 1, 3, 4))
    pos = [0] * 10

    def take(k, m):
        b = streams[k][pos[k]:pos[k] + m]
        assert len(b) == m, "compact pack: stream %d truncated" % k
        pos[k] += m
        return b
    key, dir_keys, ends, body = 0, [], [], bytearray()
    for _ in range(n):
        key += next(keys)
        H = next(hs)
        ext = take(2, 3)
        inside = (ext[0] + 1) * (ext[1] + 1) * (ext[2] + 1)
        m_ids, mat = [], 0
        for _ in range(H):
            mat += next(mats)
            m_ids.append(mat)
        counts = [next(hists) for _ in range(H - 1)]
        counts.append(inside - sum(counts))
        assert counts[-1] > 0, "compact pack: histogram"
        body += b"SLOD" + bytes([3, L, low, 0]) + struct.pack("<I", H) + bytes(ext) + b"\0"
        body += struct.pack("<%dH" % H, *m_ids) + struct.pack("<%dI" % H, *counts)
        best = max(range(H), key=lambda i: (counts[i], -i))
        mb = 4 if H <= 16 else 8 if H <= 256 else 16
        top = bytearray([1 if H > 1 else 0]) + bytearray(2 if mb == 16 else 1)
        top[1] = best & 255
        if mb == 16:
            top[2] = best >> 8
        if H > 1:
            top += counts[best].to_bytes((3 * L + 7) // 8, "little")
        body += top
        m = 8 if H > 1 else 0
        for l in range(L - 1, low - 1, -1):
            bm = take(5, (m + 7) // 8)
            body += bm + take(6, (m + 1) // 2 if mb == 4 else m * mb // 8)
            mixed = sum(bin(x).count("1") for x in bm)
            for k in range((3 * l + 7) // 8):
                body += take(7 + k, mixed)
            m = 8 * mixed
        dir_keys.append(key)
        ends.append(len(body))
    assert all(pos[k] == lens[k] for k in (2, 5, 6, 7, 8, 9)), "compact pack: bytes left"
    for it in (keys, hs, mats, hists):
        assert next(it, None) is None, "compact pack: values left"
    return (b"SLPK" + struct.pack("<I", n) + struct.pack("<%dQ" % n, *dir_keys)
            + struct.pack("<%dI" % n, *ends) + bytes(body))


def pyramid(C, row, files):
    """The pyramid payload of a row, decoded as docs/index.md describes it:
    ({level: mode[z][y][x]}, {level: count[z][y][x]}, histogram, extent)."""
    f = files[int(row["lod_segment"])]
    off, n = int(row["lod_offset"]), int(row["lod_length"])
    blob = f["payload"][off:off + n].tobytes()
    assert zlib.crc32(blob) == row["lod_crc"], "pyramid checksum"
    raw = zstandard.ZstdDecompressor().decompress(blob)
    if raw[:4] == b"SLPC":               # a compact pack: the same pack column by column
        raw = expand_compact_pack(raw)
    if raw[:4] == b"SLPK":               # a pack: the row's key in its directory
        n = int(np.frombuffer(raw, "<u4", 1, 4)[0])
        keys = np.frombuffer(raw, "<u8", n, 8)
        ends = np.frombuffer(raw, "<u4", n, 8 + 8 * n).astype(np.int64)
        assert np.all(np.diff(keys.astype(np.float64)) > 0) and np.all(np.diff(ends) > 0)
        i = int(np.searchsorted(keys, np.uint64(row["key"])))
        assert i < n and int(keys[i]) == int(row["key"]), "pyramid pack lacks the chunk"
        area = 8 + 12 * n
        assert area + int(ends[-1]) == len(raw), "pyramid pack length"
        raw = raw[area + (int(ends[i - 1]) if i else 0):area + int(ends[i])]
    assert raw[:4] == b"SLOD", "pyramid magic"
    version, L, H = raw[4], raw[5], int(np.frombuffer(raw, "<u4", 1, 8)[0])
    low = raw[6] if version >= 3 else 1  # version 3: the lowest level stored
    assert version in (1, 2, 3) and 1 << L == C and 1 <= low <= L
    material = np.frombuffer(raw, "<u2", H, 16)
    hist = dict(zip(material.tolist(), np.frombuffer(raw, "<u4", H, 16 + 2 * H).tolist()))
    ext = [b + 1 for b in raw[12:15]]
    at = 16 + 6 * H

    def inside(l, x, y, z):
        f = lambda e, c: max(0, min(e, (c + 1) << l) - (c << l))
        return f(ext[0], x) * f(ext[1], y) * f(ext[2], z)

    def read_modes(m):
        if version == 1 or H > 256:
            lo = np.frombuffer(raw, "u1", m, at).astype("<u4")
            hi = np.frombuffer(raw, "u1", m, at + m).astype("<u4")
            v = lo | hi << 8
            return (v if version == 1 else material[v]), 2 * m
        if H > 16:
            return material[np.frombuffer(raw, "u1", m, at)], m
        b = np.frombuffer(raw, "u1", (m + 1) // 2, at)
        return material[np.stack([b & 15, b >> 4], 1).reshape(-1)[:m]], (m + 1) // 2

    mode, count = {}, {}
    for l in range(L, low - 1, -1):
        n = C >> l
        mode[l] = np.zeros((n, n, n), "<u2")
        count[l] = np.zeros((n, n, n), "<u4")
        if l == L:
            cells = [(0, 0, 0)]
        else:
            cells = []
            for pz in range(n // 2):
                for py in range(n // 2):
                    for px in range(n // 2):
                        kids = [(2 * px + (d & 1), 2 * py + (d >> 1 & 1), 2 * pz + (d >> 2))
                                for d in range(8)]
                        if count[l + 1][pz, py, px] != inside(l + 1, px, py, pz):
                            cells += kids
                        else:
                            for (x, y, z) in kids:
                                v = inside(l, x, y, z)
                                mode[l][z, y, x] = mode[l + 1][pz, py, px] if v else 0
                                count[l][z, y, x] = v
        m = len(cells)
        bits = np.unpackbits(np.frombuffer(raw, "u1", (m + 7) // 8, at), bitorder="little")[:m]
        at += (m + 7) // 8
        modes, used = read_modes(m)
        at += used
        k, W = int(bits.sum()), (3 * l + 7) // 8
        planes = np.frombuffer(raw, "u1", W * k, at).reshape(W, k).astype("<u4")
        at += W * k
        mixed = sum(planes[b] << (8 * b) for b in range(W))
        j = 0
        for i, (x, y, z) in enumerate(cells):
            mode[l][z, y, x] = modes[i] if inside(l, x, y, z) else 0
            if bits[i]:
                count[l][z, y, x] = mixed[j]
                j += 1
            else:
                count[l][z, y, x] = inside(l, x, y, z)
    assert at == len(raw), "pyramid length"
    return mode, count, hist, ext


def check_pyramids(path):
    C, rows, files = read_world(path)
    lines = open(f"{path}/MANIFEST").read().splitlines()
    dims = list(map(int, next(l for l in lines if l.startswith("dims ")).split()[1:]))
    checked = 0
    for key, row in rows.items():
        if int(row["lod_length"]) == 0:
            continue
        cx = cy = cz = 0
        for i in range(21):
            cx |= (key >> 3 * i & 1) << i
            cy |= (key >> 3 * i + 1 & 1) << i
            cz |= (key >> 3 * i + 2 & 1) << i
        mode, count, hist, ext = pyramid(C, row, files)
        want = [min(C, dims[0] - cx * C), min(C, dims[1] - cy * C), min(C, dims[2] - cz * C)]
        assert ext == want, f"chunk {key}: extent {ext}, want {want}"
        v = chunk_voxels(C, row, files)[:ext[2], :ext[1], :ext[0]]
        ids, counts = np.unique(v, return_counts=True)
        assert hist == dict(zip(ids.tolist(), counts.tolist())), f"chunk {key}: histogram"
        for l in mode:
            s = 1 << l
            for z in range(0, ext[2], s):
                for y in range(0, ext[1], s):
                    for x in range(0, ext[0], s):
                        ids, counts = np.unique(v[z:z + s, y:y + s, x:x + s], return_counts=True)
                        best = int(np.argmax(counts))  # first maximum: the smallest id
                        got = (int(mode[l][z >> l, y >> l, x >> l]), int(count[l][z >> l, y >> l, x >> l]))
                        assert got == (int(ids[best]), int(counts[best])), \
                            f"chunk {key} level {l} cell {x >> l},{y >> l},{z >> l}: {got}"
        checked += 1
    assert checked, "no pyramid to check"
    print(f"{checked} pyramids agree with their chunks")


def morton(cx, cy, cz):
    k = 0
    for i in range(21):
        k |= ((cx >> i) & 1) << 3 * i | ((cy >> i) & 1) << 3 * i + 1 | ((cz >> i) & 1) << 3 * i + 2
    return k


def main():
    if sys.argv[2] == "--pyramids":
        check_pyramids(sys.argv[1])
        return
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
