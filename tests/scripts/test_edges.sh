#!/bin/bash
# test_edges.sh: answers at the edges of arithmetic (issue 24): thresholds on
# planet-sized blocks decided on integer counts, metre coordinates on exact voxel
# boundaries, worlds that create must refuse, strict --cache-mb, and messages.
# Usage: test_edges.sh STRATA WORKDIR SOURCE_DIR BUILD_DIR
set -u
. "$(dirname "$0")/common.sh" "$@"

# ---- --threshold 1 on blocks of more than 2^53 voxels ---------------------------------------
# (N-1)/N rounds to 1.0 in a double once N passes 2^53: a block of 2^54 voxels with
# one voxel of 9 must still be mixed at threshold 1.
P=$WORK/planet
run 1 create "$P" --dims 262144,262144,262144 --quiet || fail "create planet"
echo "5 5 5 9" > one.txt
run 2 update "$P" one.txt --quiet || fail "update planet"
for np in 1 2; do
    [ "$(run $np get "$P" 5 5 5 --lod 18 --threshold 1 --quiet)" = 9 ] ||
        fail "$np ranks: get --lod 18 --threshold 1 called the planet homogeneous"
    [ "$(run $np get "$P" 5 5 5 --lod 18 --threshold 0.9 --quiet)" = 0 ] ||
        fail "$np ranks: get --lod 18 --threshold 0.9"
    run $np region "$P" --box 0,0,0,8,8,8 --lod 0 --threshold 1 --quiet > regions.txt ||
        fail "region planet"
    grep -qx "5 5 5 6 6 6 9 1.000000" regions.txt || fail "$np ranks: region lacks voxel 9: $(head -3 regions.txt)"
    [ "$(wc -l < regions.txt)" = 22 ] || fail "$np ranks: region --threshold 1: $(wc -l < regions.txt) regions"
done
echo "ok threshold 1 on 2^54-voxel blocks"

# ---- --units m on exact voxel boundaries ------------------------------------------------------
# Voxel i spans [o + i*s, o + (i+1)*s) (README): with s = 0.1 and o = 3, 3 + 13 * 0.1 == 4.3
# in double arithmetic, so 4.3 is voxel 13, though floor((4.3 - 3) / 0.1) is 12.
M=$WORK/metres
run 1 create "$M" --dims 2,2,40 --chunk 16 --voxel-size 1,1,0.1 --origin 0,0,3 --quiet || fail "create metres"
for z in $(seq 0 39); do echo "0 0 $z $((z + 1))"; done > column.txt
run 1 update "$M" column.txt --quiet || fail "update column"
[ "$(run 1 get "$M" 0 0 4.3 --units m --quiet)" = 14 ] || fail "get 0 0 4.3 --units m is not voxel 13"
# every boundary and every mid-point, as decimals and as o + i*s, against the rule
/usr/bin/python3 - > sweep.txt <<'PY'
import math
o, s = 3.0, 0.1
def voxel(p):  # the README's rule, by search
    i = math.floor((p - o) / s)
    while o + i * s > p: i -= 1
    while o + (i + 1) * s <= p: i += 1
    return i
for k in range(40):
    for p in (round(o + k * s, 1), o + k * s, round(o + k * s + 0.05, 2)):
        if 0 <= voxel(p) < 40: print(0.5, 0.5, repr(p), voxel(p) + 1)
PY
cut -d' ' -f1-3 sweep.txt > sweep_points.txt
for np in 1 2; do
    run $np get "$M" --points sweep_points.txt --units m --quiet > sweep_got.txt || fail "get --points --units m"
    diff <(cut -d' ' -f4 sweep.txt) sweep_got.txt > /dev/null ||
        fail "$np ranks: get --points --units m on boundaries: $(paste sweep.txt sweep_got.txt | awk '$4 != $5' | head -3)"
done
# box ends: a box touches the voxels it overlaps, [voxel of lo, first voxel starting at or after hi)
for pair in 3.3,4.3 3.4,3.9 3.8,4.1 4.6,5.1 5.6,6.1 3.25,4.35 4.3,4.31 6.1,6.6; do
    lo=${pair%,*} hi=${pair#*,}
    ref=$(/usr/bin/python3 -c "
import math
o, s, lo, hi = 3.0, 0.1, $lo, $hi
def voxel(p):
    i = math.floor((p - o) / s)
    while o + i * s > p: i -= 1
    while o + (i + 1) * s <= p: i += 1
    return i
e = voxel(hi)
print(voxel(lo), e if o + e * s == hi else e + 1)")
    [ "$(run 1 stats "$M" --box 0,0,$lo,1,1,$hi --units m --quiet)" = \
      "$(run 1 stats "$M" --box 0,0,${ref% *},1,1,${ref#* } --quiet)" ] ||
        fail "stats --box z $lo..$hi m is not voxels ${ref% *}..${ref#* }"
done
# rays: a start on a boundary is in the voxel above it; a --max-dist ending on a
# boundary reaches the voxel starting there
R=$WORK/rays
run 1 create "$R" --dims 2,2,40 --chunk 16 --voxel-size 1,1,0.1 --origin 0,0,3 --quiet || fail "create rays"
echo "0 0 13 5" > thirteen.txt
run 1 update "$R" thirteen.txt --quiet || fail "update rays"
[ "$(run 1 ray "$R" --from 0.5,0.5,3 --dir 0,0,1 --max-dist 1.3 --units m --quiet)" = "hit 0 0 13 5 1.300000" ] ||
    fail "ray with --max-dist ending on voxel 13's boundary: $(run 1 ray "$R" --from 0.5,0.5,3 --dir 0,0,1 --max-dist 1.3 --units m --quiet)"
[ "$(run 1 ray "$R" --from 0.5,0.5,3.3 --dir 0,0,1 --max-dist 1 --units m --quiet)" = "hit 0 0 13 5 1.000000" ] ||
    fail "ray from 3.3 m with --max-dist ending on voxel 13's boundary"
[ "$(run 1 ray "$R" --from 0.5,0.5,3.3 --dir 0,0,1 --max-dist 0.99 --units m --quiet)" = miss ] ||
    fail "ray short of voxel 13"
[ "$(run 2 ray "$R" --from 0.5,0.5,4.3 --dir 0,0,-1 --units m --quiet)" = "hit 0 0 13 5 0.000000" ] ||
    fail "ray from 4.3 m down does not start in voxel 13"
echo "ok --units m on voxel boundaries"

# ---- create refuses what a later open or query would refuse -------------------------------------
for args in "--voxel-size 1e-320" "--voxel-size 1,1,4e-310" "--origin 1e-320,0,0" \
            "--voxel-size 1e307 --origin 1.7e308,0,0" "--voxel-size 1e308"; do
    if run 2 create "$WORK/bad.world" --dims 16,16,16 $args --quiet 2> err.txt; then fail "create $args accepted"; fi
    grep -q "voxel size\|origin\|extent" err.txt || fail "create $args: $(cat err.txt)"
    [ ! -e "$WORK/bad.world" ] || fail "create $args left a world"
done
run 1 create "$WORK/tiny.world" --dims 16,16,16 --voxel-size 1e-300 --origin -1e300,0,0 --quiet || fail "create tiny voxels"
run 1 get "$WORK/tiny.world" 1 1 1 --quiet > /dev/null || fail "open a world of tiny voxels"
echo "ok create refuses unusable worlds"

# ---- --cache-mb: strict, and taken by every job docs/operations.md names ------------------------
C=$WORK/cache
run 1 create "$C" --dims 32,32,32 --chunk 16 --generate terrain --seed 1 --quiet || fail "create cache"
run 1 extract "$C" --box 0,0,0,8,8,8 -o cache.h5 --cache-mb 1 --quiet || fail "extract --cache-mb 1 refused"
run 1 simulate "$C" --steps 1 --cache-mb 2 --quiet || fail "simulate --cache-mb 2 refused"
run 1 reindex "$C" --cache-mb 2 --quiet || fail "reindex --cache-mb 2 refused"
for bad in abc -5 1e3 ""; do
    for job in "simulate $C --steps 1" "reindex $C" "extract $C --box 0,0,0,8,8,8 -o bad.h5" "get $C 1 1 1"; do
        if run 1 $job --cache-mb "$bad" --quiet 2> err.txt; then fail "$job --cache-mb '$bad' accepted"; fi
        grep -q -- "--cache-mb wants" err.txt || fail "$job --cache-mb '$bad': $(cat err.txt)"
    done
done
echo "ok --cache-mb"

# ---- messages --------------------------------------------------------------------------------
# a threshold is echoed as given, not rounded to 1.000
run 1 region "$C" --box 0,0,0,8,8,8 --lod 0 --threshold 0.9999999 > /dev/null 2> summary.txt ||
    fail "region --threshold 0.9999999"
grep -q "threshold 0.9999999)" summary.txt || fail "threshold echoed as: $(cat summary.txt)"
# the lock error says "open for writing by another job" once, and names the holder
/usr/bin/python3 - "$C/LOCK" <<'PY' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[1] + ".held", "w").close()
time.sleep(30)
PY
holder=$!
for _ in $(seq 100); do [ -e "$C/LOCK.held" ] && break; sleep 0.1; done
run 2 update "$C" one.txt --quiet 2> lock_err.txt && { kill $holder; fail "update while locked succeeded"; }
kill $holder; wait $holder 2>/dev/null; rm -f "$C/LOCK.held"
[ "$(grep -o "open for writing" lock_err.txt | wc -l)" = 1 ] || fail "lock message repeats itself: $(cat lock_err.txt)"
grep -q "writer lock held by" lock_err.txt || fail "lock message: $(cat lock_err.txt)"
echo "ok messages"

echo "test_edges: all passed"
