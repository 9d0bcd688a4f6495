#!/usr/bin/python3
"""Three 256^3 uint8 volumes the tests do not know, for issue 18's index-size check
(docs/benchmarks.md, "Compact packs"): noise (smooth value noise cut into 5
materials), spheres (400 spheres of 11 materials in air), caves (5 wavy layers cut
by noise caves with walls of id 8). Raw order: x fastest, then y, then z; seed 7.

  synthetic_volumes.py noise|spheres|caves OUT.raw

then `mpirun -np 2 strata import W --raw OUT.raw --dims 256,256,256 --type uint8`,
`mpirun -np 2 strata compact W`, `bench/world_bytes.py W --peers`.
"""
import sys, numpy as np
N = 256
rng = np.random.default_rng(7)
def smooth_noise(scale):
    g = rng.random((N // scale + 2,) * 3)
    idx = np.arange(N) / scale
    i0 = idx.astype(int); f = idx - i0
    # trilinear
    def lerp(a, b, t): return a + (b - a) * t
    z, y, x = np.meshgrid(np.arange(N), np.arange(N), np.arange(N), indexing="ij")
    zi, yi, xi = i0[z], i0[y], i0[x]; zf, yf, xf = f[z], f[y], f[x]
    c = lambda dz, dy, dx: g[zi + dz, yi + dy, xi + dx]
    return lerp(lerp(lerp(c(0,0,0), c(0,0,1), xf), lerp(c(0,1,0), c(0,1,1), xf), yf),
                lerp(lerp(c(1,0,0), c(1,0,1), xf), lerp(c(1,1,0), c(1,1,1), xf), yf), zf)
kind = sys.argv[1]
if kind == "noise":
    n = smooth_noise(16) * 0.7 + smooth_noise(5) * 0.3
    v = np.digitize(n, [0.35, 0.45, 0.55, 0.65]).astype(np.uint8) + 1
elif kind == "spheres":
    v = np.zeros((N, N, N), np.uint8)
    z, y, x = np.ogrid[:N, :N, :N]
    for _ in range(400):
        cx, cy, cz = rng.integers(0, N, 3); r = rng.integers(3, 25); m = rng.integers(1, 12)
        sl = tuple(slice(max(0, c - r), min(N, c + r + 1)) for c in (cz, cy, cx))
        zz, yy, xx = z[sl[0]], y[:, sl[1]], x[:, :, sl[2]]
        mask = (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        v[sl][mask] = m
elif kind == "caves":
    x = np.arange(N)[None, :].astype(float); y = np.arange(N)[:, None].astype(float)
    z = np.arange(N)[:, None, None]
    v = np.zeros((N, N, N), np.uint8)
    for k in range(4, -1, -1):
        s = 40 + 35 * k + 10 * np.sin(x / (30 + 5 * k) + k) * np.cos(y / (45 + 3 * k))
        v[z < s[None]] = k + 1
    cave = smooth_noise(12)
    v[(cave > 0.62) & (v > 0)] = 0
    v[(cave > 0.60) & (cave <= 0.62) & (v > 0)] = 8  # cave walls
v.tofile(sys.argv[2])
