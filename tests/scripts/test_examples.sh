#!/bin/bash
# test_examples.sh STRATA WORKDIR SRCDIR BUILDDIR: install Strata into a prefix, build
# examples/ against it with find_package(strata) (CMake) and with pkg-config (make),
# run both under mpirun, and check the world they made with the installed strata.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" > install.log || fail "install: $(cat install.log)"
[ -f "$PREFIX/include/strata.h" ] && [ -f "$PREFIX/lib/cmake/strata/strataConfig.cmake" ] &&
  [ -f "$PREFIX/lib/pkgconfig/strata.pc" ] || fail "install lacks header, CMake package or strata.pc"

# CMake: find_package(strata) from the prefix, in a fresh build tree (no cache from $BUILD).
# A sanitized libstrata needs its runtime in the program that links it.
san=
[ "${STRATA_SANITIZED:-0}" = 1 ] && san="-fsanitize=address,undefined"
cmake -S "$SRC/examples" -B cmake-build -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" > configure.log 2>&1 ||
  fail "configure: $(cat configure.log)"
cmake --build cmake-build > build.log 2>&1 || fail "build: $(cat build.log)"
mpirun --oversubscribe -np 2 cmake-build/simulate_minimal world 3 > run1.txt || fail "cmake example run"
grep -q "^epoch 2, " run1.txt || fail "cmake example printed: $(cat run1.txt)"

# pkg-config: the Makefile on a copy of examples/ (the source tree stays clean).
cp -r "$SRC/examples" make-copy
rm -f make-copy/simulate_minimal
PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" make -C make-copy CC="cc $san" > make.log 2>&1 || fail "make: $(cat make.log)"
mpirun --oversubscribe -np 3 make-copy/simulate_minimal world 2 > run2.txt || fail "make example run"
grep -q "^epoch 3, " run2.txt || fail "make example printed: $(cat run2.txt)"
# The README's line, with nothing else: pkg-config --cflags --libs strata.
# shellcheck disable=SC2046 # pkg-config prints several words
cc $san "$SRC/examples/simulate_minimal.c" -o plain-link \
  $(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --cflags --libs strata) > plain.log 2>&1 ||
  fail "cc \$(pkg-config --cflags --libs strata): $(cat plain.log)"

# The installed command sees the examples' commits and a clean world.
"$PREFIX/bin/strata" fsck world --quiet || fail "fsck of the example's world"
"$PREFIX/bin/strata" info world --json | /usr/bin/python3 -c \
  'import json,sys; e=json.load(sys.stdin)["epoch"]; sys.exit(0 if e == 3 else 1)' ||
  fail "epoch after the examples is not 3"
echo "test_examples: ok"
