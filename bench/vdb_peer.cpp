// vdb_peer.cpp: OpenVDB beside Strata on the same terrain, in the same process.
//
// Builds the strata terrain world (strata_generate_terrain, seed 1), copies its
// voxels into an OpenVDB grid of uint16 (Tree4<uint16_t, 5, 4, 3>, background
// air, air voxels left inactive, pruned), then measures, interleaved and
// best of N: random reads over the whole volume through a value accessor and
// through strata_read_voxel (every read checked equal), random writes through
// the accessor and through strata_stage + strata_flush, the grid's memory, and
// the .vdb file size (OpenVDB's default compression) against the world's files.
// Writes its rows in the JSON row format of bench_suite.h.
//
// Usage: vdb_peer [--quick] [--dims X,Y,Z] [--dir SCRATCH] [--out FILE.json]   (one rank)
#include <openvdb/openvdb.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "strata.h"

using UInt16Tree = openvdb::tree::Tree4<uint16_t, 5, 4, 3>::Type;
using UInt16Grid = openvdb::Grid<UInt16Tree>;

namespace
{

struct Row {
    std::string id, peer, what, volume, pattern, unit, better, limit, target, compare;
    double value;
    std::vector<double> samples;
    uint64_t count;
};

double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

uint64_t next_random(uint64_t &state)
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void fail(const char *what, strata_world *w)
{
    std::fprintf(stderr, "vdb_peer: %s: %s\n", what, strata_last_error(w));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

void json_string(FILE *f, const std::string &s)
{
    std::fputc('"', f);
    for (char c : s) {
        if (c == '"' || c == '\\')
            std::fprintf(f, "\\%c", c);
        else if (static_cast<unsigned char>(c) < 0x20)
            std::fprintf(f, "\\u%04x", c);
        else
            std::fputc(c, f);
    }
    std::fputc('"', f);
}

void write_rows(const char *path, const std::vector<Row> &rows, const std::string &command)
{
    std::string tmp = std::string(path) + ".tmp";
    FILE *f = std::fopen(tmp.c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "vdb_peer: cannot write %s\n", tmp.c_str());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    std::fprintf(f, "{\n  \"suite\": \"vdb_peer\",\n  \"ranks\": 1,\n  \"command\": ");
    json_string(f, command);
    std::fprintf(f, ",\n  \"openvdb\": \"%s\",\n  \"rows\": [\n",
                 openvdb::getLibraryAbiVersionString());
    for (size_t i = 0; i < rows.size(); i++) {
        const Row &r = rows[i];
        std::fprintf(f, "    {\"id\": ");
        json_string(f, r.id);
        const std::pair<const char *, const std::string *> fields[] = {
            {"group", nullptr},    {"peer", &r.peer},       {"what", &r.what},
            {"volume", &r.volume}, {"pattern", &r.pattern}, {"unit", &r.unit},
            {"better", &r.better}, {"target", &r.target},   {"limit", &r.limit},
            {"command", &command}};
        for (const auto &field : fields) {
            std::fprintf(f, ", \"%s\": ", field.first);
            json_string(f, field.second ? *field.second : std::string("openvdb"));
        }
        std::fprintf(f,
                     ", \"ranks\": 1, \"durable\": %s, \"value\": %.6g, \"count\": %llu, "
                     "\"best_of\": %zu, \"samples\": [",
                     r.unit == "bytes" && r.id.find("file") != std::string::npos ? "true" : "false",
                     r.value, static_cast<unsigned long long>(r.count), r.samples.size());
        for (size_t k = 0; k < r.samples.size(); k++)
            std::fprintf(f, "%s%.6g", k ? ", " : "", r.samples[k]);
        std::fprintf(f, "], \"compare\": [");
        if (!r.compare.empty())
            json_string(f, r.compare);
        std::fprintf(f, "]}%s\n", i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    if (std::fclose(f) != 0 || std::rename(tmp.c_str(), path) != 0) {
        std::fprintf(stderr, "vdb_peer: cannot write %s\n", path);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

Row make_row(const char *id, const char *peer, const char *unit, bool lower_better,
             const std::vector<double> &samples, const std::string &volume)
{
    Row r;
    r.id = id, r.peer = peer, r.unit = unit, r.volume = volume;
    r.better = lower_better ? "lower" : "higher";
    r.samples = samples;
    r.value = lower_better ? *std::min_element(samples.begin(), samples.end())
                           : *std::max_element(samples.begin(), samples.end());
    r.count = 0;
    return r;
}

uint64_t file_bytes(const std::string &path)
{
    struct stat sb;
    return stat(path.c_str(), &sb) == 0 ? static_cast<uint64_t>(sb.st_size) : 0;
}

} // namespace

// The .vdb file of a stored world (issue 18's per-volume storage rows): every
// non-air voxel set through an accessor, the tree pruned, written with OpenVDB's
// default compression to DIR/NAME.vdb; its size.
static double world_vdb_bytes(const std::string &name, const std::string &path,
                              const std::string &dir, std::string *volume)
{
    strata_world *w = nullptr;
    strata_info info;
    if (strata_world_open(MPI_COMM_SELF, path.c_str(), STRATA_READ, nullptr, &w) ||
        strata_world_info(w, &info))
        fail(("opening " + path).c_str(), w);
    const int c = info.chunk_edge;
    const int64_t *d = info.dims;
    std::vector<uint16_t> chunk(static_cast<size_t>(c) * c * c);
    UInt16Grid::Ptr grid = UInt16Grid::create(0);
    UInt16Grid::Accessor acc = grid->getAccessor();
    for (int64_t cz = 0; cz * c < d[2]; cz++)
        for (int64_t cy = 0; cy * c < d[1]; cy++)
            for (int64_t cx = 0; cx * c < d[0]; cx++) {
                if (strata_load_chunk(w, cx, cy, cz, chunk.data()))
                    fail("loading a chunk", w);
                for (int z = 0; z < c && cz * c + z < d[2]; z++)
                    for (int y = 0; y < c && cy * c + y < d[1]; y++)
                        for (int x = 0; x < c && cx * c + x < d[0]; x++) {
                            uint16_t v = chunk[(static_cast<size_t>(z) * c + y) * c + x];
                            if (v)
                                acc.setValue(openvdb::Coord(static_cast<int>(cx * c + x),
                                                            static_cast<int>(cy * c + y),
                                                            static_cast<int>(cz * c + z)),
                                             v);
                        }
            }
    strata_world_close(w);
    grid->tree().prune();
    grid->setName("material");
    std::string vdb_path = dir + "/" + name + ".vdb";
    openvdb::io::File file(vdb_path);
    file.write({grid});
    file.close();
    char text[256];
    std::snprintf(text, sizeof text, "%s: %ld x %ld x %ld (the world %s, chunk %d)", name.c_str(),
                  static_cast<long>(d[0]), static_cast<long>(d[1]), static_cast<long>(d[2]),
                  path.c_str(), c);
    *volume = text;
    return static_cast<double>(file_bytes(vdb_path));
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 1) {
        std::fprintf(stderr,
                     "vdb_peer: run it with one rank (OpenVDB is the single-process peer)\n");
        MPI_Finalize();
        return 2;
    }
    bool quick = false;
    int64_t dims[3] = {512, 512, 256};
    std::string dir = "/tmp/strata-vdb-peer-" + std::to_string(getpid()), out = "vdb_peer.json";
    std::string command = "vdb_peer";
    std::vector<std::pair<std::string, std::string>> worlds; // --world NAME=PATH
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        command += " " + a;
        if (a == "--world" && i + 1 < argc && std::strchr(argv[i + 1], '=')) {
            std::string v = argv[++i];
            command += " " + v;
            worlds.emplace_back(v.substr(0, v.find('=')), v.substr(v.find('=') + 1));
        } else if (a == "--quick") {
            quick = true;
            dims[0] = 192, dims[1] = 192, dims[2] = 128;
        } else if ((a == "--dims" || a == "--dir" || a == "--out") && i + 1 < argc) {
            std::string v = argv[++i];
            command += " " + v;
            if (a == "--dir")
                dir = v;
            else if (a == "--out")
                out = v;
            else if (std::sscanf(v.c_str(), "%ld,%ld,%ld", &dims[0], &dims[1], &dims[2]) != 3) {
                std::fprintf(stderr, "vdb_peer: --dims needs X,Y,Z\n");
                MPI_Abort(MPI_COMM_WORLD, 2);
            }
        } else {
            std::fprintf(
                stderr,
                "usage: vdb_peer [--quick] [--dims X,Y,Z] [--dir SCRATCH] [--out FILE.json]\n"
                "                [--world NAME=PATH]...\n");
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    }
    char volume[256];
    std::snprintf(volume, sizeof volume, "%ld x %ld x %ld layered terrain (seed 1, chunk %d)",
                  static_cast<long>(dims[0]), static_cast<long>(dims[1]),
                  static_cast<long>(dims[2]), STRATA_CHUNK_EDGE_DEFAULT);
    std::string world_path = dir + "/world";
    mkdir(dir.c_str(), 0755);

    // The same terrain as `strata bench`, generated by the library.
    strata_config cfg;
    strata_config_init(&cfg);
    std::memcpy(cfg.dims, dims, sizeof cfg.dims);
    strata_world *w = nullptr;
    if (strata_world_create(MPI_COMM_SELF, world_path.c_str(), &cfg, nullptr, STRATA_CREATE_FORCE,
                            &w))
        fail("creating the world", nullptr);
    if (strata_generate_terrain(w, 1) || strata_commit(w, nullptr))
        fail("generating terrain", w);
    const int c = cfg.chunk_edge;
    std::vector<uint16_t> chunk(static_cast<size_t>(c) * c * c);

    // Build the grid: only the insertion and pruning are timed, not strata's decode.
    openvdb::initialize();
    UInt16Grid::registerGrid();
    UInt16Grid::Ptr grid = UInt16Grid::create(0);
    double build = 0;
    {
        UInt16Grid::Accessor acc = grid->getAccessor();
        for (int64_t cz = 0; cz * c < dims[2]; cz++)
            for (int64_t cy = 0; cy * c < dims[1]; cy++)
                for (int64_t cx = 0; cx * c < dims[0]; cx++) {
                    if (strata_load_chunk(w, cx, cy, cz, chunk.data()))
                        fail("loading a chunk", w);
                    double t0 = now();
                    for (int z = 0; z < c && cz * c + z < dims[2]; z++)
                        for (int y = 0; y < c && cy * c + y < dims[1]; y++)
                            for (int x = 0; x < c && cx * c + x < dims[0]; x++) {
                                uint16_t v = chunk[(static_cast<size_t>(z) * c + y) * c + x];
                                if (v)
                                    acc.setValue(openvdb::Coord(static_cast<int>(cx * c + x),
                                                                static_cast<int>(cy * c + y),
                                                                static_cast<int>(cz * c + z)),
                                                 v);
                            }
                    build += now() - t0;
                }
        double t0 = now();
        grid->tree().prune();
        build += now() - t0;
    }
    std::vector<Row> rows;
    Row r = make_row("vdb_build", "openvdb", "s", true, {build}, volume);
    r.what = "OpenVDB grid built from the terrain through a value accessor (setValue of every "
             "non-air voxel) and pruned; uint16 Tree4<5,4,3>";
    r.pattern = "every voxel once, chunk by chunk";
    r.limit = "one accessor setValue per voxel";
    rows.push_back(r);

    // Random reads over the whole volume, every strata chunk resident first.
    size_t n = quick ? 200000 : 2000000;
    std::vector<int32_t> p(3 * n);
    uint64_t state = 12345;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < 3; a++)
            p[3 * i + a] =
                static_cast<int32_t>(next_random(state) % static_cast<uint64_t>(dims[a]));
    for (int64_t z = 0; z < dims[2]; z += c)
        for (int64_t y = 0; y < dims[1]; y += c)
            for (int64_t x = 0; x < dims[0]; x += c) {
                uint16_t m;
                if (strata_read_voxel(w, x, y, z, &m))
                    fail("warming the chunks", w);
            }
    std::vector<double> vdb_reads, strata_reads;
    std::vector<uint16_t> a(n), b(n);
    for (int rep = 0; rep < 5; rep++) {
        UInt16Grid::ConstAccessor acc = grid->getConstAccessor();
        double t0 = now();
        for (size_t i = 0; i < n; i++)
            a[i] = acc.getValue(openvdb::Coord(p[3 * i], p[3 * i + 1], p[3 * i + 2]));
        vdb_reads.push_back((now() - t0) / static_cast<double>(n) * 1e9);
        t0 = now();
        for (size_t i = 0; i < n; i++)
            if (strata_read_voxel(w, p[3 * i], p[3 * i + 1], p[3 * i + 2], &b[i]))
                fail("reading a voxel", w);
        strata_reads.push_back((now() - t0) / static_cast<double>(n) * 1e9);
        if (a != b) {
            std::fprintf(stderr, "vdb_peer: OpenVDB and strata disagree on the terrain\n");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    char pattern[256];
    std::snprintf(pattern, sizeof pattern,
                  "%zu uniform random voxels over the whole volume, "
                  "interleaved with the other side, values checked equal",
                  n);
    r = make_row("vdb_read_hot", "openvdb", "ns per read", true, vdb_reads, volume);
    r.what = "ConstAccessor::getValue on the pruned grid";
    r.pattern = pattern;
    r.limit = "the tree walk from the accessor's cached node; one cache miss per leaf";
    rows.push_back(r);
    r = make_row("vdb_peer_strata_read_hot", "strata", "ns per read", true, strata_reads, volume);
    r.what = "strata_read_voxel of the committed state, every chunk resident (same process, same "
             "points)";
    r.pattern = pattern;
    r.compare = "vdb_read_hot";
    r.target = "no slower than OpenVDB's value accessor";
    r.limit = "the chunk hash lookup and one cache miss into a 64 KiB chunk";
    rows.push_back(r);

    // Random writes: accessor setValue vs staging + one flush (route + apply).
    std::vector<double> vdb_writes, strata_writes;
    for (int rep = 0; rep < 3; rep++) {
        UInt16Grid::Accessor acc = grid->getAccessor();
        double t0 = now();
        for (size_t i = 0; i < n; i++)
            acc.setValue(openvdb::Coord(p[3 * i], p[3 * i + 1], p[3 * i + 2]),
                         static_cast<uint16_t>(2 + (i + rep) % 12));
        vdb_writes.push_back((now() - t0) / static_cast<double>(n) * 1e9);
        t0 = now();
        for (size_t i = 0; i < n; i++)
            if (strata_stage(w, p[3 * i], p[3 * i + 1], p[3 * i + 2],
                             static_cast<uint16_t>(2 + (i + rep) % 12)))
                fail("staging", w);
        if (strata_flush(w, nullptr))
            fail("flushing", w);
        strata_writes.push_back((now() - t0) / static_cast<double>(n) * 1e9);
    }
    std::snprintf(pattern, sizeof pattern, "%zu uniform random voxels over the whole volume", n);
    r = make_row("vdb_write_random", "openvdb", "ns per write", true, vdb_writes, volume);
    r.what = "Accessor::setValue (in memory; inactive tiles and air become leaves as needed)";
    r.pattern = pattern;
    r.limit = "leaf allocation where a write lands in a pruned tile";
    rows.push_back(r);
    r = make_row("vdb_peer_strata_write_random", "strata", "ns per write", true, strata_writes,
                 volume);
    r.what = "strata_stage of each update, then one strata_flush (route + apply, in memory, not "
             "committed)";
    r.pattern = pattern;
    r.compare = "vdb_write_random";
    r.limit = "staging, the radix sort by chunk key, densifying uniform chunks on first write";
    rows.push_back(r);

    // Memory and files.
    strata_info info;
    if (strata_world_info(w, &info))
        fail("describing the world", w);
    std::string vdb_path = dir + "/terrain.vdb";
    openvdb::io::File vdb_file(vdb_path);
    grid->setName("material");
    vdb_file.write({grid});
    vdb_file.close();
    r = make_row("vdb_memory_bytes", "openvdb", "bytes", true,
                 {static_cast<double>(grid->memUsage())}, volume);
    r.what = "Grid::memUsage() after the build and the random writes";
    r.pattern = "the whole terrain resident";
    r.limit = "leaf nodes of 8^3 uint16 values plus masks for every mixed or non-air block";
    rows.push_back(r);
    r = make_row("strata_resident_bytes", "strata", "bytes", true,
                 {static_cast<double>(info.cache_bytes + info.dirty_bytes)}, volume);
    r.what = "resident chunk bytes (clean + dirty) of the world after the same reads and writes";
    r.pattern = "the whole terrain resident";
    r.compare = "vdb_memory_bytes";
    r.limit = "dense 32^3 uint16 chunks; uniform chunks cost a few bytes";
    rows.push_back(r);
    r = make_row("vdb_file_bytes", "openvdb", "bytes", true,
                 {static_cast<double>(file_bytes(vdb_path))}, volume);
    r.what = ".vdb file of the grid (io::File::write, OpenVDB's default compression)";
    r.pattern = "the terrain after the random writes";
    r.limit = "OpenVDB's leaf compression (zip/blosc of active values)";
    rows.push_back(r);
    r = make_row("vdb_peer_strata_files", "strata", "bytes", true,
                 {static_cast<double>(info.stored_bytes)}, volume);
    r.what = "the world's live segment files (payloads, LOD pyramids, chunk tables) of the terrain";
    r.pattern = "the committed terrain (before the random writes)";
    r.compare = "vdb_file_bytes";
    r.target = ">= 5x smaller than the .vdb file";
    r.limit = "the LOD pyramids stored beside the payloads";
    rows.push_back(r);
    for (Row &row : rows)
        row.count = n;

    strata_world_close(w);
    for (auto &nw : worlds) {
        std::string vol;
        double bytes = world_vdb_bytes(nw.first, nw.second, dir, &vol);
        r = make_row(("vdb_file_bytes_" + nw.first).c_str(), "openvdb", "bytes", true, {bytes},
                     vol);
        r.what = ".vdb file of a stored world's voxels (io::File::write, OpenVDB's default "
                 "compression; air is the background)";
        r.pattern = "every non-air voxel set once, then pruned";
        r.limit = "OpenVDB's leaf compression (zip/blosc of active values)";
        rows.push_back(r);
        std::printf("%-8s .vdb file %14.0f bytes\n", nw.first.c_str(), bytes);
    }
    write_rows(out.c_str(), rows, command);
    std::string cleanup = "rm -rf '" + dir + "'";
    if (std::system(cleanup.c_str()) != 0)
        std::fprintf(stderr, "vdb_peer: could not remove %s\n", dir.c_str());
    std::fprintf(stderr, "vdb_peer: %zu rows written to %s\n", rows.size(), out.c_str());
    MPI_Finalize();
    return 0;
}
