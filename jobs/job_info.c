/* job_info.c: `strata info WORLD [--json]`. */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata info WORLD [--json]";

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

static void print_json(const strata_info *in, const strata_config *cfg)
{
    printf("{\n  \"dims\": [%" PRId64 ", %" PRId64 ", %" PRId64 "],\n", in->dims[0], in->dims[1], in->dims[2]);
    printf("  \"chunk_edge\": %d,\n", in->chunk_edge);
    printf("  \"voxel_size\": [%.6f, %.6f, %.6f],\n", in->voxel_size[0], in->voxel_size[1], in->voxel_size[2]);
    printf("  \"origin\": [%.6f, %.6f, %.6f],\n", in->origin[0], in->origin[1], in->origin[2]);
    printf("  \"epoch\": %" PRIu64 ",\n  \"commits\": %" PRIu64 ",\n  \"writer_ranks\": %d,\n",
           in->epoch, in->commits, in->writer_ranks);
    printf("  \"segments\": %" PRIu64 ",\n  \"stored_bytes\": %" PRIu64 ",\n  \"payload_bytes\": %" PRIu64 ",\n",
           in->segments, in->stored_bytes, in->payload_bytes);
    printf("  \"chunks\": {\"total\": %" PRIu64 ", \"uniform\": %" PRIu64 ", \"dense\": %" PRIu64
           ", \"absent\": %" PRIu64 "},\n", in->chunks_total, in->chunks_uniform, in->chunks_dense,
           in->chunks_total - in->chunks_uniform - in->chunks_dense);
    printf("  \"ranks\": %d,\n  \"metadata_bytes_per_rank\": %" PRIu64 ",\n", in->ranks, in->metadata_bytes);
    printf("  \"materials\": [");
    for (size_t i = 0; i < cfg->material_count; i++) {
        const strata_material *m = &cfg->materials[i];
        printf("%s\n    {\"id\": %u, \"name\": ", i ? "," : "", m->id);
        print_json_string(m->name);
        printf(", \"rgb\": [%u, %u, %u]}", m->rgb[0], m->rgb[1], m->rgb[2]);
    }
    printf("\n  ]\n}\n");
}

static void print_text(const char *path, const strata_info *in, const strata_config *cfg)
{
    printf("world          %s\n", path);
    printf("dims           %" PRId64 " x %" PRId64 " x %" PRId64 " voxels\n", in->dims[0], in->dims[1], in->dims[2]);
    printf("chunk edge     %d\n", in->chunk_edge);
    printf("voxel size     %.6f %.6f %.6f m\n", in->voxel_size[0], in->voxel_size[1], in->voxel_size[2]);
    printf("origin         %.6f %.6f %.6f m\n", in->origin[0], in->origin[1], in->origin[2]);
    printf("epoch          %" PRIu64 " (%" PRIu64 " commits), last written by %d ranks\n", in->epoch,
           in->commits, in->writer_ranks);
    printf("segments       %" PRIu64 ", %" PRIu64 " bytes on disk, %" PRIu64 " payload bytes\n",
           in->segments, in->stored_bytes, in->payload_bytes);
    printf("chunks         %" PRIu64 " in the world: %" PRIu64 " uniform, %" PRIu64 " dense, %" PRIu64
           " absent (air)\n", in->chunks_total, in->chunks_uniform, in->chunks_dense,
           in->chunks_total - in->chunks_uniform - in->chunks_dense);
    printf("metadata       %" PRIu64 " bytes per rank (largest, %d ranks)\n", in->metadata_bytes, in->ranks);
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
        else if (strcmp(argv[i], "--quiet") && strcmp(argv[i], "-q"))
            return job_usage(j, usage, "unknown option %s", argv[i]);
    }
    strata_world *w;
    strata_status st = strata_world_open(MPI_COMM_WORLD, argv[1], STRATA_READ, NULL, &w);
    if (st)
        return job_fail(j, st, NULL);
    strata_info info;
    strata_config cfg;
    st = strata_world_info(w, &info);
    if (!st)
        st = strata_world_config(w, &cfg);
    if (st) {
        int rc = job_fail(j, st, w);
        strata_world_close(w);
        return rc;
    }
    if (j->rank == 0) {
        if (json)
            print_json(&info, &cfg);
        else
            print_text(argv[1], &info, &cfg);
        fflush(stdout);
    }
    strata_world_close(w);
    return JOB_OK;
}
