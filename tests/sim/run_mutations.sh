#!/usr/bin/env bash
# Mutation check of the simulator: builds raftkv-sim once per mutation, each
# with one deliberately injected bug (RAFTKV_SIM_MUTATION=N, see
# src/sim/CMakeLists.txt; by default 1, 2 and 3), and reports how many seeds
# the swarm needed to catch it. A mutation that survives the whole budget
# makes this script fail.
#
#   tests/sim/run_mutations.sh [SEEDS] [EXTRA raftkv-sim FLAGS...]
#   MUTATIONS="4 5 6" tests/sim/run_mutations.sh 200 --kv-every 1   # the kv::Store ones
#
# Build trees: build-mutation-N/ in the repository root (never used by CI).
set -u
cd "$(dirname "$0")/../.."
SEEDS=${1:-2000}
shift || true
JOBS=${JOBS:-2}
status=0
for m in ${MUTATIONS:-1 2 3}; do
  dir=build-mutation-$m
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRAFTKV_SIM_MUTATION=$m \
    -DRAFTKV_BUILD_TESTS=OFF -DRAFTKV_BUILD_BENCHMARKS=OFF > /dev/null || exit 2
  cmake --build "$dir" -j "$JOBS" --target raftkv-sim > /dev/null || exit 2
  out=$("$dir/src/sim/raftkv-sim" --seeds "$SEEDS" --work-dir "${TMPDIR:-/tmp}" "$@" 2>&1)
  first=$(printf '%s\n' "$out" | sed -n 's/^FAIL seed \([0-9]*\).*/\1/p' | head -1)
  aborted=$(printf '%s\n' "$out" | sed -n 's/^raftkv-sim: aborted in seed \([0-9]*\).*/\1/p' | head -1)
  prop=$(printf '%s\n' "$out" | sed -n 's/^  violated: //p' | head -1)
  if [ -n "$first" ]; then
    echo "mutation $m: caught at seed $first: $prop"
  elif [ -n "$aborted" ]; then
    echo "mutation $m: caught at seed $aborted: an invariant check of the code under test aborted"
    printf "%s\n" "$out" | grep -m1 -E "invariant violated|what\(\)" | sed "s/^/  /"
  else
    echo "mutation $m: NOT caught in $SEEDS seeds"
    status=1
  fi
done
exit $status
