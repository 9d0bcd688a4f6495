#!/bin/bash
# bench/reindex_beside_simulate.sh STRATA WORKDIR: strata simulate at 2 ranks
# (--defer-index, a commit every step) alone, then with a 2-rank strata reindex
# started every 2 s beside it; prints both simulate summaries, each reindex's,
# and a final full reindex and fsck (docs/operations.md, "Beside a running simulation").
set -u
S=$1
mkdir -p "$2" && cd "$2" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
rm -rf base && $S create base --dims 256,256,128 --chunk 32 --generate terrain --seed 5 --quiet
rm -rf a && cp -r base a
mpirun -np 2 $S simulate a --steps 150 --process volcanic --seed 3 --commit-every 1 --defer-index 2> alone.err
rm -rf b && cp -r base b
mpirun -np 2 $S simulate b --steps 150 --process volcanic --seed 3 --commit-every 1 --defer-index 2> beside.err &
sim=$!
sleep 1
: > reindex.log
while kill -0 $sim 2>/dev/null; do
  mpirun -np 2 $S reindex b 2>&1 | grep 'strata reindex' >> reindex.log || echo "REINDEX FAILED" >> reindex.log
  sleep 2
done
wait $sim; echo "sim rc $?"
mpirun -np 2 $S reindex b --full 2>&1 | grep 'strata reindex'
mpirun -np 2 $S fsck b 2>&1 | grep 'strata fsck'
grep -h 'strata simulate' alone.err beside.err
cat reindex.log
uptime
