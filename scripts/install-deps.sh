#!/bin/sh
# Install what Strata needs from Debian 12's packages; idempotent.
# Usage: scripts/install-deps.sh [build|test|demo|all]
#   build: compilers, Open MPI, parallel HDF5, zstd, Check, libpng, netCDF
#   test:  build + h5py/numpy/zstandard readers, clang fuzzers, Slurm, gnuplot, OpenVDB
#          (and its vdb_render, bench/render_bench.sh's peer)
#   demo:  build + ETOPO relief data (ferret-datasets)
#   all:   test + ParaView (pvpython: test_extract.sh then also opens every extraction
#          with ParaView's XDMF readers; 173 MB download, 928 MB on disk)
set -eu
what=${1:-build}

pkgs="build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
hdf5-tools libzstd-dev check libpng-dev libnetcdf-dev"
case $what in
  build) ;;
  demo) pkgs="$pkgs ferret-datasets" ;;
  test|all) pkgs="$pkgs ferret-datasets python3-h5py python3-numpy python3-zstandard
    clang libclang-rt-14-dev clang-format slurm-wlm munge iproute2 gnuplot-nox libopenvdb-dev libopenvdb-tools libtbb-dev libboost-dev g++"
    [ "$what" = all ] && pkgs="$pkgs paraview python3-paraview" ;;
  *) echo "usage: $0 [build|test|demo|all]" >&2; exit 2 ;;
esac

missing=
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
