#!/bin/bash
# test_alloc_sites.sh STRATA WORKDIR SRCDIR BUILDDIR: every allocation in src/ goes
# through src/alloc.h (strata_malloc and friends), so that the allocation-failure
# tests (tests/mpi/mpi_alloc.c) reach it. Not alloc.c itself, nor h5zstd_filter.h,
# whose buffers HDF5 owns. scripts/use-strata-alloc.py rewrites raw calls.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"
raw=$(grep -rnP '(?<![\w.>])(malloc|calloc|realloc|posix_memalign)\(' "$SRC/src" \
  --include='*.c' --include='*.h' | grep -v -e '/alloc\.c:' -e '/h5zstd_filter\.h:' || true)
if [ -n "$raw" ]; then
  echo "test_alloc_sites: FAIL: raw allocation calls in src/ (run scripts/use-strata-alloc.py):" >&2
  echo "$raw" >&2
  exit 1
fi
echo "test_alloc_sites: ok ($(grep -rc 'strata_\(malloc\|calloc\|realloc\|posix_memalign\)(' "$SRC/src" \
  --include='*.c' | awk -F: '{s += $2} END {print s}') allocation sites)"
