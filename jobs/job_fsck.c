/* job_fsck.c: `strata fsck WORLD`: verify everything; list problems on stdout. */
#include <inttypes.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

static const char usage[] = "strata fsck WORLD";

typedef struct {
    char *text;
    size_t length;
} problem_list;

static void collect(const char *problem, void *ctx)
{
    problem_list *l = ctx;
    size_t n = strlen(problem);
    char *grown = realloc(l->text, l->length + n + 2);
    if (!grown)
        return;
    l->text = grown;
    memcpy(l->text + l->length, problem, n);
    l->text[l->length + n] = '\n';
    l->length += n + 1;
    l->text[l->length] = '\0';
}

/* Rank 0 prints every rank's problems, rank by rank. */
static void print_problems(const job *j, const problem_list *l)
{
    int mine = (int)l->length;
    int *counts = j->rank == 0 ? calloc((size_t)j->size, sizeof *counts) : NULL;
    int *displs = j->rank == 0 ? calloc((size_t)j->size, sizeof *displs) : NULL;
    MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    size_t total = 0;
    char *all = NULL;
    if (j->rank == 0) {
        for (int r = 0; r < j->size; r++)
            displs[r] = (int)total, total += (size_t)counts[r];
        all = malloc(total + 1);
    }
    MPI_Gatherv(l->text, mine, MPI_CHAR, all, counts, displs, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (j->rank == 0 && all) {
        fwrite(all, 1, total, stdout);
        fflush(stdout);
    }
    free(all);
    free(counts);
    free(displs);
}

int job_fsck(job *j, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return job_usage(j, usage, "missing WORLD");
    if (argc > 2)
        return job_usage(j, usage, "unknown option %s", argv[2]);
    strata_world *w;
    strata_status st = strata_world_open(MPI_COMM_WORLD, argv[1], STRATA_CHECK, NULL, &w);
    if (st) {
        /* A world that cannot be opened is itself the problem to list. */
        if (j->rank == 0)
            printf("%s: %s\n", strata_strerror(st), strata_last_error(NULL));
        return job_fail(j, st, NULL);
    }
    problem_list l = {NULL, 0};
    uint64_t problems = 0;
    st = strata_fsck(w, collect, &l, &problems);
    print_problems(j, &l);
    free(l.text);
    strata_world_close(w);
    if (st)
        return job_fail(j, st, NULL);
    job_summary(j, "%s: %s, %" PRIu64 " problem%s, checked in %.3f s", argv[1],
                problems ? "DAMAGED" : "clean", problems, problems == 1 ? "" : "s",
                MPI_Wtime() - j->start);
    return problems ? JOB_FAILED : JOB_OK;
}
