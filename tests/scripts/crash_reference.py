#!/usr/bin/python3
"""Reference content for the reliability script tests (no Strata code involved).

  crash_reference.py points OUT DX DY DZ STRIDE   grid of points, every STRIDE voxels
  crash_reference.py updates POINTS OUT N SEED    N random updates on those points
                                                  (repeats included: the last one wins)
  crash_reference.py apply PREV POINTS UPDATES OUT
        PREV is `strata get --points POINTS` output (one id per line); OUT is what
        it must become once UPDATES is committed (last update of a voxel wins).
  crash_reference.py block POINTS OUT VALUE X0 X1 Y0 Y1 Z0 Z1 [STRIDE]
        an update file setting every STRIDE-th voxel of the box to VALUE.
"""
import random
import sys


def read_points(path):
    pts = []
    for line in open(path):
        line = line.split("#")[0].split()
        if line:
            pts.append(tuple(int(v) for v in line[:3]))
    return pts


def main(argv):
    cmd = argv[1]
    if cmd == "points":
        out, dx, dy, dz, s = argv[2], *map(int, argv[3:7])
        with open(out, "w") as f:
            for z in range(0, dz, s):
                for y in range(0, dy, s):
                    for x in range(0, dx, s):
                        f.write(f"{x} {y} {z}\n")
    elif cmd == "updates":
        pts = read_points(argv[2])
        n, seed = int(argv[4]), int(argv[5])
        rnd = random.Random(seed)
        with open(argv[3], "w") as f:
            f.write(f"# {n} updates, seed {seed}\n")
            for _ in range(n):
                x, y, z = rnd.choice(pts)
                f.write(f"{x} {y} {z} {rnd.randrange(0, 60)}\n")
    elif cmd == "apply":
        prev = [int(v) for v in open(argv[2]).read().split()]
        pts = read_points(argv[3])
        assert len(prev) == len(pts), "reference and point file differ in length"
        where = {p: i for i, p in enumerate(pts)}
        for line in open(argv[4]):
            line = line.split("#")[0].split()
            if line:
                x, y, z, m = (int(v) for v in line[:4])
                prev[where[(x, y, z)]] = m
        with open(argv[5], "w") as f:
            f.write("".join(f"{v}\n" for v in prev))
    elif cmd == "block":
        out, value = argv[3], int(argv[4])
        x0, x1, y0, y1, z0, z1 = map(int, argv[5:11])
        s = int(argv[11]) if len(argv) > 11 else 1
        with open(out, "w") as f:
            for z in range(z0, z1, s):
                for y in range(y0, y1, s):
                    for x in range(x0, x1, s):
                        f.write(f"{x} {y} {z} {value}\n")
    else:
        sys.exit(f"unknown command {cmd}")


main(sys.argv)
