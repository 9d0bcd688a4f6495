#!/bin/bash
# alloc-sites-missed.sh SRCDIR SITES_REACHED...: the allocation sites in src/ (every
# strata_malloc, strata_calloc, strata_realloc and strata_posix_memalign call, as
# "file.c:LINE", index/ files with their folder) that tests/mpi/mpi_alloc did not
# reach, grouped by file. SITES_REACHED are the sites_reached.txt mpi_alloc writes in
# its work directories (build/tests/work/mpi_alloc_npN_partK/: give both parts).
set -euo pipefail
SRC=$1
shift
cd "$SRC/src"
grep -rnE '\bstrata_(malloc|calloc|realloc|posix_memalign)\(' --include='*.c' --include='*.h' . |
  grep -v '^\./alloc\.[ch]:' | sed -E 's|^\./([^:]+):([0-9]+):.*|\1:\2|' | sort -u > /tmp/alloc_sites_all.$$
sort -u "$@" > /tmp/alloc_sites_reached.$$
all=$(wc -l < /tmp/alloc_sites_all.$$)
missed=$(comm -23 /tmp/alloc_sites_all.$$ /tmp/alloc_sites_reached.$$)
echo "$(echo "$missed" | grep -c . || true) of $all allocation sites not reached:"
echo "$missed" | awk -F: '{f[$1] = f[$1] " " $2} END {for (k in f) print k ":" f[k]}' | sort
rm -f /tmp/alloc_sites_all.$$ /tmp/alloc_sites_reached.$$
