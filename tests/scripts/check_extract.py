#!/usr/bin/python3
"""Check an extraction (strata extract) against a reference.

usage:
  check_extract.py points BOX OUT.txt          write the points of BOX (clipped by the
                                               caller) in [z][y][x] order, for `strata get`
  check_extract.py corners BOX LEVEL OUT.txt   the corner of every LEVEL cell, for
                                               `strata get --points --lod LEVEL`
  check_extract.py h5 OUT.h5 BOX LEVEL REF     compare /material with REF: a file of one
                                               id per line, or an L0 extraction
                                               .h5 of the aligned box to take block modes
                                               from (LEVEL > 0); check attrs and the XDMF
  check_extract.py png OUT.png OUT.h5 AXIS INDEX
                                               decode the PNG, check its size and that each
                                               cell's pixel has its material's colour
BOX is x0,y0,z0,x1,y1,z1 after clipping.
"""
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

import h5py
import numpy as np

MIN_SIDE = 512  # jobs/png.h PNG_MIN_SIDE
LEFT, TOP = 150, 40  # jobs/png.h PNG_FRAME_LEFT, PNG_FRAME_TOP: the slice's corner


def fail(msg):
    print("check_extract: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def parse_box(text):
    b = [int(v) for v in text.split(",")]
    assert len(b) == 6
    return b


def cells_of(box, level):
    s = 1 << level
    return [-(-box[a + 3] // s) - box[a] // s for a in range(3)]  # x y z


def write_points(box, out):
    with open(out, "w") as f:
        for z in range(box[2], box[5]):
            for y in range(box[1], box[4]):
                f.write("".join(f"{x} {y} {z}\n" for x in range(box[0], box[3])))


def write_block_corners(box, level, out):
    """The corner voxel of every output cell at `level`, in [z][y][x] order."""
    s = 1 << level
    first = [box[a] // s for a in range(3)]
    n = cells_of(box, level)
    with open(out, "w") as f:
        for k in range(n[2]):
            for j in range(n[1]):
                f.write("".join(f"{(first[0] + i) * s} {(first[1] + j) * s} {(first[2] + k) * s}\n"
                                for i in range(n[0])))


def block_modes(full, first_voxel, level, cells):
    """Mode (ties to smallest id) of each 2^L block of `full`, a [z][y][x] array whose
    corner is at voxel first_voxel (x y z) and which holds every voxel of those
    blocks that lies inside the world."""
    s = 1 << level
    out = np.zeros((cells[2], cells[1], cells[0]), np.uint16)
    for k in range(cells[2]):
        for j in range(cells[1]):
            for i in range(cells[0]):
                b = full[k * s:(k + 1) * s, j * s:(j + 1) * s, i * s:(i + 1) * s].ravel()
                counts = np.bincount(b)
                out[k, j, i] = int(np.argmax(counts))  # argmax takes the first: smallest id
    return out


def check_xdmf(h5path, shape, box, level, vs, origin):
    xmf = h5path[:-3] + ".xmf" if h5path.endswith(".h5") else h5path + ".xmf"
    root = ET.parse(xmf).getroot()
    if root.tag != "Xdmf" or root.get("Version") != "3.0":
        fail("XDMF root")
    grid = root.find("Domain/Grid")
    topo = grid.find("Topology")
    if topo.get("TopologyType").lower() != "3dcorectmesh":
        fail("topology type")
    dims = [int(v) for v in topo.get("Dimensions").split()]
    if dims != [n + 1 for n in shape]:
        fail(f"topology dims {dims} vs data shape {shape}")
    geo = grid.find("Geometry")
    if geo.get("GeometryType") != "ORIGIN_DXDYDZ":
        fail("geometry type")
    items = {d.get("Name"): [float(v) for v in d.text.split()] for d in geo.findall("DataItem")}
    s = 1 << level
    want_origin = [(box[a] // s) * s * vs[a] + origin[a] for a in (2, 1, 0)]
    want_spacing = [s * vs[a] for a in (2, 1, 0)]
    if not np.allclose(items["Origin"], want_origin) or not np.allclose(items["Spacing"], want_spacing):
        fail(f"geometry {items} vs {want_origin} {want_spacing}")
    attr = grid.find("Attribute")
    if attr.get("Center") != "Cell" or attr.get("Name") != "material":
        fail("attribute")
    item = attr.find("DataItem")
    if [int(v) for v in item.get("Dimensions").split()] != list(shape):
        fail("attribute dims")
    if item.get("NumberType") != "UShort" or item.get("Precision") != "2" or item.get("Format") != "HDF":
        fail("attribute type")
    name = h5path.rsplit("/", 1)[-1]
    if item.text.strip() != f"{name}:/material":
        fail(f"data path {item.text.strip()} (want {name}:/material)")


def check_h5(path, box, level, ref):
    f = h5py.File(path, "r")
    d = f["material"]
    cells = cells_of(box, level)
    if d.dtype != np.uint16 or d.shape != (cells[2], cells[1], cells[0]):
        fail(f"/material {d.dtype} {d.shape}, want uint16 {cells[::-1]}")
    if d.compression not in (None, "gzip"):
        fail(f"/material uses filter {d.compression}")
    if list(d.attrs["box"]) != box or int(d.attrs["lod"][0]) != level:
        fail(f"attrs box {list(d.attrs['box'])} lod {d.attrs['lod']}")
    vs = list(d.attrs["voxel_size"])
    world_origin = list(d.attrs["world_origin"])
    s = 1 << level
    want = [(box[a] // s) * s * vs[a] + world_origin[a] for a in range(3)]
    if not np.allclose(d.attrs["origin"], want):
        fail(f"origin {d.attrs['origin']} vs {want}")
    m = f["materials"][:]
    if len(m) < 1 or m[0]["id"] != 0:
        fail("material table")
    data = d[...]
    if not ref.endswith(".h5"):
        expect = np.loadtxt(ref, dtype=np.uint16, ndmin=1).reshape(data.shape)
    else:
        g = h5py.File(ref, "r")["material"]
        full = g[...]
        gb = list(g.attrs["box"])
        if gb[:3] != [(box[a] // s) * s for a in range(3)]:
            fail("reference box is not the aligned box")
        expect = block_modes(full, gb[:3], level, cells)
    bad = np.argwhere(data != expect)
    if len(bad):
        k, j, i = bad[0]
        fail(f"{len(bad)} cells differ; first at cell z={k} y={j} x={i}: {data[k, j, i]} vs {expect[k, j, i]}")
    check_xdmf(path, data.shape, box, level, vs, world_origin)
    print(f"ok {path}: {data.shape} matches")


def decode_png(path):
    blob = open(path, "rb").read()
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        fail("not a PNG")
    at, idat, ihdr = 8, b"", None
    while at < len(blob):
        n, kind = struct.unpack(">I4s", blob[at:at + 8])
        body = blob[at + 8:at + 8 + n]
        if zlib.crc32(kind + body) != struct.unpack(">I", blob[at + 8 + n:at + 12 + n])[0]:
            fail("PNG chunk CRC")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype != 2 or interlace:
        fail(f"unexpected PNG format {ihdr}")
    raw = zlib.decompress(idat)
    stride = 3 * w
    img = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = np.frombuffer(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)], np.uint8).astype(np.int32)
        out = np.zeros(stride, np.int32)
        if ft in (0, 2):
            out = (line + (prev if ft == 2 else 0)) & 255
            img[y] = out
            prev = out
            continue
        for x in range(stride):
            a = out[x - 3] if x >= 3 else 0
            b = prev[x]
            c = prev[x - 3] if x >= 3 else 0
            if ft == 0:
                p = 0
            elif ft == 1:
                p = a
            elif ft == 2:
                p = b
            elif ft == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else b if pb <= pc else c
            out[x] = (line[x] + p) & 255
        img[y] = out
        prev = out
    return img.reshape(h, w, 3)


def check_png(path, h5path, axis, index):
    f = h5py.File(h5path, "r")
    data = f["material"][...]
    colours = {int(r["id"]): tuple(int(r[c]) for c in "rgb") for r in f["materials"][:]}
    if axis == "z":
        sl = data[index, :, :]          # rows y, cols x
    elif axis == "y":
        sl = data[:, index, :]          # rows z, cols x
    else:
        sl = data[:, :, index]          # rows z, cols y
    height, width = sl.shape
    s = max(1, MIN_SIDE // max(width, height))
    img = decode_png(path)
    ih, iw = img.shape[:2]
    if iw <= LEFT + width * s or ih < TOP + height * s:
        fail(f"PNG {iw}x{ih} too small for {width}x{height} cells at scale {s}")
    if iw - LEFT - width * s > 2500:
        fail(f"PNG {iw}x{ih} has an odd legend")
    for row in range(height):
        for col in range(width):
            px = img[TOP + (height - 1 - row) * s + s // 2, LEFT + col * s + s // 2]
            want = colours.get(int(sl[row, col]))
            if want is not None and tuple(px) != want:
                fail(f"pixel of cell row {row} col {col}: {tuple(px)} vs {want}")
    # the legend (right of the slice) carries each present colour as a swatch
    legend = img[:, LEFT + width * s:].reshape(-1, 3)
    present = {tuple(p) for p in legend.tolist()}
    for m in np.unique(sl):
        if int(m) in colours and colours[int(m)] not in present:
            fail(f"material {m} has no legend swatch")
    print(f"ok {path}: {iw}x{ih}, slice {width}x{height} at scale {s}")


def main():
    mode = sys.argv[1]
    if mode == "points":
        write_points(parse_box(sys.argv[2]), sys.argv[3])
    elif mode == "corners":
        write_block_corners(parse_box(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif mode == "h5":
        check_h5(sys.argv[2], parse_box(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif mode == "png":
        check_png(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        fail("unknown mode")


if __name__ == "__main__":
    main()
