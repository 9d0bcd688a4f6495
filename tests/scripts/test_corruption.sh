#!/bin/bash
# Corruption is always detected and named, never a crash or silently wrong values
# (docs/reliability.md, "Corruption"). Each case damages a copy of a good world
# with tests/scripts/corrupt_world.py; `strata fsck` must exit non-zero and
# list the problem (every problem, when there are several); reads must fail
# with a message naming the file and chunk, never print a value from damaged
# data. A hang (timeout 124) or a signal (exit >= 128) is a failure.
set -u
. "$(dirname "$0")/common.sh" "$@"
need_python "h5py"
damage="$py $SRC/tests/scripts/corrupt_world.py"
NP=2
run() { mpirun_strata "$NP" "$@"; }
cases=0
fresh() { rm -rf d && cp -a good d; }
# must_fail LABEL PATTERN COMMAND...: non-zero, no hang/crash, PATTERN in stdout+stderr.
must_fail() {
  local label=$1 pattern=$2; shift 2
  "$@" > out.txt 2> err.txt
  local rc=$?
  [ $rc = 124 ] && fail "$label: hung"
  [ $rc = 0 ] && { cat out.txt; fail "$label: not detected (exit 0)"; }
  [ $rc -ge 128 ] && { cat err.txt; fail "$label: crashed (exit $rc)"; }
  cat out.txt err.txt > all.txt
  grep -q -- "$pattern" all.txt || { cat all.txt; fail "$label: no '$pattern' in the output"; }
  cases=$((cases + 1))
  echo "ok $label: $(grep -m1 -- "$pattern" all.txt | cut -c1-160)"
}

run create good --dims 64,64,48 --chunk 16 --generate terrain --seed 3 -q || fail create
run fsck good -q || fail "fsck of the good world"
printf '2 2 2\n60 60 2\n33 17 20\n' > pts.txt
run get good --points pts.txt -q > good_values.txt || fail get

# ---- flipped bytes in three stored chunk payloads: all listed, all reads refused ----
fresh
$damage payload d 3 > damaged.txt || fail "damaging payloads"
must_fail "fsck: 3 flipped payloads" "DAMAGED, 3 problems" run fsck d
cp all.txt fsck_all.txt
while read -r key x y z; do
  grep -q "chunk key $key:.*checksum mismatch" fsck_all.txt || fail "fsck does not name chunk key $key"
  must_fail "get in damaged chunk $key" "chunk key $key" run get d $x $y $z
  grep -q "checksum" all.txt || fail "the read error does not say checksum"
  [ -s out.txt ] && fail "a value was printed from damaged chunk $key: $(cat out.txt)"
done < damaged.txt
# Chunk key 0 is not among the damaged ones (the newest rows were): it still reads.
grep -q "^0 " damaged.txt || [ "$(run get d 2 2 2 -q)" = "$(sed -n 1p good_values.txt)" ] ||
  fail "an undamaged chunk no longer reads its value"

# ---- one segment deleted and a payload flipped in another: fsck lists both ----
fresh
printf '1 1 1 7\n40 40 30 8\n' > two.txt
# a whole slab of chunk 0 (more than C^3/16 changes): written whole, a payload in the new segment
for y in $(seq 0 15); do for x in $(seq 0 15); do echo "$x $y 2 9"; done; done >> two.txt
run update d two.txt -q || fail "update for a second segment"
$damage payload d 1 > damaged.txt || fail "damaging a payload"
oldest=seg-$(printf %020d "$(grep '^segment ' d/MANIFEST | head -1 | awk '{print $2}')").h5
rm d/"$oldest" || fail "no $oldest"
must_fail "fsck: a deleted segment and a flipped payload" "DAMAGED" run fsck d
grep -q "$oldest" all.txt || { cat all.txt; fail "fsck does not name the missing $oldest"; }
grep -q "checksum mismatch" all.txt || { cat all.txt; fail "fsck stopped at the missing segment ($oldest)"; }
grep -q "chunk key $(cut -d' ' -f1 damaged.txt):.*checksum mismatch" all.txt || fail "fsck does not name the flipped chunk"

# ---- a flipped byte in a LOD pyramid: named as the index's pyramid, not the voxel data ----
fresh
read -r key x y z < <($damage lodbyte d) || fail "damaging a pyramid"
must_fail "get --lod 1 in a damaged pyramid" "LOD pyramid" run get d $x $y $z --lod 1
grep -q "chunk key $key" all.txt || fail "the damaged pyramid's chunk is not named: $(cat all.txt)"
[ "$(run get d $x $y $z -q)" != "" ] || fail "the voxel data of a chunk with a damaged pyramid no longer reads"

# ---- a flipped byte in the /rows table ----
fresh
$damage rows d
must_fail "fsck: flipped /rows byte" "fails its checksum\|cannot read rows of seg-[0-9]*.h5: .*inflate" run fsck d
grep -q "seg-00000000000000000001.h5" all.txt || fail "the rows error does not name the segment"
must_fail "get with a damaged /rows" "fails its checksum\|cannot read rows of seg-[0-9]*.h5: .*inflate" run get d --points pts.txt

# ---- a truncated segment file ----
fresh
seg=d/seg-00000000000000000001.h5
truncate -s $(( $(stat -c %s $seg) / 2 )) $seg
must_fail "fsck: truncated segment" "seg-00000000000000000001.h5" run fsck d
must_fail "get: truncated segment" "seg-00000000000000000001.h5" run get d 2 2 2

# ---- a segment named by MANIFEST is missing, or holds another epoch ----
fresh
printf '1 1 1 5\n' > u.txt
run update d u.txt -q || fail update
mv d/seg-00000000000000000002.h5 moved.h5
must_fail "fsck: missing segment" "seg-00000000000000000002.h5" run fsck d
cp d/seg-00000000000000000001.h5 d/seg-00000000000000000002.h5
must_fail "fsck: segment of another epoch" "holds epoch 1, expected 2" run fsck d

# ---- MANIFEST: damaged, truncated, missing, newer version ----
fresh
$py -c '
p = "d/MANIFEST"; b = bytearray(open(p, "rb").read()); b[40] ^= 0x01; open(p, "wb").write(b)'
must_fail "fsck: flipped MANIFEST byte" "MANIFEST: checksum mismatch" run fsck d
must_fail "get: flipped MANIFEST byte" "checksum mismatch" run get d 2 2 2
fresh
head -c 200 good/MANIFEST > d/MANIFEST
must_fail "fsck: truncated MANIFEST" "missing checksum line" run fsck d
fresh
rm d/MANIFEST
must_fail "fsck: missing MANIFEST" "not a Strata world (no MANIFEST)" run fsck d
must_fail "update: missing MANIFEST" "not a Strata world" run update d u.txt
fresh
$damage version d 5
must_fail "fsck: format version 5" "format version 5 is newer than this library's 4" run fsck d
must_fail "update: format version 5" "newer" run update d u.txt
grep -q "^strata-manifest 5" d/MANIFEST || fail "a newer world was modified"
# an older format (1: version-1 pyramid payloads) is read, and relabelled by its next commit
fresh
$damage version d 1
run fsck d >/dev/null || fail "a format-1 world does not pass fsck"
run update d u.txt || fail "a format-1 world does not take updates"
grep -q "^strata-manifest 4" d/MANIFEST || fail "a committed format-1 world is not relabelled 4"

# ---- an index that disagrees with the data (valid checksums everywhere) ----
fresh
key=$($damage summary d) || fail "damaging a summary"
must_fail "fsck: summary disagrees" "chunk key $key: index summary disagrees with the data" run fsck d
fresh
key=$($damage pyramid d) || fail "damaging a pyramid"
must_fail "fsck: pyramid disagrees" "chunk key $key: index pyramid disagrees with the data" run fsck d
# A full reindex writes new rows; the damaged one is superseded: noted, not counted.
run reindex d --full > /dev/null 2>&1 || fail "reindex over a damaged pyramid"
run fsck d > out.txt 2> err.txt || { cat out.txt err.txt; fail "fsck counts damage in a superseded row"; }
grep -q "note: superseded row.*chunk key $key: index pyramid disagrees" out.txt ||
  { cat out.txt; fail "fsck does not note the superseded row's damage"; }
grep -q "clean, 0 problems" err.txt || { cat err.txt; fail "fsck after reindex: not clean"; }
echo "ok fsck: damage in a superseded row noted, world clean"

# ---- pyramid packs (a compacted world: the coarse levels of many chunks in one frame) ----
rm -rf packed && cp -a good packed && run compact packed -q || fail "compacting"
run fsck packed -q || fail "fsck of the compacted world"
rm -rf d && cp -a packed d
key=$($damage packbyte d) || fail "damaging a pyramid pack"
must_fail "fsck: pyramid pack damaged" "chunk key $key LOD:.*checksum" run fsck d
must_fail "get --lod: pyramid pack damaged" "chunk key $key" run get d $($damage chunk_of d $key) --lod 3
rm -rf d && cp -a packed d
key=$($damage packswap d) || fail "pointing a row at another pack"
must_fail "fsck: row names a pack without its chunk" "holds none of chunk key $key" run fsck d
must_fail "get --lod: row names a pack without its chunk" "holds none of chunk key $key" run get d $($damage chunk_of d $key) --lod 3
rm -rf d && cp -a packed d
key=$($damage packstream d) || fail "cutting a compact pack's stream"
must_fail "fsck: compact pack's stream cut" "chunk key $key.*LOD compact pack: entry" run fsck d
must_fail "get --lod: compact pack's stream cut" "LOD compact pack: entry" run get d $($damage chunk_of d $key) --lod 3

# ---- several kinds at once: fsck lists every one ----
fresh
$damage payload d 2 > damaged.txt
$damage summary d > /dev/null
must_fail "fsck: 2 payloads + 1 summary" "DAMAGED, 3 problems" run fsck d
[ "$(grep -c '^chunk key' out.txt)" = 3 ] || { cat out.txt; fail "fsck did not list all 3"; }

# ---- security: sizes and names from files ----
fresh
key=$($damage length d) || fail "damaging a length"
must_fail "fsck: payload length beyond any chunk" "payload length" run fsck d
must_fail "get: payload length beyond any chunk" "payload length" run get d $($damage chunk_of d $key)
fresh
$damage segpath d
must_fail "MANIFEST naming a segment ../../outside" "bad segment epoch" run fsck d
# Files honour the umask (no mode is forced).
(umask 027 && run create masked --dims 32,32,32 --chunk 16 --generate terrain -q && run update masked u.txt -q) ||
  fail "create under umask 027"
modes=$(stat -c '%a' masked masked/* | sort -u | tr '\n' ' ')
[ "$modes" = "640 750 " ] || fail "modes under umask 027: $modes (want 640 files, 750 directory)"
echo "ok umask 027: modes $modes"

run fsck good -q || fail "the good world was touched"
echo "corruption: $cases cases detected and named, no crash, no hang"
