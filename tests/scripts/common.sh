# common.sh: the start every script test shares, sourced first thing after `set`:
#     . "$(dirname "$0")/common.sh" "$@"
# with the arguments tests/CMakeLists.txt passes: STRATA WORKDIR SRCDIR BUILDDIR.
# It sets STRATA, WORK, SRC and BUILD, lets Open MPI run as root and oversubscribe
# the cores, makes WORK empty and enters it, and defines:
#   py                     the system python3 (its modules come from scripts/install-deps.sh)
#   fail MESSAGE           "TEST: FAIL: MESSAGE" on stderr, exit 1
#   skip MESSAGE           "SKIP: MESSAGE", exit 77 (CTest's SKIP_RETURN_CODE: skipped)
#   need_python MODULES    skip unless python3 imports MODULES ("h5py, zstandard")
#   mpirun_strata NP ARGS  strata ARGS at NP ranks, stdin closed, bounded by RUN_TIMEOUT
#                          seconds (60): a hang ends with exit 124 (a failure, not a wait)
#   run NP ARGS            mpirun_strata (a test with one rank count redefines it)
# shellcheck shell=bash
STRATA=$1 WORK=$2 SRC=${3:-} BUILD=${4:-}
TEST_NAME=$(basename "$0" .sh)
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
py=/usr/bin/python3
RUN_TIMEOUT=${RUN_TIMEOUT:-60}

fail() { echo "$TEST_NAME: FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
need_python() {
  $py -c "import $1" 2> /dev/null || skip "python3 cannot import $1 (scripts/install-deps.sh)"
}
mpirun_strata() {
  local np=$1; shift
  timeout -k 10 "$RUN_TIMEOUT" mpirun -np "$np" "$STRATA" "$@" < /dev/null
}
run() { mpirun_strata "$@"; }

rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
