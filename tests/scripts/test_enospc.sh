#!/bin/bash
# test_enospc.sh: a full file system (issue 24, item 1), found before anything is
# written. On a 1 MiB tmpfs with 8 KiB left, an update, compaction, reindex, import or
# create whose segment (reindex: index segment) does not fit, and an extraction whose
# output does not, fail on every rank, exit 1, name ENOSPC and the file, leave no orphan
# (segment, partial output, world), never hang or crash, and leave the world as it was
# (MANIFEST byte for byte, fsck clean). test_enospc_late.sh fills the disk after the
# check. Needs mount (root); skips (77) where it cannot mount.
# Usage: test_enospc.sh STRATA WORKDIR SOURCE_DIR BUILD_DIR
set -u
. "$(dirname "$0")/common.sh" "$@"
mkdir -p "$WORK/fs"
. "$3/tests/scripts/enospc_common.sh"
mount_tmpfs

run 2 create W --dims 256,256,128 --generate terrain --quiet || fail "create W"
cp -r W "$FS/W"
/usr/bin/python3 -c 'import random
r = random.Random(24)
for _ in range(2000): print(r.randrange(256), r.randrange(256), r.randrange(128), r.randrange(1, 9))' > small.txt
fill_disk 8

for np in 1 2 4; do
    run $np update "$FS/W" small.txt --quiet 2> err.txt; rc=$?
    expect_enospc "update at $np ranks" "$FS/W" seg-00000000000000000002.h5 $rc
    same_manifest "update at $np ranks"
done
echo "ok update at 1, 2, 4 ranks"

# compaction: a second copy of the world's data
run 3 compact "$FS/W" --quiet 2> err.txt; rc=$?
expect_enospc "compact at 3 ranks" "$FS/W" seg-00000000000000000002.h5 $rc
same_manifest "compact at 3 ranks"
echo "ok compact at 3 ranks"

# reindex: the index segment idx-<serial>.h5
for np in 1 2 3 4; do
    run $np reindex "$FS/W" --full 2> err.txt; rc=$?
    expect_enospc "reindex at $np ranks" "$FS/W" idx-00000000000000000001.h5 $rc
    same_manifest "reindex at $np ranks"
done
unchanged "update, compact and reindex"
echo "ok reindex at 1, 2, 3, 4 ranks"

# create and import: the first segment; no world is left
run 2 create "$FS/new" --dims 256,256,128 --generate terrain --quiet 2> err.txt; rc=$?
expect_enospc "create at 2 ranks" "$FS/new" seg-00000000000000000001.h5 $rc
[ ! -e "$FS/new" ] || fail "create at 2 ranks left a world: $(ls "$FS/new")"
echo "ok create at 2 ranks"
head -c 262144 /dev/urandom > labels.raw # random labels: incompressible
for np in 1 2 3 4; do
    run $np import "$FS/imp" --raw labels.raw --dims 64,64,64 --type uint8 --quiet 2> err.txt; rc=$?
    expect_enospc "import at $np ranks" "$FS/imp" seg-00000000000000000001.h5 $rc
    [ ! -e "$FS/imp" ] || fail "import at $np ranks left a world: $(ls "$FS/imp")"
done
echo "ok import at 1, 2, 3, 4 ranks"

# extraction: the output; no partial output is left
for np in 1 4; do
    run $np extract W --box 0,0,0,128,128,128 -o "$FS/out.h5" --quiet 2> err.txt; rc=$?
    expect_enospc "extract at $np ranks" "$FS" out.h5.partial $rc out.h5
    [ -z "$(ls "$FS" | grep out)" ] || fail "extract at $np ranks left $(ls "$FS")"
done
echo "ok extract at 1, 4 ranks"
