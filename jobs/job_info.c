/* job_info.c: `strata info WORLD [--json]`. */
#include <inttypes.h>
#include <time.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata info WORLD [--json]";

/* Voxel totals of planet-scale worlds exceed 64 bits (the Earth at 1 m is
 * 1.6e19 voxels): count them in 128 bits and print in decimal. */
static void format_voxels(const int64_t dims[3], char *out, size_t size)
{
    __extension__ unsigned __int128 v = (unsigned __int128)(uint64_t)dims[0] * (uint64_t)dims[1];
    v *= (uint64_t)dims[2];
    char digits[48];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v && n < (int)sizeof digits);
    size_t i = 0;
    while (n > 0 && i + 1 < size)
        out[i++] = digits[--n];
    out[i] = '\0';
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* Voxels per second of the last rebuild (0 when none was timed). */
static double rebuild_rate(const strata_info *in, const strata_index_info *ix)
{
    double voxels = (double)ix->rebuild_chunks * in->chunk_edge * in->chunk_edge * in->chunk_edge;
    return ix->rebuild_seconds > 0 ? voxels / ix->rebuild_seconds : 0;
}

/* Seconds since the last reindex published (-1: none did). */
static double rebuild_age(const strata_index_info *ix)
{
    if (ix->rebuilt_at <= 0)
        return -1;
    double age = (double)time(NULL) - ix->rebuilt_at;
    return age > 0 ? age : 0;
}

static void print_json_index(const strata_info *in, const strata_index_info *ix)
{
    printf(
        "  \"index\": {\"data_epoch\": %" PRIu64 ", \"index_epoch\": %" PRIu64
        ", \"lag_epochs\": %" PRIu64 ", \"stale_chunks\": %" PRIu64 ", \"rebuild_chunks\": %" PRIu64
        ", \"rebuild_seconds\": %.6f, \"rebuild_voxels_per_second\": %.6f"
        ", \"rebuilt_at\": %.3f, \"rebuild_age_seconds\": %.3f, \"index_segments\": %" PRIu64
        ", \"chunk_level\": %d, \"max_level\": %d, \"replicated_level\": %d},\n",
        ix->data_epoch, ix->index_epoch, ix->data_epoch - ix->index_epoch, ix->stale_chunks,
        ix->rebuild_chunks, ix->rebuild_seconds, rebuild_rate(in, ix), ix->rebuilt_at,
        rebuild_age(ix), ix->index_segments, ix->chunk_level, ix->max_level, ix->replicated_level);
}

static void print_text_index(const strata_info *in, const strata_index_info *ix)
{
    printf("index          epoch %" PRIu64 " (data epoch %" PRIu64 ", %" PRIu64 " behind), %" PRIu64
           " stale chunks\n",
           ix->index_epoch, ix->data_epoch, ix->data_epoch - ix->index_epoch, ix->stale_chunks);
    printf("last rebuild   %" PRIu64 " chunks in %.3f s (%.3g voxels/s)", ix->rebuild_chunks,
           ix->rebuild_seconds, rebuild_rate(in, ix));
    double age = rebuild_age(ix);
    if (age >= 0)
        printf(", published %.0f s ago", age);
    if (ix->index_segments)
        printf(", %" PRIu64 " index segment%s live", ix->index_segments,
               ix->index_segments == 1 ? "" : "s");
    printf("\n");
    printf("LOD levels     0..%d (chunk = %d), replicated on every rank from level %d\n",
           ix->max_level, ix->chunk_level, ix->replicated_level);
}

static void print_json(const strata_info *in, const strata_config *cfg, const strata_index_info *ix)
{
    printf("{\n  \"dims\": [%" PRId64 ", %" PRId64 ", %" PRId64 "],\n", in->dims[0], in->dims[1],
           in->dims[2]);
    char voxels[48];
    format_voxels(in->dims, voxels, sizeof voxels);
    printf("  \"voxels\": %s,\n", voxels);
    printf("  \"chunk_edge\": %d,\n", in->chunk_edge);
    printf("  \"voxel_size\": [%.6f, %.6f, %.6f],\n", in->voxel_size[0], in->voxel_size[1],
           in->voxel_size[2]);
    printf("  \"origin\": [%.6f, %.6f, %.6f],\n", in->origin[0], in->origin[1], in->origin[2]);
    printf("  \"epoch\": %" PRIu64 ",\n  \"commits\": %" PRIu64 ",\n  \"writer_ranks\": %d,\n",
           in->epoch, in->commits, in->writer_ranks);
    printf("  \"segments\": %" PRIu64 ",\n  \"stored_bytes\": %" PRIu64
           ",\n  \"payload_bytes\": %" PRIu64 ",\n",
           in->segments, in->stored_bytes, in->payload_bytes);
    printf("  \"chunks\": {\"total\": %" PRIu64 ", \"uniform\": %" PRIu64 ", \"dense\": %" PRIu64
           ", \"absent\": %" PRIu64 "},\n",
           in->chunks_total, in->chunks_uniform, in->chunks_dense,
           in->chunks_total - in->chunks_uniform - in->chunks_dense);
    printf("  \"ranks\": %d,\n  \"metadata_bytes_per_rank\": %" PRIu64 ",\n", in->ranks,
           in->metadata_bytes);
    printf("  \"deltas\": {\"records\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"chunks\": %" PRIu64
           ", \"deepest_chain\": %d},\n",
           in->deltas, in->delta_bytes, in->delta_chunks, in->delta_depth_max);
    print_json_index(in, ix);
    printf("  \"materials\": [");
    for (size_t i = 0; i < cfg->material_count; i++) {
        const strata_material *m = &cfg->materials[i];
        printf("%s\n    {\"id\": %u, \"name\": ", i ? "," : "", m->id);
        print_json_string(m->name);
        printf(", \"rgb\": [%u, %u, %u]}", m->rgb[0], m->rgb[1], m->rgb[2]);
    }
    printf("\n  ]\n}\n");
}

static void print_text(const char *path, const strata_info *in, const strata_config *cfg,
                       const strata_index_info *ix)
{
    printf("world          %s\n", path);
    printf("dims           %" PRId64 " x %" PRId64 " x %" PRId64 " voxels\n", in->dims[0],
           in->dims[1], in->dims[2]);
    char voxels[48];
    format_voxels(in->dims, voxels, sizeof voxels);
    printf("voxels         %s\n", voxels);
    printf("chunk edge     %d\n", in->chunk_edge);
    printf("voxel size     %.6f %.6f %.6f m\n", in->voxel_size[0], in->voxel_size[1],
           in->voxel_size[2]);
    printf("origin         %.6f %.6f %.6f m\n", in->origin[0], in->origin[1], in->origin[2]);
    printf("epoch          %" PRIu64 " (%" PRIu64 " commits), last written by %d ranks\n",
           in->epoch, in->commits, in->writer_ranks);
    printf("segments       %" PRIu64 ", %" PRIu64 " bytes on disk, %" PRIu64 " payload bytes\n",
           in->segments, in->stored_bytes, in->payload_bytes);
    printf("deltas         %" PRIu64 " records pending, %" PRIu64 " bytes, on %" PRIu64
           " chunks, deepest chain %d (strata compact folds them)\n",
           in->deltas, in->delta_bytes, in->delta_chunks, in->delta_depth_max);
    printf("chunks         %" PRIu64 " in the world: %" PRIu64 " uniform, %" PRIu64
           " dense, %" PRIu64 " absent (air)\n",
           in->chunks_total, in->chunks_uniform, in->chunks_dense,
           in->chunks_total - in->chunks_uniform - in->chunks_dense);
    printf("metadata       %" PRIu64 " bytes per rank (largest, %d ranks)\n", in->metadata_bytes,
           in->ranks);
    print_text_index(in, ix);
    printf("materials      %zu\n", cfg->material_count);
    for (size_t i = 0; i < cfg->material_count; i++)
        printf("  %5u %-24s #%02x%02x%02x\n", cfg->materials[i].id, cfg->materials[i].name,
               cfg->materials[i].rgb[0], cfg->materials[i].rgb[1], cfg->materials[i].rgb[2]);
}

int job_info(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    int json = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else
            return job_usage(j, usage, "unknown option %s", argv[i]);
    }
    strata_world *w;
    strata_status st = strata_world_open(MPI_COMM_WORLD, argv[1], STRATA_READ, NULL, &w);
    if (st)
        return job_fail(j, st, NULL);
    strata_info info;
    strata_config cfg;
    strata_index_info ix;
    st = strata_world_info(w, &info);
    if (!st)
        st = strata_index_status(w, 0, &ix);
    if (!st)
        st = strata_world_config(w, &cfg);
    if (st)
        return job_fail_close(j, st, w);
    if (j->rank == 0) {
        if (json)
            print_json(&info, &cfg, &ix);
        else
            print_text(argv[1], &info, &cfg, &ix);
        fflush(stdout);
    }
    strata_world_close(w);
    return JOB_OK;
}
