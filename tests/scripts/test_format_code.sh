#!/bin/bash
# The code follows the one .clang-format at the root: CI checks it.
set -eu
. "$(dirname "$0")/common.sh" "$@"
command -v clang-format >/dev/null || skip "clang-format missing"
cd "$SRC"
files=$(git ls-files 'src/*.[ch]' 'jobs/*.[ch]' 'include/*.h' 'tests/*.[ch]' 'bench/*.[ch]' \
  'bench/*.cpp' 'examples/*.c' 'fuzz/*.c' 2>/dev/null || true)
[ -n "$files" ] || files=$(ls src/*.[ch] jobs/*.[ch] include/*.h)
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files
echo "clang-format: $(echo "$files" | wc -w) files clean"
