#!/bin/bash
# test_enospc.sh: a full file system (issue 24, item 1). A commit, a compaction and a
# create whose segment does not fit on a small tmpfs fail on every rank, exit 1, name
# ENOSPC and the segment (an extraction: its output), leave no orphan segment, never hang or crash, and leave the
# world as it was (fsck clean). Needs mount (root); skips (77) where it cannot mount.
# Usage: test_enospc.sh STRATA WORKDIR SOURCE_DIR BUILD_DIR
set -u
STRATA=$1 WORK=$2
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
rm -rf "$WORK" && mkdir -p "$WORK/fs" && cd "$WORK" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { local np=$1; shift; timeout -k 10 40 mpirun -np "$np" "$STRATA" "$@" < /dev/null; }
FS=$WORK/fs
if ! mount -t tmpfs -o size=1m strata-enospc "$FS" 2> mount.err; then
    echo "SKIP: cannot mount a tmpfs here: $(cat mount.err)"
    exit 77
fi
trap 'umount "$FS" 2> /dev/null' EXIT

run 2 create W --dims 256,256,128 --generate terrain --quiet || fail "create W"
/usr/bin/python3 - > big.txt <<'PY'
import random
r = random.Random(24)
for _ in range(400000):
    print(r.randrange(256), r.randrange(256), r.randrange(128), r.randrange(1, 9))
PY

# expect_enospc WHAT WORLD SEGMENT RC: the job failed as a full disk must fail
expect_enospc() {
    [ "$4" = 1 ] || fail "$1: exit $4, not 1 (124 is a hang, 139 a crash): $(tail -3 err.txt)"
    grep -q "ENOSPC" err.txt && grep -q "$3" err.txt || fail "$1: message names no ENOSPC and $3: $(cat err.txt)"
    [ ! -e "$2/$3" ] || fail "$1: orphan $3 left"
}

for np in 1 2 4; do
    rm -rf "$FS/W" && cp -r W "$FS/W"
    run $np update "$FS/W" big.txt --quiet 2> err.txt; rc=$?
    expect_enospc "update at $np ranks" "$FS/W" seg-00000000000000000002.h5 $rc
    run $np fsck "$FS/W" --quiet > /dev/null 2>&1 || fail "update at $np ranks: fsck after ENOSPC"
    cmp "$FS/W/MANIFEST" W/MANIFEST || fail "update at $np ranks: MANIFEST changed"
done
echo "ok update at 1, 2, 4 ranks"

# compaction: a second copy of the world's data does not fit beside a filler
rm -rf "$FS/W" && cp -r W "$FS/W"
free=$(df -k --output=avail "$FS" | tail -1)
dd if=/dev/zero of="$FS/filler" bs=1k count=$((free - 200)) 2> /dev/null
run 3 compact "$FS/W" --quiet 2> err.txt; rc=$?
expect_enospc "compact at 3 ranks" "$FS/W" seg-00000000000000000002.h5 $rc
run 1 fsck "$FS/W" --quiet > /dev/null 2>&1 || fail "compact: fsck after ENOSPC"
rm -f "$FS/filler"
echo "ok compact at 3 ranks"

# create: the first segment does not fit
run 2 create "$FS/big" --dims 512,512,256 --generate terrain --quiet 2> err.txt; rc=$?
expect_enospc "create at 2 ranks" "$FS/big" seg-00000000000000000001.h5 $rc
[ ! -e "$FS/big" ] || fail "create at 2 ranks left a world: $(ls "$FS/big")"
echo "ok create at 2 ranks"

# extraction: the output does not fit; no partial output is left
for np in 1 4; do
    run $np extract W --box 0,0,0,256,256,128 -o "$FS/out.h5" --quiet 2> err.txt; rc=$?
    expect_enospc "extract at $np ranks" "$FS" out.h5.partial $rc
    [ -z "$(ls "$FS" | grep out)" ] || fail "extract at $np ranks left $(ls "$FS")"
done
echo "ok extract at 1, 4 ranks"
