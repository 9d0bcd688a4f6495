// vdb_levelset.cpp: a world's non-air voxels as an OpenVDB level set (FloatGrid,
// voxel size 1, index = voxel coordinates), for vdb_render beside strata render
// (bench/render_bench.sh). Built only where OpenVDB is installed.
//
// Usage: mpirun -np 1 vdb_levelset WORLD OUT.vdb
#include <openvdb/openvdb.h>
#include <openvdb/tools/TopologyToLevelSet.h>

#include <cstdio>
#include <vector>

#include "strata.h"

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc != 3) {
        std::fprintf(stderr, "usage: vdb_levelset WORLD OUT.vdb\n");
        MPI_Finalize();
        return 2;
    }
    strata_world *w;
    if (strata_world_open(MPI_COMM_WORLD, argv[1], STRATA_READ, nullptr, &w)) {
        std::fprintf(stderr, "vdb_levelset: %s\n", strata_last_error(nullptr));
        MPI_Finalize();
        return 1;
    }
    strata_config cfg;
    strata_world_config(w, &cfg);
    const int64_t c = cfg.chunk_edge;
    openvdb::initialize();
    openvdb::BoolGrid::Ptr solid = openvdb::BoolGrid::create(false);
    auto acc = solid->getAccessor();
    std::vector<uint16_t> v(static_cast<size_t>(c * c * c));
    int rc = 0;
    for (int64_t cz = 0; cz * c < cfg.dims[2] && !rc; cz++)
        for (int64_t cy = 0; cy * c < cfg.dims[1] && !rc; cy++)
            for (int64_t cx = 0; cx * c < cfg.dims[0] && !rc; cx++) {
                if (strata_load_chunk(w, cx, cy, cz, v.data())) {
                    std::fprintf(stderr, "vdb_levelset: %s\n", strata_last_error(w));
                    rc = 1;
                    break;
                }
                for (int64_t z = 0; z < c && cz * c + z < cfg.dims[2]; z++)
                    for (int64_t y = 0; y < c && cy * c + y < cfg.dims[1]; y++)
                        for (int64_t x = 0; x < c && cx * c + x < cfg.dims[0]; x++)
                            if (v[static_cast<size_t>((z * c + y) * c + x)])
                                acc.setValueOn(openvdb::Coord(static_cast<int>(cx * c + x),
                                                              static_cast<int>(cy * c + y),
                                                              static_cast<int>(cz * c + z)),
                                               true);
            }
    strata_world_close(w);
    if (!rc) {
        openvdb::FloatGrid::Ptr ls = openvdb::tools::topologyToLevelSet(*solid, 3, 0, 0, 0);
        ls->setName("surface");
        openvdb::io::File file(argv[2]);
        file.write({ls});
        file.close();
        std::fprintf(stderr, "vdb_levelset: %s: %zu active voxels\n", argv[2],
                     static_cast<size_t>(ls->activeVoxelCount()));
    }
    MPI_Finalize();
    return rc;
}
