#!/bin/bash
# test_enospc_late.sh: a file system that fills after the room check (issue 24, item 1).
# The job pauses on rank 0 at a fault point (STRATA_FAULT=POINT:0:pause, src/fault.h),
# the 1 MiB tmpfs is filled meanwhile, then the job goes on: deterministic, not timed.
# A segment's (an extraction's output's) file created but its space not yet reserved
# (segment-created, extract-created); the space reserved and the writes under way
# (segment-part: the commit succeeds); MANIFEST.tmp (commit-publish-locked: the segment
# written, PUBLISH held) and MANIFEST.reindex.tmp (reindex-written); then PNG outputs
# that do not fit (extract --png, render -o). Each failure is on every rank: exit 1, the
# message names ENOSPC and the file, no orphan (segment, its reserve, index segment,
# temporary manifest, partial output or picture), no hang or crash, the world at its
# previous commit (MANIFEST byte for byte after each case, fsck clean after each group).
# Needs mount (root); skips (77) where it cannot mount.
# Usage: test_enospc_late.sh STRATA WORKDIR SOURCE_DIR BUILD_DIR
set -u
. "$(dirname "$0")/common.sh" "$@"
mkdir -p "$WORK/fs"
. "$3/tests/scripts/enospc_common.sh"
mount_tmpfs

# late NP POINT JOB ARGS...: the job pauses on rank 0 at POINT, the tmpfs fills, the job
# goes on; its exit code in $rc, its messages in err.txt. A job that never reaches the
# point fails the test (bounded wait).
export STRATA_FAULT_PAUSE=$WORK/paused
late() {
    local np=$1 point=$2 pid i
    shift 2
    rm -f "$STRATA_FAULT_PAUSE"
    STRATA_FAULT=$point:0:pause run "$np" "$@" 2> err.txt &
    pid=$!
    for i in $(seq 300); do [ -e "$STRATA_FAULT_PAUSE" ] && break; sleep 0.1; done
    [ -e "$STRATA_FAULT_PAUSE" ] || { kill "$pid"; fail "$* at $np ranks: never reached $point"; }
    fill_disk
    rm -f "$STRATA_FAULT_PAUSE"
    wait "$pid"
    rc=$?
    rm -f "$FS/filler"
}

run 2 create W --dims 256,256,128 --generate terrain --quiet || fail "create W"
cp -r W "$FS/W"
/usr/bin/python3 -c 'import random
r = random.Random(7)
for _ in range(2000): print(r.randrange(256), r.randrange(256), r.randrange(128), r.randrange(1, 9))' > small.txt

# The disk fills once the segment's file is created, before rank 0 reserves its space
# (segment-created): the reservation fails, every rank closes the open HDF5 file (rank
# 0 freed the reserve for it) and the file goes
S1=seg-00000000000000000001.h5 S2=seg-00000000000000000002.h5
for np in 1 2 4; do
    late $np segment-created update "$FS/W" small.txt --quiet
    expect_enospc "segment of an update at $np ranks" "$FS/W" $S2 $rc $S2.reserve
    same_manifest "segment of an update at $np ranks"
done
late 3 segment-created compact "$FS/W" --quiet
expect_enospc "segment of a compaction at 3 ranks" "$FS/W" $S2 $rc $S2.reserve
same_manifest "segment of a compaction at 3 ranks"
late 2 segment-created reindex "$FS/W" --full
expect_enospc "segment of a reindex at 2 ranks" "$FS/W" idx-00000000000000000001.h5 $rc \
    idx-00000000000000000001.h5.reserve
unchanged "segment of an update, a compaction and a reindex"
head -c 65536 /dev/urandom > labels.raw
late 3 segment-created import "$FS/imp" --raw labels.raw --dims 64,64,16 --type uint8 --quiet
expect_enospc "segment of an import at 3 ranks" "$FS/imp" $S1 $rc
[ ! -e "$FS/imp" ] || fail "import at 3 ranks left a world: $(ls "$FS/imp")"
echo "ok segment created, then the disk full: update at 1, 2, 4 ranks, compact at 3, reindex at 2, import at 3"

# The same for an extraction's output (extract-created): no partial output is left
for np in 1 4; do
    late $np extract-created extract W --box 0,0,0,64,64,32 -o "$FS/out.h5" --quiet
    expect_enospc "extract at $np ranks" "$FS" out.h5.partial $rc out.h5.partial.reserve out.h5
    [ -z "$(ls "$FS" | grep out)" ] || fail "extract at $np ranks left $(ls "$FS")"
done
echo "ok output created, then the disk full: extract at 1, 4 ranks"

# The disk fills during the segment's writes (segment-part): its space is reserved, so
# the commit succeeds (what the reservation held past the segment's end is freed after
# its close, and MANIFEST.tmp fits there)
for np in 3; do
    late $np segment-part update "$FS/W" small.txt --quiet
    [ "$rc" = 0 ] || fail "update at $np ranks filling the disk as it writes: exit $rc: $(cat err.txt)"
    grep -q "^epoch 2$" "$FS/W/MANIFEST" || fail "update at $np ranks: not committed: $(head -3 "$FS/W/MANIFEST")"
    [ ! -e "$FS/W/$S2.reserve" ] || fail "update at $np ranks: $S2.reserve left"
    run 1 fsck "$FS/W" --quiet > /dev/null 2>&1 || fail "update at $np ranks: fsck"
    rm -rf "$FS/W" && cp -r W "$FS/W"
done
echo "ok the disk filled during the segment's writes: update at 3 ranks committed"

# MANIFEST: the segment is written, MANIFEST.tmp is not: MANIFEST stays, the segment goes
for np in 1 4; do
    late $np commit-publish-locked update "$FS/W" small.txt --quiet
    expect_enospc "MANIFEST of an update at $np ranks" "$FS/W" MANIFEST.tmp $rc \
        seg-00000000000000000002.h5
    same_manifest "MANIFEST of an update at $np ranks"
done
unchanged "MANIFEST of an update"
for np in 1 3; do
    late $np reindex-written reindex "$FS/W" --full
    expect_enospc "MANIFEST of a reindex at $np ranks" "$FS/W" MANIFEST.reindex.tmp $rc \
        idx-00000000000000000001.h5
    same_manifest "MANIFEST of a reindex at $np ranks"
done
unchanged "MANIFEST of a reindex"
late 2 commit-publish-locked create "$FS/new" --dims 128,128,64 --generate terrain --quiet
expect_enospc "MANIFEST of a create at 2 ranks" "$FS/new" MANIFEST.tmp $rc
[ ! -e "$FS/new" ] || fail "create at 2 ranks left a world: $(ls "$FS/new")"
echo "ok MANIFEST of an update at 1, 4 ranks, of a reindex at 1, 3 ranks, of a create at 2 ranks"

# Pictures: no room for the PNG (extract's HDF5 output, written elsewhere, is whole)
fill_disk 8
run 2 extract W --box 0,0,0,256,256,128 -o slice.h5 --png "$FS/slice.png" --quiet 2> err.txt
expect_enospc "extract --png at 2 ranks" "$FS" slice.png.partial $? slice.png
run 3 render W -o "$FS/view.png" --size 400,300 --quiet 2> err.txt
expect_enospc "render at 3 ranks" "$FS" view.png.partial $? view.png
rm -f "$FS/filler"
echo "ok extract --png at 2 ranks, render at 3 ranks"
