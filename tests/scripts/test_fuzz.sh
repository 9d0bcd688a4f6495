#!/bin/bash
# Short libFuzzer runs (about 10 s each) of the chunk decoder, the MANIFEST
# reader, the update/point file parsers, the LOD pyramid frames and the delta records, from the seed corpora in fuzz/corpus.
# Exit 77 (CTest: skipped) when clang's fuzzer runtime is missing. The long runs
# are recorded in docs/reliability.md.
set -u
. "$(dirname "$0")/common.sh" "$@"
FUZZ_BUILD="$WORK" timeout 300 bash "$SRC/fuzz/run.sh" codec manifest textio lod delta "${FUZZ_SECONDS:-4}"
rc=$?
case $rc in
  0) echo "fuzz: every harness ran clean" ;;
  77) echo "SKIP: clang with libFuzzer (libclang-rt-14-dev) is not installed" ;;
  124) echo "fuzz: timed out (hang)"; rc=1 ;;
esac
exit $rc
