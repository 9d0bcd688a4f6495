#!/bin/bash
# Bad input never crashes a job, never changes the world, never hangs a rank
# (docs/reliability.md, "Bad input"). Every case runs under `timeout -k 10 60 mpirun`
# at 2 ranks (124 = a hang = failure), must exit non-zero with a message naming
# what is wrong (line, record, coordinate, path), and must leave the world's
# files byte for byte as they were.
set -u
. "$(dirname "$0")/common.sh" "$@"
NP=2
run() { mpirun_strata "$NP" "$@"; }
snapshot() { (cd w && for f in $(ls | grep -v '^LOCK$'); do echo "$f $(md5sum < "$f")"; done); }
cases=0
# expect_fail LABEL PATTERN COMMAND...: non-zero exit (not a hang), PATTERN in
# stderr, and the world unchanged.
expect_fail() {
  local label=$1 pattern=$2; shift 2
  local before; before=$(snapshot)
  "$@" > out.txt 2> err.txt
  local rc=$?
  [ $rc = 124 ] && fail "$label: hung (timeout)"
  [ $rc = 0 ] && fail "$label: accepted (exit 0)"
  [ $rc -ge 128 ] && { cat err.txt; fail "$label: crashed (exit $rc)"; }
  grep -q -- "$pattern" err.txt || { cat err.txt; fail "$label: message lacks '$pattern'"; }
  [ "$(snapshot)" = "$before" ] || fail "$label: the world changed"
  cases=$((cases + 1))
  echo "ok $label: $(grep -m1 -- "$pattern" err.txt | cut -c1-150)"
}

run create w --dims 64,48,40 --chunk 16 --generate terrain --seed 2 -q || fail create
printf '1 2 3 4\n5 6 7 8\n' > good.txt
run update w good.txt -q || fail "good update"
printf '0 0 0\n63 47 39\n10 10 10\n' > pts.txt
run get w --points pts.txt -q > before.txt || fail get

# ---- malformed text update files (the line is named) ----
printf '1 1 1 1\n2 2 2 2\n3 3 x 3\n4 4 4 4\n' > bad_field.txt
expect_fail "text: non-number" "line 3" run update w bad_field.txt
printf '1 1 1 1\n# comment\n\n2 2 2\n' > short.txt
expect_fail "text: 3 fields" "line 4" run update w short.txt
printf '1 1 1 65536\n' > material.txt
expect_fail "text: material 65536" "line 1" run update w material.txt
printf '1 1 1 1\n-1 2 2 2\n' > negative.txt
expect_fail "text: negative coordinate" "line 2" run update w negative.txt
printf '1 1 1 99999999999999999999999\n' > overflow.txt
expect_fail "text: overflowing number" "line 1" run update w overflow.txt
# A large file whose one bad line is deep in the second rank's slice.
$py -c '
with open("deep.txt", "w") as f:
    for i in range(50000):
        f.write("%d %d %d %d\n" % (i % 64, (i // 64) % 48, i % 40, i % 7) if i != 41234 else "1 2 3 4 5 6 7\n")
'
expect_fail "text: bad line 41235 of 50000" "line 41235" run update w deep.txt

# ---- malformed binary update files (the record is named) ----
$py - <<'PY'
import struct
def rec(x, y, z, m, e=0, has=0, pad=b"\0\0\0"):
    return struct.pack("<qqqHHB", x, y, z, m, e, has) + pad
def write(name, records, count=None, magic=b"STRUPD01"):
    with open(name, "wb") as f:
        f.write(magic + struct.pack("<Q", len(records) if count is None else count))
        f.write(b"".join(records))
good = [rec(i, i, i, 3) for i in range(6)]
write("bin_negative.bin", good[:4] + [rec(1, -5, 1, 2)] + good[4:])
write("bin_flag.bin", good[:2] + [rec(1, 1, 1, 2, 0, 7)])
write("bin_padding.bin", good[:3] + [rec(1, 1, 1, 2, pad=b"\0\1\0")])
write("bin_count.bin", good, count=7)
write("bin_magic.bin", good, magic=b"STRUPD99")
write("bin_huge.bin", good, count=(1 << 64) - 1)
write("bin_range.bin", good[:5] + [rec(64, 0, 0, 1)])
PY
expect_fail "binary: negative coordinate" "record 4" run update w bin_negative.bin
expect_fail "binary: has_expected 7" "record 2" run update w bin_flag.bin
expect_fail "binary: non-zero padding" "record 3" run update w bin_padding.bin
expect_fail "binary: count disagrees with size" "bin_count.bin" run update w bin_count.bin
expect_fail "binary: count 2^64-1" "bin_huge.bin" run update w bin_huge.bin
expect_fail "binary: wrong magic" "bin_magic.bin" run update w bin_magic.bin

# ---- coordinates out of range (the file, line and coordinate are named; nothing applied) ----
printf '1 1 1 1\n64 0 0 5\n2 2 2 2\n' > outside.txt
expect_fail "text: x = 64 in a 64-wide world" "outside.txt: line 2: voxel (64, 0, 0) is outside the world" run update w outside.txt
printf '0 0 40 5\n' > outside_z.txt
expect_fail "text: z = 40 in a 40-high world" "(0, 0, 40)" run update w outside_z.txt
expect_fail "binary: x = 64" "bin_range.bin: record [0-9]* (0-based): voxel (64, 0, 0) is outside" run update w bin_range.bin
printf '1 1 1\n0 48 0\n' > points_outside.txt
expect_fail "get: point outside" "points_outside.txt: line 2: voxel (0, 48, 0) is outside" run get w --points points_outside.txt
printf '1 1\n' > points_bad.txt
expect_fail "get: point with 2 fields" "line 1" run get w --points points_bad.txt
run get w --points pts.txt -q > after.txt || fail get
cmp -s before.txt after.txt || fail "content changed by refused updates"

# ---- get X Y Z: the bad coordinate, or the missing one, is named ----
# (argument errors are found before any collective: one process is enough)
run1() { timeout -k 10 60 "$STRATA" "$@" < /dev/null; }
expect_fail "get: fractional voxel coordinate" "x coordinate '1.5' is not an integer" run1 get w 1.5 2 3
expect_fail "get: non-numeric coordinates" "x coordinate 'a' is not a number" run1 get w a b c
expect_fail "get: non-numeric z" "z coordinate 'c' is not a number" run1 get w 1 2 c
expect_fail "get: two coordinates" "expected X Y Z, got 2 coordinates" run1 get w 1 2
expect_fail "get: one coordinate" "expected X Y Z, got 1 coordinate" run1 get w 1 --lod 2
expect_fail "get: four coordinates" "unexpected argument 4" run1 get w 1 2 3 4
expect_fail "get --units m: non-numeric y" "y coordinate 'b' is not a number" run1 get w 1.5 b 3 --units m
expect_fail "get --units m: infinite z" "z coordinate 'inf' is not finite" run1 get w 1.5 2 inf --units m
# fractional metres stay valid: (1.5, 2.5, 3.5) m is voxel (1, 2, 3) at 1 m voxels
[ "$(run get w --units m 1.5 2.5 3.5 -q)" = "$(run get w 1 2 3 -q)" ] || fail "get --units m with fractional metres"

# ---- ray --dir: any finite non-zero direction, however large or small ----
expect_fail "ray: zero direction" "must not be zero" run1 ray w --from 5.5,5.5,35.5 --dir 0,0,0
expect_fail "ray: infinite component" "dy 'inf' is not finite" run1 ray w --from 5.5,5.5,35.5 --dir 1,inf,0
expect_fail "ray: NaN component" "dz 'nan' is not finite" run1 ray w --from 5.5,5.5,35.5 --dir 1,0,nan
expect_fail "ray: overflowing component" "dx '1e999' is not finite" run1 ray w --from 5.5,5.5,35.5 --dir 1e999,0,0
expect_fail "ray: two components" "--dir wants dx,dy,dz" run1 ray w --from 5.5,5.5,35.5 --dir 1,2
expect_fail "ray: bad start" "--from: y 'q' is not a number" run1 ray w --from 5.5,q,35.5 --dir 1,2,3
for d in 1e-320,0,0 1e308,1e308,0 -1e308,1e308,-1e308; do
  run ray w --from 5.5,5.5,35.5 --dir $d -q > out.txt 2> err.txt || { cat err.txt; fail "ray --dir $d refused"; }
done
# The same direction scaled by 1e-310 (subnormal) or 1e300 (its length overflows) walks
# the same voxels, in voxel units and through the metres conversion.
hits=0
for d in 1,2,-3 -1,-2,-3; do  # both reach the ground
  for units in voxel m; do
    want=$(run ray w --from 40.5,20.5,30.5 --dir $d --units $units -q) || fail "ray --dir $d"
    case $want in hit*) hits=$((hits + 1)) ;; esac
    for scale in e-310 e300; do
      scaled=${d//,/$scale,}$scale
      got=$(run ray w --from 40.5,20.5,30.5 --dir "$scaled" --units $units -q 2> err.txt) ||
        { cat err.txt; fail "ray --dir $scaled --units $units refused"; }
      [ "$got" = "$want" ] || fail "ray --dir $scaled --units $units: '$got', --dir $d: '$want'"
    done
  done
  echo "ok ray --dir $d scaled by 1e-310 and 1e300: $want"
done
[ $hits = 4 ] || fail "the scaled rays should include 4 hits, got $hits"

# ---- a typed import with values out of range for a material id ----
$py -c 'import struct; open("neg.raw","wb").write(struct.pack("<8h", 1, 2, 3, -4, 5, 6, 7, 8))'
expect_fail "import int16 -4" "malformed input.*-4: material ids cannot be negative" run import imported --raw neg.raw --dims 2,2,2 --type int16 --chunk 16
[ -e imported/MANIFEST ] && fail "a refused import left a world"
$py -c 'open("short.raw","wb").write(bytes(7))'
expect_fail "import: file shorter than dims" "short.raw has 7 bytes" run import imported --raw short.raw --dims 2,2,2 --type uint8 --chunk 16

# ---- absurd sizes ----
expect_fail "dims overflow the Morton key at chunk 16" "Morton" \
  run create earth16 --dims 40075016,20037508,20000 --chunk 16
[ -e earth16/MANIFEST ] && fail "a refused create left a world"
start=$(date +%s.%N)
run create earth32 --dims 40075016,20037508,20000 --chunk 32 -q || fail "Earth at chunk 32 refused"
secs=$($py -c "import time; print(f'{time.time() - $start:.2f}')")
echo "ok Earth-sized world (40075016 x 20037508 x 20000, chunk 32) created in $secs s (with mpirun start-up)"
[ "$(du -sk earth32 | cut -f1)" -lt 1024 ] || fail "an empty Earth-sized world takes $(du -sh earth32)"
expect_fail "dims 2^63-1" "overflow" run create huge --dims 9223372036854775807,5,5
expect_fail "dims with a zero" "dimension y is 0" run create zero --dims 5,0,5
expect_fail "dims negative" "dimension z is -5" run create neg --dims 5,5,-5
expect_fail "dims not three" "dims" run create two --dims 5,5
expect_fail "chunk 24" "24" run create c24 --dims 64,64,64 --chunk 24
printf '40075016 0 0 3\n' > outside_far.txt
expect_fail "update at x = 40075016 of Earth" "(40075016, 0, 0)" run update earth32 outside_far.txt

# ---- a path that is not a world ----
mkdir -p notworld && echo hello > notworld/file
expect_fail "directory without MANIFEST" "not a Strata world" run get notworld 0 0 0
expect_fail "missing path" "nosuchworld" run fsck nosuchworld
expect_fail "a regular file" "good.txt" run info good.txt

# ---- two writer jobs at once ----
# The first writer (a long simulation) holds LOCK; a second writer is refused
# while it runs and nothing of the second job is applied.
timeout -k 10 120 mpirun -np $NP "$STRATA" simulate w --steps 100000 --commit-every 50 --seed 4 -q \
  > sim.out 2> sim.err &
sim=$!
trap 'kill -9 $(pgrep -P "$(pgrep -P $sim | head -1)") 2>/dev/null' EXIT
held=0
for _ in $(seq 300); do
  $py -c '
import fcntl, sys
f = open("w/LOCK", "r+")
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(0)
sys.exit(1)' && { held=1; break; }
  kill -0 $sim 2>/dev/null || break
  sleep 0.1
done
[ $held = 1 ] || { cat sim.err; fail "the simulation never took the writer lock"; }
printf '7 7 7 12\n' > second.txt
run update w second.txt > out.txt 2> err.txt
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] || fail "second writer: exit $rc"
grep -q "open for writing by another job" err.txt || { cat err.txt; fail "second writer: message"; }
echo "ok second writer refused: $(grep -m1 'another job' err.txt)"
run compact w > out.txt 2> err.txt
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && grep -q "open for writing by another job" err.txt ||
  { cat err.txt; fail "a compaction during the simulation: exit $rc"; }
echo "ok compaction refused while the simulation runs"
# Stop the simulation as Slurm would (SIGTERM to every rank), then check the world.
mp=$(pgrep -P $sim | head -1)
[ -n "$mp" ] && pkill -TERM -P "$mp"
wait $sim
src=$?
trap - EXIT
grep -q "stopped by signal 15" sim.err || { cat sim.err; fail "the simulation gave no message"; }
[ $src != 0 ] && [ $src != 124 ] || fail "SIGTERM'ed simulation exited $src"
run fsck w -q || fail "fsck after the writers"
run get w 7 7 7 -q > v.txt && [ "$(cat v.txt)" != 12 ] || fail "the refused writer's update was applied"
echo "bad input: $cases cases refused with a clear message, no world changed, no rank hung"
