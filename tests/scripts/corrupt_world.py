#!/usr/bin/python3
"""Damage a Strata world on purpose, for tests/scripts/test_corruption.sh.

  corrupt_world.py payload WORLD N      flip a byte in the payloads of N chunks
                                        (newest segment); prints "key x y z" per chunk
  corrupt_world.py lodbyte WORLD        flip a byte in one chunk's LOD pyramid (newest
                                        segment); prints "key x y z"
  corrupt_world.py rows WORLD           flip a byte of one /rows entry (a key field)
  corrupt_world.py summary WORLD        change a row's dominant material, fix row_crc
  corrupt_world.py pyramid WORLD        point a row at another chunk's LOD pyramid
                                        (valid CRCs everywhere); prints the key
  corrupt_world.py packbyte WORLD       flip a byte in the pyramid pack of a chunk (a
                                        compacted world); prints the key
  corrupt_world.py packswap WORLD       point a row at another pyramid pack (valid CRCs
                                        everywhere; a compacted world); prints the key
  corrupt_world.py packstream WORLD     cut the last byte of a compact pyramid pack's last
                                        non-empty stream (its length too), compress the
                                        pack again and make every row naming it match
                                        (valid CRCs everywhere); prints the key
  corrupt_world.py length WORLD         give a row a payload length beyond any chunk's
                                        (the whole /payload), fix row_crc; prints the key
  corrupt_world.py segpath WORLD        name a segment "../x" in MANIFEST, fix checksum
  corrupt_world.py version WORLD V      set the format version in MANIFEST, fix checksum
  corrupt_world.py chunk_of WORLD KEY   "x y z" of a voxel inside chunk KEY
  corrupt_world.py delta WORLD HOW      damage the newest delta record of a chain of at
                                        least 2 records in the newest segment, then make
                                        its row's delta_crc and row_crc match again (so
                                        that only the chain checks can tell); HOW:
                                        truncate (its zstd frame cut short), base (it
                                        names another base image), order (its depth is
                                        not its place in the chain), flip (a byte
                                        flipped, the CRC left stale); prints "key x y z"
  corrupt_world.py chainbytes WORLD     give every row with a delta chain (newest segment)
                                        delta_bytes 0xffffffff, fix row_crc; prints "key x y z"
                                        per row
Uses h5py to find dataset offsets; rewrites bytes with plain file I/O.
"""
import struct
import sys
import zlib

import h5py

FIELDS = [("key", 8), ("epoch", 8), ("payload_segment", 8), ("payload_offset", 8),
          ("lod_segment", 8), ("lod_offset", 8), ("payload_length", 4), ("payload_crc", 4),
          ("lod_length", 4), ("lod_crc", 4), ("dominant_count", 4), ("row_crc", 4),
          ("value", 2), ("dominant", 2), ("distinct", 2), ("codec", 1), ("flags", 1)]
# format 3 appends the delta chain (docs/format.md)
CHAIN = [("delta_segment", 8), ("delta_offset", 8), ("delta_first", 8), ("delta_length", 4),
         ("delta_crc", 4), ("delta_bytes", 4), ("delta_depth", 2)]


def row_crc(row):
    fields = FIELDS + (CHAIN if "delta_depth" in row.dtype.names else [])
    data = b"".join(int(row[n]).to_bytes(s, "little") if n != "row_crc" else b"\0" * s
                    for n, s in fields)
    return zlib.crc32(data)


def manifest(world):
    return open(f"{world}/MANIFEST").read().splitlines()


def segments(world):
    return [int(l.split()[1]) for l in manifest(world) if l.startswith("segment ")]


def chunk_edge(world):
    return int(next(l for l in manifest(world) if l.startswith("chunk ")).split()[1])


def seg_path(world, e):
    return f"{world}/seg-{e:020d}.h5"


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def unmorton(key):
    c = [0, 0, 0]
    for i in range(21):
        for a in range(3):
            c[a] |= ((key >> (3 * i + a)) & 1) << i
    return c


def main(argv):
    cmd, world = argv[1], argv[2]
    if cmd == "chunk_of":
        C = chunk_edge(world)
        print(" ".join(str(v * C + 1) for v in unmorton(int(argv[3]))))
    elif cmd == "segpath":
        lines = [l for l in manifest(world) if not l.startswith("checksum ")]
        lines = [("segment ../../outside" if l.startswith("segment ") else l) for l in lines]
        body = "".join(l + "\n" for l in lines)
        open(f"{world}/MANIFEST", "w").write(body + "checksum %08x\n" % zlib.crc32(body.encode()))
    elif cmd == "version":
        lines = [l for l in manifest(world) if not l.startswith("checksum ")]
        lines[0] = f"strata-manifest {argv[3]}"
        body = "".join(l + "\n" for l in lines)
        open(f"{world}/MANIFEST", "w").write(body + "checksum %08x\n" % zlib.crc32(body.encode()))
    else:
        e = segments(world)[-1]
        path = seg_path(world, e)
        with h5py.File(path, "r") as f:
            rows = f["rows"][:]
            # /rows is chunked and deflated: damage the middle of its first stored chunk.
            info = f["rows"].id.get_chunk_info(0)
            rows_at, rows_stored = info.byte_offset, info.size
            payload_at = f["payload"].id.get_offset()
            row_size = f["rows"].dtype.itemsize
        if cmd == "payload":
            # a chunk payload, or (a commit of small changes) a delta record (docs/format.md)
            where = [(r, int(r["payload_offset"]), int(r["payload_length"])) for r in rows
                     if r["codec"] != 0 and r["payload_segment"] == e]
            where = where or [(r, int(r["delta_offset"]), int(r["delta_length"])) for r in rows
                              if "delta_depth" in rows.dtype.names and r["delta_depth"]
                              and r["delta_segment"] == e]
            picked = where[-int(argv[3]):]
            assert picked, "no chunk payload or delta record in the newest segment"
            for r, offset, length in picked:
                flip(path, payload_at + offset + length // 2)
                C = chunk_edge(world)
                print(int(r["key"]), *(v * C + 1 for v in unmorton(int(r["key"]))))
        elif cmd == "delta":
            how = argv[3]
            with h5py.File(path, "r+") as f:
                rows = f["rows"][:]
                i = next(i for i, r in enumerate(rows)
                         if r["delta_depth"] >= 2 and r["delta_segment"] == e)
                r = rows[i]
                at, length = payload_at + int(r["delta_offset"]), int(r["delta_length"])
            with open(path, "r+b") as g:
                g.seek(at)
                record = bytearray(g.read(length))
                if how == "truncate":  # the record's last 8 bytes lost
                    record = record[:-8]
                    r["delta_length"] = length - 8
                    r["delta_bytes"] = int(r["delta_bytes"]) - 8
                elif how == "base":  # base_tag (docs/format.md, "Delta records")
                    record[40] ^= 1
                elif how == "order":  # depth
                    depth = int.from_bytes(record[6:8], "little")
                    record[6:8] = (depth - 1).to_bytes(2, "little")
                elif how == "flip":
                    record[length // 2] ^= 0x5A
                else:
                    sys.exit(f"unknown damage {how}")
                g.seek(at)
                g.write(record)
            if how != "flip":
                r["delta_crc"] = zlib.crc32(bytes(record))
                r["row_crc"] = row_crc(r)
                with h5py.File(path, "r+") as f:
                    f["rows"][i] = r
            C = chunk_edge(world)
            print(int(r["key"]), *(v * C + 1 for v in unmorton(int(r["key"]))))
        elif cmd == "chainbytes":
            with h5py.File(path, "r+") as f:
                rows = f["rows"][:]
                picked = [i for i, r in enumerate(rows) if r["delta_depth"] > 0]
                assert picked, "no delta chain in the newest segment"
                C = chunk_edge(world)
                for i in picked:
                    r = rows[i]
                    r["delta_bytes"] = 0xFFFFFFFF
                    r["row_crc"] = row_crc(r)
                    f["rows"][i] = r
                    print(int(r["key"]), *(v * C + 1 for v in unmorton(int(r["key"]))))
        elif cmd == "lodbyte":
            picked = [r for r in rows if r["lod_length"] > 0 and r["lod_segment"] == e]
            assert picked, "no LOD pyramid in the newest segment"
            r = picked[0]
            flip(path, payload_at + int(r["lod_offset"]) + int(r["lod_length"]) // 2)
            C = chunk_edge(world)
            print(int(r["key"]), *(v * C + 1 for v in unmorton(int(r["key"]))))
        elif cmd == "rows":
            flip(path, rows_at + rows_stored // 2)
        elif cmd == "length":
            with h5py.File(path, "r+") as f:
                rows = f["rows"][:]
                i = next(i for i, r in enumerate(rows) if r["codec"] != 0)
                rows[i]["payload_offset"] = 0
                rows[i]["payload_length"] = f["payload"].shape[0]
                rows[i]["row_crc"] = row_crc(rows[i])
                f["rows"][i] = rows[i]
                print(int(rows[i]["key"]))
        elif cmd in ("packbyte", "packswap"):
            with h5py.File(path, "r+") as f:
                rows = f["rows"][:]
                multi = [i for i, r in enumerate(rows) if r["lod_length"] > 0 and not r["flags"] & 1]
                i = multi[0]
                if cmd == "packbyte":
                    flip(path, payload_at + int(rows[i]["lod_offset"]) + int(rows[i]["lod_length"]) // 2)
                else:
                    j = next(j for j in multi if rows[j]["lod_offset"] != rows[i]["lod_offset"])
                    for n in ("lod_segment", "lod_offset", "lod_length", "lod_crc"):
                        rows[i][n] = rows[j][n]
                    rows[i]["row_crc"] = row_crc(rows[i])
                    f["rows"][i] = rows[i]
                print(int(rows[i]["key"]))
        elif cmd == "packstream":
            import zstandard
            with h5py.File(path, "r+") as f:
                rows = f["rows"][:]
                i = next(i for i, r in enumerate(rows) if r["lod_length"] > 0 and not r["flags"] & 1)
                off, n = int(rows[i]["lod_offset"]), int(rows[i]["lod_length"])
                raw = bytearray(zstandard.ZstdDecompressor().decompress(f["payload"][off:off + n].tobytes()))
                assert raw[:4] == b"SLPC", "not a compact pack"
                k = max(k for k in range(10) if struct.unpack_from("<I", raw, 12 + 4 * k)[0])
                end = 52 + sum(struct.unpack_from("<10I", raw, 12)[:k + 1])
                struct.pack_into("<I", raw, 12 + 4 * k, struct.unpack_from("<I", raw, 12 + 4 * k)[0] - 1)
                del raw[end - 1]
                frame = zstandard.ZstdCompressor(level=19, write_checksum=True,
                                                 write_content_size=True).compress(bytes(raw))
                assert len(frame) <= n, "the damaged pack does not fit in place"
                data = f["payload"]
                data[off:off + len(frame)] = list(frame)
                for j, r in enumerate(rows):
                    if r["lod_length"] and int(r["lod_offset"]) == off and r["lod_segment"] == rows[i]["lod_segment"]:
                        r["lod_length"] = len(frame)
                        r["lod_crc"] = zlib.crc32(frame)
                        r["row_crc"] = row_crc(r)
                        f["rows"][j] = r
                print(int(rows[i]["key"]))
        elif cmd in ("summary", "pyramid"):
            with h5py.File(path, "r+") as f:
                rows = f["rows"][:]
                multi = [i for i, r in enumerate(rows) if r["lod_length"] > 0 and not r["flags"] & 1]
                assert len(multi) >= 2, "no indexed chunks with pyramids"
                i, j = multi[0], multi[-1]
                if cmd == "summary":
                    rows[i]["dominant"] = (int(rows[i]["dominant"]) + 1) % 65536
                else:
                    for n in ("lod_segment", "lod_offset", "lod_length", "lod_crc"):
                        rows[i][n] = rows[j][n]
                rows[i]["row_crc"] = row_crc(rows[i])
                f["rows"][i] = rows[i]
                print(int(rows[i]["key"]))
        else:
            sys.exit(f"unknown command {cmd}")


main(sys.argv)
