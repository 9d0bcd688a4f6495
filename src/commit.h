/* commit.h: steps 4 to 6 of the commit protocol (described above strata_commit in
 * commit.c), which a commit, a reindex and a compaction share: build the next
 * manifest, then publish it (the commit point). Not public. */
#ifndef STRATA_COMMIT_H
#define STRATA_COMMIT_H

#include "world.h"

/**
 * The manifest for a new commit of `epoch`: the committed segments that live rows
 * still use once `fresh` (n rows sorted by key, bound for the new segment)
 * replaces the rank's rows of the same keys (a segment all of whose chunks were
 * rewritten since is left out), then the new segment if written. Collective.
 */
strata_status commit_next_manifest(strata_world *w, uint64_t epoch, int wrote_segment,
                                   const store_row *fresh, size_t n, manifest *next);
/** Record in `next` this job as the writer: its rank count and splitters. Local. */
strata_status commit_next_writers(strata_world *w, manifest *next);
/** Write the manifest (rank 0) for the given state and agree; then next (owned
 *  from here on, freed on failure) is the committed state, and the segments it
 *  no longer names are closed and (rank 0) unlinked: readers that opened them
 *  read on until they close. Releases the PUBLISH lock. Collective.
 *  STRATA_ERR_UNSYNCED (a failure after
 *  the commit point) is published too: next is the committed state, but the
 *  retired segments stay on disk. */
strata_status commit_publish(strata_world *w, manifest *next);

#endif
