#!/bin/bash
# test_cli_core.sh: the core commands end to end under mpirun.
#   create (terrain, --force), update (text and binary, conditional, bad input),
#   get --points at several rank counts, info --json, fsck (clean and corrupted),
#   and the one-writer lock.
# Usage: test_cli_core.sh STRATA WORKDIR SOURCE_DIR BUILD_DIR
set -eu
. "$(dirname "$0")/common.sh" "$@"
W=$WORK/world

run() { local np=$1; shift; mpirun -np "$np" "$STRATA" "$@"; }
json() { # json WORLD EXPR: evaluate EXPR on info --json (as `d`)
    run 1 info "$1" --json --quiet | $py -c "import json,sys; d=json.load(sys.stdin); print($2)"
}

# ---- create with generated terrain at 2 ranks --------------------------------------
run 2 create "$W" --dims 100,70,45 --chunk 16 --generate terrain --seed 7 --quiet
[ "$(json "$W" 'd["epoch"]')" = 1 ] || fail "epoch after create"
[ "$(json "$W" 'd["dims"]')" = "[100, 70, 45]" ] || fail "dims in info --json"
[ "$(json "$W" 'len(d["materials"]) > 0 and all(set(m) >= {"id","name","rgb"} for m in d["materials"])')" = True ] \
    || fail "materials in info --json"
# A material table: kept as given, with air (id 0, the brief's default) added
# when the table does not name it; a table naming 0 keeps its name.
printf 'id,name,r,g,b\n5,granite,120,120,120\n1,water,0,0,255\n' > mat.csv
run 2 create "$WORK/mat.world" --dims 40,40,40 --materials mat.csv --quiet
[ "$(json "$WORK/mat.world" '[(m["id"], m["name"], m["rgb"]) for m in d["materials"]]')" = \
  "[(0, 'air', [220, 235, 255]), (1, 'water', [0, 0, 255]), (5, 'granite', [120, 120, 120])]" ] \
    || fail "materials of a table without air: $(json "$WORK/mat.world" 'd["materials"]')"
# CSV as spreadsheets write it: a byte order mark, the header in any case, quoted
# names (commas and "" inside), blanks around fields; errors name line and field.
printf '\xef\xbb\xbfID,Name,R,G,B\n\n5,"rock, hard",1,2,3\n6,"say ""hi""",4,5,6\n7,  sand ,1,2,3  \r\n' > matq.csv
run 1 create "$WORK/matq.world" --dims 40,40,40 --materials matq.csv --quiet
[ "$(json "$WORK/matq.world" '[m["name"] for m in d["materials"]]')" = "['air', 'rock, hard', 'say \"hi\"', 'sand']" ] ||
    fail "quoted CSV names: $(json "$WORK/matq.world" '[m["name"] for m in d["materials"]]')"
printf 'id,name,r,g,b\n5,a,1,2,3\n\n# note\n5,b,1,2,3\n' > matdup.csv
if run 1 create "$WORK/matdup.world" --dims 40,40,40 --materials matdup.csv --quiet 2> err.txt; then fail "duplicate id accepted"; fi
grep -q "matdup.csv line 5: material 5 listed twice (first on line 2)" err.txt || fail "duplicate id: $(cat err.txt)"
printf 'id,name,r,g,b\n5,a,1,256,3\n' > matrgb.csv
if run 1 create "$WORK/matrgb.world" --dims 40,40,40 --materials matrgb.csv --quiet 2> err.txt; then fail "colour 256 accepted"; fi
grep -q 'matrgb.csv line 2: colour g "256" is not an integer in 0..255' err.txt || fail "bad colour: $(cat err.txt)"
[ ! -e "$WORK/matdup.world" ] && [ ! -e "$WORK/matrgb.world" ] || fail "a refused table created a world"
printf 'id,name,r,g,b\n0,vacuum,0,0,0\n' > mat0.csv
run 1 create "$WORK/mat0.world" --dims 40,40,40 --materials mat0.csv --quiet
[ "$(json "$WORK/mat0.world" '[(m["id"], m["name"]) for m in d["materials"]]')" = "[(0, 'vacuum')]" ] \
    || fail "a table naming material 0"
if run 1 create "$W" --dims 10,10,10 --quiet 2>err.txt; then fail "create over an existing world succeeded"; fi
grep -q -- "--force" err.txt || fail "create over a world does not mention --force: $(cat err.txt)"
[ "$(json "$W" 'd["dims"]')" = "[100, 70, 45]" ] || fail "refused create changed the world"

# ---- updates: text with comments, blank lines and a conditional; binary ---------------
# The conditional at (5,5,40) expects what terrain put there (read it first), the one
# at (6,5,40) expects something else and is skipped.
printf '5 5 40\n6 5 40\n' > pts0.txt
run 1 get "$W" --points pts0.txt --quiet > before.txt
v5=$(sed -n 1p before.txt); v6=$(sed -n 2p before.txt)
cat > upd.txt <<EOF
# header comment
0 0 0 900

99 69 44 901   # far corner
17 33 20 902
17 33 20 903
5 5 40 904 $v5
6 5 40 905 $(( (v6 + 1) % 65536 ))
	50 34 22    906
EOF
run 2 update "$W" upd.txt --quiet
[ "$(json "$W" 'd["epoch"]')" = 2 ] || fail "epoch after the text update"
$py - <<'EOF'
import struct
recs = [(1, 2, 3, 1000, 0, 0), (98, 68, 43, 1001, 0, 0), (1, 2, 3, 1002, 1000, 1), (1, 2, 4, 1003, 7, 1)]
with open("upd.bin", "wb") as f:
    f.write(b"STRUPD01" + struct.pack("<Q", len(recs)))
    for x, y, z, m, e, h in recs:
        f.write(struct.pack("<qqqHHB3x", x, y, z, m, e, h))
EOF
run 3 update "$W" upd.bin --quiet
[ "$(json "$W" 'd["epoch"]')" = 3 ] || fail "epoch after the binary update"

# ---- get --points at 1, 3 and 4 ranks: same ids, input order, matching the updates ------
cat > pts.txt <<EOF
# points
0 0 0
99 69 44
17 33 20

5 5 40
6 5 40
50 34 22
1 2 3
98 68 43
1 2 4
0 0 0
EOF
expect="900 901 903 904 $v6 906 1002 1001"
for np in 1 3 4; do
    run $np get "$W" --points pts.txt --quiet > got$np.txt
    [ "$(wc -l < got$np.txt)" = 10 ] || fail "get --points at $np ranks printed $(wc -l < got$np.txt) lines"
    [ "$(head -8 got$np.txt | tr '\n' ' ')" = "$expect " ] || fail "get at $np ranks: $(tr '\n' ' ' < got$np.txt), want $expect ..."
    [ "$(sed -n 10p got$np.txt)" = 900 ] || fail "repeated point at $np ranks"
done
cmp got1.txt got3.txt && cmp got1.txt got4.txt || fail "get --points differs between rank counts"
# (1,2,4) held terrain, not 7: that conditional was skipped unless terrain had 7 there.
[ "$(run 1 get "$W" 17 33 20 --quiet)" = 903 ] || fail "single get"

# ---- bad update files change nothing ------------------------------------------------------
printf '1 1 1\n2 2 2\n4 4 4\n' > probe_pts.txt
run 1 get "$W" --points probe_pts.txt --quiet > probe_before.txt
cp got1.txt reference.txt
printf '1 1 1 5\n2 2 2 6\n3 3 x 7\n' > bad1.txt
printf '1 1 1 5\n2 2 2 6\n4 4 4 8\n100 0 0 9\n' > bad2.txt
printf '1 1 1 5\n2 2 2\n' > bad3.txt
for f in bad1 bad2 bad3; do
    for np in 1 2; do
        if run $np update "$W" $f.txt --quiet 2>err.txt; then fail "$f.txt accepted at $np ranks"; fi
        case $f in
            bad1) grep -q "line 3" err.txt || fail "$f: no line number: $(cat err.txt)" ;;
            bad2) grep -q "(100, 0, 0)" err.txt || fail "$f: coordinate not named: $(cat err.txt)" ;;
            bad3) grep -q "line 2" err.txt || fail "$f: no line number: $(cat err.txt)" ;;
        esac
        [ "$(json "$W" 'd["epoch"]')" = 3 ] || fail "$f changed the epoch"
    done
done
run 2 get "$W" --points pts.txt --quiet > after_bad.txt
cmp reference.txt after_bad.txt || fail "a refused update changed the data"
run 1 get "$W" --points probe_pts.txt --quiet > probe_after.txt
cmp probe_before.txt probe_after.txt || fail "the good lines of a refused file were applied"
printf '1 1 1 5\n' > probe.txt

# ---- fsck: clean, then a flipped payload byte ---------------------------------------------
run 2 fsck "$W" --quiet > fsck.txt || fail "fsck of a clean world: $(cat fsck.txt)"
$py - "$W" > corrupt.txt <<'EOF'
import glob, sys
import h5py
world = sys.argv[1]
segs = sorted(glob.glob(world + "/seg-*.h5"))
seg = segs[0]  # the terrain segment
newer = set()
for s in segs[1:]:
    with h5py.File(s, "r") as f:
        newer |= {int(k) for k in f["rows"]["key"]}
def compact(k):
    v = 0
    for i in range(21):
        v |= ((k >> (3 * i)) & 1) << i
    return v
with h5py.File(seg, "r") as f:
    rows = f["rows"][:]
    base = f["payload"].id.get_offset()
    # A chunk no later commit rewrote, so reads of it go to this payload.
    row = max((r for r in rows if r["payload_length"] > 0 and int(r["key"]) not in newer),
              key=lambda r: r["payload_length"])
    key = int(row["key"])
    where = base + int(row["payload_offset"]) + int(row["payload_length"]) // 2
cx, cy, cz = compact(key), compact(key >> 1), compact(key >> 2)
with open(seg, "r+b") as f:
    f.seek(where)
    b = f.read(1)
    f.seek(where)
    f.write(bytes([b[0] ^ 0x5A]))
print(key, cx * 16, cy * 16, cz * 16)
EOF
read -r key x0 y0 z0 < corrupt.txt
if run 2 fsck "$W" > fsck.txt 2> fsck_err.txt; then fail "fsck missed a flipped payload byte"; fi
grep -q "chunk key $key" fsck.txt fsck_err.txt || fail "fsck does not name chunk $key: $(cat fsck.txt fsck_err.txt)"
printf '%d %d %d\n' $((x0 + 15 < 100 ? x0 + 15 : 99)) $((y0 + 15 < 70 ? y0 + 15 : 69)) $((z0 + 15 < 45 ? z0 + 15 : 44)) > corrupt_pts.txt
for np in 1 2; do
    if run $np get "$W" --points corrupt_pts.txt --quiet > /dev/null 2> get_err.txt; then
        fail "get of a voxel in the corrupted chunk succeeded at $np ranks"
    fi
    grep -q "chunk key $key\|chunk at voxel $x0,$y0,$z0" get_err.txt \
        || fail "get error does not name the chunk ($key at $x0,$y0,$z0): $(cat get_err.txt)"
done

# ---- one writer at a time -----------------------------------------------------------------
W2=$WORK/world2
run 1 create "$W2" --dims 40,40,40 --chunk 16 --quiet
$py - "$W2/LOCK" <<'EOF' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[1] + ".held", "w").close()
time.sleep(60)
EOF
holder=$!
for _ in $(seq 100); do [ -e "$W2/LOCK.held" ] && break; sleep 0.1; done
[ -e "$W2/LOCK.held" ] || fail "lock holder did not start"
if run 2 update "$W2" probe.txt --quiet 2> lock_err.txt; then kill $holder; fail "update while locked succeeded"; fi
# A forced create must not replace a world that a job is writing either.
if run 1 create "$W2" --dims 8,8,8 --force --quiet 2> force_err.txt; then
    kill $holder; fail "create --force over a world open for writing succeeded"
fi
grep -q "open for writing by another job" force_err.txt || { kill $holder; fail "force lock message: $(cat force_err.txt)"; }
ls -d "$W2".strata-* 2>/dev/null && { kill $holder; fail "a refused --force left a side directory"; }
kill $holder
wait $holder 2>/dev/null || true
grep -q "open for writing by another job" lock_err.txt || fail "lock message: $(cat lock_err.txt)"
[ "$(json "$W2" 'd["epoch"]')" = 0 ] || fail "the refused update committed"
# Readers are not blocked by a writer, and the lock goes with its holder.
run 1 update "$W2" probe.txt --quiet || fail "update after the lock was released"
[ "$(run 2 get "$W2" 1 1 1 --quiet)" = 5 ] || fail "update after release not applied"

# ---- create --force replaces a world -------------------------------------------------------
run 2 create "$W2" --dims 20,20,20 --chunk 16 --force --quiet
[ "$(json "$W2" 'd["dims"]')" = "[20, 20, 20]" ] || fail "--force did not replace the world"
[ "$(run 1 get "$W2" 1 1 1 --quiet)" = 0 ] || fail "the replaced world kept old data"
ls -d "$W2".strata-* 2>/dev/null && fail "--force left a side directory"
# "W/" is W, and nothing is left inside it.
run 2 create "$W2/" --dims 24,20,20 --chunk 16 --force --quiet || fail "create W/ --force"
[ "$(json "$W2" 'd["dims"]')" = "[24, 20, 20]" ] || fail "create W/ --force did not replace W"
ls -a "$W2" "$WORK" | grep -q "strata-" && fail "create W/ --force left a side directory"
# --force replaces a world or an empty directory, nothing else: other paths stay untouched.
mkdir -p "$WORK/notaworld/sub" && echo keep > "$WORK/notaworld/sub/file" && echo keep > "$WORK/afile"
for p in notaworld afile; do
    if run 1 create "$WORK/$p" --dims 8,8,8 --force --quiet 2> nw_err.txt; then
        fail "create --force replaced $p"
    fi
    grep -q "not replacing it" nw_err.txt || fail "create --force over $p: $(cat nw_err.txt)"
done
[ "$(cat "$WORK/notaworld/sub/file")" = keep ] && [ "$(cat "$WORK/afile")" = keep ] ||
    fail "a refused --force changed what was there"
# Compacting a world that holds nothing but air: one empty segment, still a world.
run 1 create "$WORK/allair" --dims 37,50,19 --chunk 16 --quiet
run 2 compact "$WORK/allair" --quiet || fail "compact of an empty world"
printf '1 2 3 5\n' > set.txt && printf '1 2 3 0\n' > unset.txt
run 2 update "$WORK/allair" set.txt --quiet && run 1 update "$WORK/allair" unset.txt --quiet ||
    fail "updates of the empty world"
run 4 compact "$WORK/allair" --quiet || fail "compact of a world set back to air"
run 2 fsck "$WORK/allair" --quiet || fail "fsck after compacting air"
[ "$(run 2 get "$WORK/allair" 1 2 3 --quiet)" = 0 ] || fail "get after compacting air"
[ "$(ls "$WORK/allair" | grep -c '^seg-')" = 1 ] || fail "compacting air left $(ls "$WORK/allair")"
# A compaction is a commit by its job: info names its rank count, and an index
# that was current stays current (compaction changes no content).
[ "$(json "$WORK/allair" '(d["writer_ranks"], d["index"]["index_epoch"] == d["index"]["data_epoch"] == d["epoch"], d["index"]["stale_chunks"])')" = "(4, True, 0)" ] ||
    fail "info after compacting at 4 ranks: $(json "$WORK/allair" '(d["writer_ranks"], d["index"])')"
# MPI-IO's files beside a segment, left by a job killed while it had the segment
# open, are removed by the next writer (and only those: a file of the user's stays).
seg=$(ls "$WORK/allair" | grep '^seg-' | head -1)
touch "$WORK/allair/$seg.locktest.0" "$WORK/allair/$seg.data.1" "$WORK/allair/$seg.metadata.1" "$WORK/allair/notes.txt"
run 2 update "$WORK/allair" set.txt --quiet || fail "update over MPI-IO leftovers"
ls "$WORK/allair" | grep -q '\.h5\.' && fail "MPI-IO leftovers stayed: $(ls "$WORK/allair")"
[ -e "$WORK/allair/notes.txt" ] || fail "the next writer removed a file it does not own"
mkdir -p "$WORK/emptydir"
run 2 create "$WORK/emptydir" --dims 8,8,8 --force --quiet || fail "create --force over an empty directory"
[ "$(json "$WORK/emptydir" 'd["dims"]')" = "[8, 8, 8]" ] || fail "create --force over an empty directory"
# ---- --help, point numbers across slices, long thin worlds, --units m ----------------------
for c in update get region extract; do  # one mechanism (main.c); extract parses its own arguments
    run 1 $c --help > help.txt 2>&1 || fail "$c --help exits non-zero"
    grep -q "^usage: strata $c" help.txt || fail "$c --help: $(cat help.txt)"
done
W3=$WORK/w70
run 1 create "$W3" --dims 70,45,33 --chunk 16 --voxel-size 2,2,0.5 --origin 100,200,-10 --generate terrain --seed 3 --quiet
printf '1 2 3\n4 5 6\n1 2 70\n' > outside.txt
for np in 1 2 4; do  # the point is numbered in the file, whatever slice it falls in
    if run $np get "$W3" --points outside.txt --quiet 2> out_err.txt; then fail "point outside accepted"; fi
    grep -q 'outside.txt: line 3: voxel (1, 2, 70) is outside the world (70 x 45 x 33): "1 2 70"' out_err.txt ||
        fail "$np ranks: $(cat out_err.txt)"
done
# voxel (10,20,8) spans x [120,122) m, y [240,242) m, z [-6,-5.5) m
[ "$(run 2 get "$W3" 121 241 -5.8 --units m --quiet)" = "$(run 2 get "$W3" 10 20 8 --quiet)" ] ||
    fail "get --units m"
printf '# metres\n121 241 -5.8\n\n120.5 240.1 -6  # edge\n138.9 200 -10\n' > metres.txt
printf '10 20 8\n10 20 8\n19 0 0\n' > voxels.txt
[ "$(run 2 get "$W3" --points metres.txt --units m --quiet)" = "$(run 2 get "$W3" --points voxels.txt --quiet)" ] ||
    fail "get --points --units m"
[ "$(run 1 stats "$W3" --box 120,240,-6,130,250,-4 --units m --quiet)" = \
  "$(run 1 stats "$W3" --box 10,20,8,15,25,12 --quiet)" ] || fail "stats --units m"
[ "$(run 2 region "$W3" --box 120,240,-6,130,250,-4 --lod 1 --units m --quiet)" = \
  "$(run 2 region "$W3" --box 10,20,8,15,25,12 --lod 1 --quiet)" ] || fail "region --units m"
run 2 extract "$W3" --box 120,240,-6,130,250,-4 --units m -o em.h5 --quiet
run 2 extract "$W3" --box 10,20,8,15,25,12 -o ev.h5 --quiet
$py -c "import h5py,sys,numpy; sys.exit(not numpy.array_equal(h5py.File('em.h5')['material'][()], h5py.File('ev.h5')['material'][()]))" ||
    fail "extract --units m"
# a ray down z through 0.5 m voxels: the same voxel, the distance in metres
hv=$(run 1 ray "$W3" --from 10.5,20.5,32.5 --dir 0,0,-1 --quiet)
hm=$(run 1 ray "$W3" --from 121,241,6.25 --dir 0,0,-1 --units m --quiet)
[ "${hv% *}" = "${hm% *}" ] || fail "ray --units m hit: $hv / $hm"
$py -c "import sys; v=float('${hv##* }'); m=float('${hm##* }'); sys.exit(abs(v*0.5-m)>1e-6)" ||
    fail "ray --units m distance: $hv / $hm"
if run 1 get "$W3" 1 2 3 --units km --quiet 2>/dev/null; then fail "--units km accepted"; fi
# A long, thin world: its index levels are searched, not laid out by Morton key range
W4=$WORK/thin
run 1 create "$W4" --dims 131072,16,16 --chunk 16 --generate empty --quiet
printf '100 1 1 7\n' > thin.txt
run 2 update "$W4" thin.txt --quiet
[ "$(run 2 stats "$W4" --box 64,0,0,128,16,16 --quiet)" = "$(printf '0 16383\n7 1')" ] || fail "thin stats"
[ "$(run 2 ray "$W4" --from 90.5,1.5,1.5 --dir 1,0,0 --quiet)" = "hit 100 1 1 7 9.500000" ] || fail "thin ray"
[ "$(run 2 get "$W4" 100 1 1 --lod 3 --quiet)" = 0 ] || fail "thin get --lod 3"
[ "$(run 2 region "$W4" --box 96,0,0,104,8,8 --lod 3 --threshold 1 --quiet | head -1)" = "96 0 0 104 8 8 0 0.998047" ] ||
    fail "thin region"
echo "test_cli_core: all passed"
