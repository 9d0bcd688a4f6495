"""check_paraview.py XMF...: open each extraction with ParaView's XDMF readers
(XDMFReader and Xdmf3ReaderS, run by pvpython without a display) and compare every
cell with the HDF5 file read by h5py: dimensions (points = cells + 1), origin and
spacing (the file's origin, and voxel_size times 2^lod), the uint16 type and every value.
Exits non-zero naming the file, reader and what differs."""
import os
import sys

import h5py
import numpy as np
import paraview.simple as ps
from paraview import servermanager as sm


def main(paths):
    for path in paths:
        path = os.path.abspath(path)  # Xdmf3ReaderS needs a path with a directory
        with h5py.File(path[:-4] + ".h5", "r") as f:
            m = f["material"][...]
            attrs = f["material"].attrs
            origin = [float(v) for v in attrs["origin"]]  # x, y, z in world units
            lod = int(attrs["lod"][0])
            spacing = [float(v) * (1 << lod) for v in attrs["voxel_size"]]
        for name in ("XDMFReader", "Xdmf3ReaderS"):
            r = ps.XDMFReader(FileNames=[path]) if name == "XDMFReader" else ps.Xdmf3ReaderS(FileName=[path])
            d = sm.Fetch(r)
            a = d.GetCellData().GetArray("material")
            where = f"{os.path.basename(path)} ({name})"
            if a is None:
                sys.exit(f"{where}: no cell array 'material'")
            dims = tuple(d.GetDimensions())
            want = (m.shape[2] + 1, m.shape[1] + 1, m.shape[0] + 1)
            if dims != want:
                sys.exit(f"{where}: dimensions {dims}, want {want}")
            if a.GetDataTypeAsString() != "unsigned short":
                sys.exit(f"{where}: type {a.GetDataTypeAsString()}")
            vals = np.array([a.GetValue(i) for i in range(a.GetNumberOfTuples())], dtype=np.uint16)
            if not np.array_equal(vals, m.ravel()):
                bad = int(np.flatnonzero(vals != m.ravel())[0])
                sys.exit(f"{where}: cell {bad} is {vals[bad]}, h5py reads {m.ravel()[bad]}")
            if tuple(round(v, 9) for v in d.GetOrigin()) != tuple(round(v, 9) for v in origin):
                sys.exit(f"{where}: origin {d.GetOrigin()}, the file says {origin}")
            if tuple(round(v, 9) for v in d.GetSpacing()) != tuple(round(v, 9) for v in spacing):
                sys.exit(f"{where}: spacing {d.GetSpacing()}, the file says {spacing}")
            print(f"{where}: {a.GetNumberOfTuples()} cells equal, origin {d.GetOrigin()}, spacing {d.GetSpacing()}")


if __name__ == "__main__":
    main(sys.argv[1:])
