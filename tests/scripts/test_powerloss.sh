#!/bin/bash
# test_powerloss.sh STRATA WORKDIR SRCDIR BUILDDIR: power loss, not only kill -9
# (docs/reliability.md, "Power loss"). A killed process leaves the page cache, so
# a missing fsync passes every crash test; here the LD_PRELOAD shim
# tests/powerloss/powerloss.c records what each fsync made durable, and after the
# run the world directory is rebuilt from that alone (names as of the directory's
# last fsync, contents as of each file's last fsync, never-synced files empty).
# For each operation (updates at 2 ranks, the cut on rank 0 or rank 1, and a
# compaction, which unlinks segments): run it whole, then lose the power: the
# acknowledged commit must be there. Then, from the same start, cut the power
# before each fsync the chosen rank makes in turn: the world must be at the
# previous commit or the one in flight, voxel for voxel, and fsck clean.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"
SHIM=$BUILD/tests/powerloss.so
[ -f "$SHIM" ] || fail "no shim at $SHIM"
# A sanitized build preloads its runtime first; the shim follows it.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
# The commit MANIFEST names (the world is checked by get and fsck, not by this).
epoch() { sed -n 's/^epoch //p' w/MANIFEST; }
voxels() { $STRATA get w --points pts.txt -q; }

# snapshot: everything in w is durable now. revert: w as the last fsyncs left it.
snapshot() {
  rm -rf state && mkdir state
  $py - <<'PY'
import os, shutil
with open("state/dir.list", "w") as f:
    for e in os.scandir("w"):
        f.write("%d %s\n" % (e.inode(), e.name))
        shutil.copyfile(e.path, "state/ino-%d" % e.inode())
PY
}
revert() {
  $py - <<'PY'
import os, shutil
for e in os.scandir("w"):
    os.unlink(e.path)
for line in open("state/dir.list"):
    ino, name = line.rstrip("\n").split(" ", 1)
    src = "state/ino-" + ino
    if os.path.exists(src):
        shutil.copyfile(src, "w/" + name)
    else:
        open("w/" + name, "w").close()   # named, but its content never synced
PY
}
check() { # label, then allowed "epoch:reference" pairs
  local label=$1; shift
  local e got
  got=$(voxels 2> check.err) || fail "$label: the world does not read after the power loss: $(cat check.err)"
  e=$(epoch)
  $STRATA fsck w --quiet > fsck.out 2>&1 || fail "$label: fsck after the power loss: $(cat fsck.out)"
  for pair in "$@"; do
    if [ "$e" = "${pair%%:*}" ]; then
      [ "$got" = "$(cat "${pair#*:}")" ] || fail "$label: epoch $e but its voxels differ"
      return 0
    fi
  done
  fail "$label: epoch $e after the power loss, allowed: $*"
}

$STRATA create w --dims 64,48,32 --chunk 16 --generate terrain --seed 5 --quiet
$py - <<'PY'
import random
r = random.Random(21)
with open("pts.txt", "w") as f:
    for _ in range(3000):
        f.write("%d %d %d\n" % (r.randrange(64), r.randrange(48), r.randrange(32)))
for k in range(1, 4):
    with open("upd%d.txt" % k, "w") as f:
        for _ in range(4000):
            f.write("%d %d %d %d\n" % (r.randrange(64), r.randrange(48), r.randrange(32), 100 * k + r.randrange(50)))
PY

cases=0
voxels > ref-after.txt # each case starts from where the last one ended
# np, the rank whose fsyncs are cut, the command
while read -r np rank cmd; do
  [ -n "$np" ] || continue
  label="np $np, cut on rank $rank: $cmd"
  rm -rf pre && cp -a w pre
  before=$(epoch)
  cp ref-after.txt ref-before.txt
  # Whole, then the power goes: the acknowledged commit survives.
  snapshot
  LD_PRELOAD=$SHIM POWERLOSS_DIR=w POWERLOSS_STATE=state POWERLOSS_RANK=$rank \
    timeout -k 10 60 mpirun --oversubscribe -np "$np" $STRATA $cmd --quiet < /dev/null 2> run.err ||
    fail "$label: the run without power loss failed: $(cat run.err)"
  fsyncs=$(cat "state/fsyncs.$rank" 2> /dev/null || echo 0)
  [ "$fsyncs" -gt 0 ] || fail "$label: rank $rank made no fsync the shim saw"
  # One rank per node fsyncs a written segment (store_write_segment): the others none.
  for r in $(seq 1 $((np - 1))); do
    [ ! -s "state/fsyncs.$r" ] || fail "$label: rank $r made $(cat "state/fsyncs.$r") fsyncs; rank 0 fsyncs for its node"
  done
  after=$(epoch)
  [ "$after" -gt "$before" ] || fail "$label: nothing committed"
  voxels > ref-after.txt
  revert
  check "$label, power lost after the acknowledgement" "$after:ref-after.txt"
  rm -rf post && cp -a w post
  for cut in $(seq 1 "$fsyncs"); do
    rm -rf w && cp -a pre w
    snapshot
    rc=0
    LD_PRELOAD=$SHIM POWERLOSS_DIR=w POWERLOSS_STATE=state POWERLOSS_RANK=$rank POWERLOSS_CUT=$cut \
      timeout -k 10 60 mpirun --oversubscribe -np "$np" $STRATA $cmd --quiet < /dev/null > /dev/null 2>&1 || rc=$?
    [ $rc = 124 ] && fail "$label: hung after the cut before fsync $cut"
    [ $rc = 0 ] && fail "$label: the run survived its cut before fsync $cut"
    revert
    check "$label, power lost before fsync $cut of $fsyncs" "$before:ref-before.txt" "$after:ref-after.txt"
    cases=$((cases + 1))
  done
  rm -rf w && cp -a post w
done <<'EOF2'
2 0 update w upd2.txt
2 0 update w upd3.txt
2 0 compact w
EOF2
echo "test_powerloss: ok ($cases cuts)"
