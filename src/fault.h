/* fault.h: fault injection points, compiled in always, free when unset.
 *
 * STRATA_FAULT=POINT[:RANK[:ACTION]] makes strata_fault_point(POINT) act on rank
 * RANK (default any) of MPI_COMM_WORLD: ACTION "kill" (default) raises SIGKILL,
 * "error" makes the point report a failure, "pause" stops there once (its pid
 * written to the file STRATA_FAULT_PAUSE, default strata-fault.paused) until
 * that file is removed. Points: segment-created (a segment's file created, its
 * space not yet reserved; extract-created: the same for an extraction's output),
 * segment-part (a segment dataset's collective
 * write, before its transfer), segment-written, manifest-before-rename,
 * manifest-after-rename, compact-written, update-batch, commit-publish-locked
 * (a commit holding the PUBLISH lock, its segment written), reindex-summarised,
 * reindex-written (its index segment written), reindex-publish-locked.
 * Tests arm them in-process with strata_fault_arm.
 */
#ifndef STRATA_FAULT_H
#define STRATA_FAULT_H

/** 1 when the point is armed with action "error"; never returns when "kill";
 *  0 after a "pause" ends. */
int strata_fault_point(const char *point);
/** Arm POINT (NULL: disarm) on rank RANK (-1: every rank) with action "error"
 *  (error = 1) or "kill"; replaces STRATA_FAULT. For tests. */
void strata_fault_arm(const char *point, int rank, int error);

#endif
