/*
 * mpi_fault.c: every fault point (src/fault.h) with its "error" action, on one
 * rank at a time. Each case: every rank returns the same status and message,
 * nothing hangs, a fresh reader sees the previous or the new version whole and
 * fsck is clean; then the same handle retries and reaches the new version (a
 * failed call leaves the handle usable). A failure after the commit point
 * (manifest-after-rename) is STRATA_ERR_UNSYNCED with the new version committed.
 */
#include "fault.h"
#include "fault_check.h"

typedef enum { OP_UPDATE, OP_COMMIT, OP_COMPACT, OP_REINDEX } operation;

static const struct {
    const char *point;
    operation op;
    int only_rank; /* -1: reached by every rank; else only this one */
    strata_status expected;
} points[] = {
    {"update-batch", OP_UPDATE, -1, STRATA_ERR_IO},
    {"segment-created", OP_COMMIT, -1, STRATA_ERR_IO},
    {"segment-part", OP_COMMIT, -1, STRATA_ERR_HDF5},
    {"segment-written", OP_COMMIT, -1, STRATA_ERR_IO},
    {"manifest-before-rename", OP_COMMIT, 0, STRATA_ERR_IO},
    {"manifest-after-rename", OP_COMMIT, 0, STRATA_ERR_UNSYNCED},
    {"compact-written", OP_COMPACT, -1, STRATA_ERR_IO},
    {"segment-part", OP_REINDEX, -1, STRATA_ERR_HDF5},
    {"manifest-after-rename", OP_REINDEX, 0, STRATA_ERR_UNSYNCED},
    {"reindex-summarised", OP_REINDEX, -1, STRATA_ERR_IO},
    {"reindex-written", OP_REINDEX, -1, STRATA_ERR_IO},
    {"reindex-publish-locked", OP_REINDEX, -1, STRATA_ERR_IO},
};

static const char *op_name(operation op)
{
    return op == OP_UPDATE    ? "update"
           : op == OP_COMMIT  ? "commit"
           : op == OP_COMPACT ? "compact"
                              : "reindex";
}

/* One case: the world is at `version`; the operation moves it to version + 1. */
static void run_case(const char *path, strata_world *w, int p, int rank, int *version)
{
    int v = *version;
    operation op = points[p].op;
    fc_begin("%s:%d:error during %s at %d ranks", points[p].point, rank, op_name(op), mt_size);
    /* Everything but the failing step is done unarmed. */
    strata_status st = op == OP_UPDATE ? STRATA_OK : fc_write(w, v + 1);
    if (!st && op != OP_UPDATE && op != OP_COMMIT)
        st = strata_commit(w, NULL);
    MT_CHECK(!st, "%s: preparing: %s", fc_case, strata_last_error(w));
    int moves = op == OP_UPDATE || op == OP_COMMIT; /* the failing call is what moves the version */
    strata_fault_arm(points[p].point, rank, 1);
    st = op == OP_UPDATE    ? fc_write(w, v + 1)
         : op == OP_COMMIT  ? strata_commit(w, NULL)
         : op == OP_COMPACT ? strata_compact(w, NULL)
                            : strata_reindex(w, 1, NULL);
    strata_fault_arm(NULL, -1, 0);
    int reached = points[p].only_rank < 0 || points[p].only_rank == rank;
    strata_status want = reached ? points[p].expected : STRATA_OK;
    fc_agreed(st, w);
    MT_CHECK(st == want, "%s: status %s (%s), expected %s", fc_case, strata_strerror(st),
             strata_last_error(w), strata_strerror(want));
    int committed = !moves || st == STRATA_OK || st == STRATA_ERR_UNSYNCED;
    if (op == OP_UPDATE) {
        /* Nothing half-applied: the handle's routed reads see the whole batch or none. */
        int seen = fc_version(w, v, v + 1);
        MT_CHECK(seen == (st ? v : v + 1), "%s: flushed state is version %d", fc_case, seen);
    }
    if (op != OP_UPDATE) {
        int seen = fc_check_world(path, v, v + 1);
        MT_CHECK(seen == (committed ? v + 1 : v), "%s: the world is at version %d", fc_case, seen);
    }
    /* The handle is still usable: retry, commit, and reach version v + 1. */
    fc_begin("%s:%d:error during %s at %d ranks: retry", points[p].point, rank, op_name(op),
             mt_size);
    st = STRATA_OK;
    if (op == OP_UPDATE && points[p].expected && reached)
        st = fc_write(w, v + 1);
    if (!st)
        st = strata_commit(w, NULL);
    if (!st && op == OP_COMPACT)
        st = strata_compact(w, NULL);
    if (!st && op == OP_REINDEX)
        st = strata_reindex(w, 1, NULL);
    MT_CHECK(!st, "%s: retry: %s", fc_case, strata_last_error(w));
    MT_CHECK(fc_check_world(path, v, v + 1) == v + 1, "%s: retry did not reach version %d", fc_case,
             v + 1);
    *version = v + 1;
    alarm(0);
}

int main(int argc, char **argv)
{
    const char *dir = mt_init(&argc, &argv);
    char path[4096];
    snprintf(path, sizeof path, "%s/world", dir);
    fc_begin("create at %d ranks", mt_size);
    strata_world *w = NULL;
    strata_status st = fc_create(path, &w);
    MT_CHECK(!st, "create: %s", strata_last_error(NULL));
    int version = 1;
    if (!st)
        st = fc_write(w, 1);
    if (!st)
        st = strata_commit(w, NULL);
    MT_CHECK(!st, "first commit: %s", strata_last_error(w));
    for (int p = 0; !st && p < (int)(sizeof points / sizeof points[0]); p++)
        for (int rank = 0; rank < mt_size; rank++)
            run_case(path, w, p, rank, &version);
    if (w)
        strata_world_close(w);
    alarm(0);
    return mt_finish("mpi_fault");
}
