#!/bin/bash
# fuzz/run.sh: build the libFuzzer harnesses and run them.
#
#   fuzz/run.sh [NAME...] [SECONDS]     NAME: codec, manifest, textio, lod, delta (default: all)
#
# Each harness is built with clang -fsanitize=fuzzer,address,undefined into
# $FUZZ_BUILD (default /tmp/strata-fuzz) and run for SECONDS (default 60) on a
# copy of its seed corpus fuzz/corpus/NAME (new inputs go to the copy, the
# repository's corpus is left alone). Exit status: 0 when every harness ran
# clean, 1 when one found a crash/leak/timeout (the reproducer is printed),
# 77 when clang's fuzzer runtime (libclang-rt-14-dev) is missing.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-/tmp/strata-fuzz}
CC=${FUZZ_CC:-clang}
seconds=60
names=()
for a in "$@"; do
  case $a in
    ''|*[!0-9]*) names+=("$a") ;;
    *) seconds=$a ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(codec manifest textio lod delta)

command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (apt install clang libclang-rt-14-dev)"; exit 77; }
mkdir -p "$build"
# Probe for the fuzzer runtime: a --no-install-recommends clang lacks it.
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' \
  > "$build/probe.c"
if ! "$CC" -fsanitize=fuzzer "$build/probe.c" -o "$build/probe" 2>"$build/probe.log"; then
  echo "fuzz: clang's fuzzer runtime is missing (apt install libclang-rt-14-dev): $(head -1 "$build/probe.log")"
  exit 77
fi

mpi_cflags=$(mpicc -showme:compile 2>/dev/null)
mpi_libs=$(mpicc -showme:link 2>/dev/null)
# HDF5 (parallel, as the library's build): only the delta harness links it
h5_cflags=$(pkg-config --cflags hdf5-openmpi 2>/dev/null)
h5_libs=$(pkg-config --libs hdf5-openmpi 2>/dev/null)
flags="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$root/include -I$root/src"
sources() {
  case $1 in
    codec) echo "$root/src/codec.c $root/src/error.c $root/src/alloc.c" ;;
    manifest) echo "$root/src/manifest.c $root/src/codec.c $root/src/error.c $root/src/fsutil.c $root/src/fault.c $root/src/alloc.c" ;;
    textio) echo "$root/src/textio.c $root/src/error.c $root/src/alloc.c" ;;
    lod) echo "$root/src/index/lod.c $root/src/error.c $root/src/alloc.c" ;;
    # delta.c reads chains through the store (HDF5): its real dependencies, linked
    delta) echo "$root/src/delta.c $root/src/codec.c $root/src/error.c $root/src/alloc.c $root/src/store.c $root/src/parallel.c $root/src/fsutil.c $root/src/fault.c $root/src/manifest.c" ;;
    *) return 1 ;;
  esac
}

status=0
for name in "${names[@]}"; do
  src=$(sources "$name") || { echo "fuzz: unknown harness $name"; exit 2; }
  bin="$build/fuzz_$name"
  extra_cflags= extra_libs=
  [ "$name" = delta ] && extra_cflags=$h5_cflags extra_libs="$h5_libs -lpthread"
  # shellcheck disable=SC2086
  if ! "$CC" $flags $mpi_cflags $extra_cflags "$root/fuzz/fuzz_$name.c" $src -o "$bin" $mpi_libs $extra_libs -lzstd -lz \
       2>"$build/$name.build.log"; then
    echo "fuzz: building $name failed:"; cat "$build/$name.build.log"; exit 1
  fi
  corpus="$build/corpus-$name"
  mkdir -p "$corpus" "$build/artifacts-$name"
  cp -n "$root/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null
  log="$build/$name.log"
  ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=262144 -print_final_stats=1 -artifact_prefix="$build/artifacts-$name/" \
    "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    echo "fuzz $name: FAILED (exit $rc) after ${runs:-?} executions; log $log:"
    grep -A30 'ERROR\|==ERROR\|deadly signal\|runtime error' "$log" | head -60
    ls "$build/artifacts-$name"
    status=1
  else
    echo "fuzz $name: ${runs:-?} executions in ${seconds} s, ${cov:-cov ?}, corpus $(ls "$corpus" | wc -l) inputs, no findings"
  fi
done
exit $status
