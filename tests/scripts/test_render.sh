#!/bin/bash
# test_render.sh STRATA WORKDIR SRCDIR BUILDDIR: `strata render` from the command line:
# the same PNG at 1, 2 and 3 ranks, byte for byte; --hide by name and id, --lod,
# --units m, --exaggeration; bad cameras and options fail with clear messages.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"
run() { local np=$1; shift; mpirun --oversubscribe -np "$np" "$STRATA" "$@"; }
run 2 create w --dims 96,80,48 --chunk 16 --voxel-size 4,4,1 --generate terrain --seed 4 --quiet
for np in 1 2 3; do
  run $np render w -o r$np.png --size 200,150 2> err$np.txt || fail "np $np: $(cat err$np.txt)"
done
cmp r1.png r2.png || fail "2 ranks drew another picture than 1"
cmp r1.png r3.png || fail "3 ranks drew another picture than 1"
grep -q "vertical exaggeration [0-9.]*x (automatic)" err1.txt || fail "no exaggeration printed: $(cat err1.txt)"
run 2 render w -o e.png --size 200,150 --exaggeration 3 2> err.txt || fail "$(cat err.txt)"
grep -q "exaggeration 3x (--exaggeration)" err.txt || fail "exaggeration not used: $(cat err.txt)"
cmp -s r1.png e.png && fail "--exaggeration 3 drew the same picture"
run 2 render w -o h.png --size 200,150 --hide water 2> err.txt || fail "$(cat err.txt)"
run 2 render w -o h1.png --size 200,150 --hide 1 2> err.txt || fail "$(cat err.txt)"
cmp h.png h1.png || fail "--hide water and --hide 1 differ"
cmp -s h.png r1.png && fail "--hide water changed nothing"
run 2 render w -o l.png --size 200,150 --lod 2 2> err.txt || fail "$(cat err.txt)"
cmp -s l.png r1.png && fail "--lod 2 drew level 0"
# A camera in metres is the same camera in voxels (voxels 4 x 4 x 1 m, origin 0).
run 2 render w -o v.png --size 120,90 --camera "-20,-30,90|48,40,20|0,0,1|50" 2> err.txt || fail "$(cat err.txt)"
run 2 render w -o m.png --size 120,90 --units m --camera "-80,-120,90|192,160,20|0,0,1|50" 2> err.txt ||
  fail "$(cat err.txt)"
cmp v.png m.png || fail "--units m camera differs from the same camera in voxels"
bad() { # bad EXIT MESSAGE ARGS...
  local want=$1 msg=$2; shift 2
  set +e; run 2 render w -o bad.png "$@" > out.txt 2> err.txt; local rc=$?; set -e
  [ $rc = "$want" ] || fail "$* exited $rc, want $want: $(cat err.txt)"
  grep -q "$msg" err.txt || fail "$*: message lacks '$msg': $(cat err.txt)"
  [ ! -e bad.png ] || fail "$*: wrote a picture"
}
bad 1 "sees none of the world" --camera "48,40,100|48,40,200|0,1,0|40"
bad 1 "up vector (0, 0, 0) is zero" --camera "0,0,60|48,40,0|0,0,0|40"
bad 1 "along the view direction" --camera "48,40,100|48,40,0|0,0,1|40"
bad 1 "field of view 180" --camera "0,0,60|48,40,0|0,0,1|180"
bad 1 "field of view 0" --camera "0,0,60|48,40,0|0,0,1|0"
bad 1 "level 5 must be in" --lod 5
bad 2 "four parts" --camera "0,0,60|48,40,0"
bad 2 "neither a material id nor a name" --hide unobtainium
bad 2 "size wants" --size 0,10

echo "test_render: ok"
