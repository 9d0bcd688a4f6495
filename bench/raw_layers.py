#!/usr/bin/python3
"""A 512 x 512 x 256 uint8 volume that is not the project's generator, for
`strata import --raw` (issue 18's storage figures, docs/benchmarks.md):
six layers under wavy surfaces s_k = 30 + 30k + 12 sin(x/(40+7k) + k)
cos(y/(55+5k)) + 5 sin((x+y)/17 + k) (material k + 1 below s_k and above
s_{k-1}), 300 ore boxes of id 9 (2-9 voxels per side, seed 1) below the top
surface, air (0) above. Raw order: x fastest, then y, then z.

  raw_layers.py OUT.raw
"""
import sys

import numpy as np

X, Y, Z = 512, 512, 256
x = np.arange(X)[None, :].astype(np.float64)
y = np.arange(Y)[:, None].astype(np.float64)
v = np.zeros((Z, Y, X), np.uint8)
z = np.arange(Z)[:, None, None]
below = np.full((Z, Y, X), False)
for k in range(5, -1, -1):  # the top layer first, then the ones under it overwrite
    s = 30 + 30 * k + 12 * np.sin(x / (40 + 7 * k) + k) * np.cos(y / (55 + 5 * k)) \
        + 5 * np.sin((x + y) / 17 + k)
    v[z < s[None, :, :]] = k + 1
rng = np.random.default_rng(1)
top = v != 0
for _ in range(300):
    sx, sy, sz = rng.integers(2, 10, 3)
    bx, by, bz = rng.integers(0, X - sx), rng.integers(0, Y - sy), rng.integers(0, 200)
    box = v[bz:bz + sz, by:by + sy, bx:bx + sx]
    box[top[bz:bz + sz, by:by + sy, bx:bx + sx]] = 9
v.tofile(sys.argv[1])
