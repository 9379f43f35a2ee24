#!/usr/bin/env bash
# Proof under load: runs the CTest suite N times in a row while stress-ng
# keeps every core busy (one CPU hog pinned to each core), the way a shared
# CI machine looks. Tests may run slower like this but must not fail: a
# failure here is a race in a test or a bug in dogpiled.
#
# Usage: scripts/stress-ci.sh [-n RUNS] [-- CTEST_ARGS...]
#   RUNS: -n, else $STRESS_RUNS, else 5.
#   CTEST_ARGS go to every ctest run, e.g. -- -R reliability_faults
#   CTEST_JOBS: ctest -j (default 2, as scripts/test.sh).
# Builds first (scripts/build.sh, incremental). Each run's log is kept in
# build/stress-ci/run-N.log. Prints every failed test by name, then a
# summary; exits 1 if any run failed. The hogs are killed on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${STRESS_RUNS:-5}
while getopts "n:h" opt; do
  case "$opt" in
    n) RUNS=$OPTARG ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = -- ] && shift
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "stress-ci: -n wants a positive number" >&2; exit 2; }

scripts/build.sh
command -v stress-ng >/dev/null || scripts/install-deps.sh test

HOGS=()
stop_hogs() {
  for pid in "${HOGS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${HOGS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  HOGS=()
}
trap stop_hogs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
CORES=$(nproc)
for ((core = 0; core < CORES; core++)); do
  # --timeout: a backstop should this script be SIGKILLed past its trap.
  stress-ng --cpu 1 --taskset "$core" --timeout "$((RUNS * 2))h" --quiet &
  HOGS+=($!)
done
echo "stress-ci: $CORES CPU hogs (one per core), $RUNS CTest runs"

LOGS=build/stress-ci
mkdir -p "$LOGS"
failed_runs=0
declare -A FAILS  # test name -> how many runs it failed
for ((run = 1; run <= RUNS; run++)); do
  log="$LOGS/run-$run.log"
  start=$SECONDS
  rc=0
  (cd build && ctest --output-on-failure --timeout 1500 -j"${CTEST_JOBS:-2}" "$@") \
    >"$log" 2>&1 || rc=$?
  took=$((SECONDS - start))
  summary=$(grep -E '^[0-9]+% tests passed' "$log" || echo "no CTest summary")
  if [ "$rc" -eq 0 ]; then
    echo "run $run/$RUNS: passed in ${took}s ($summary)"
    continue
  fi
  failed_runs=$((failed_runs + 1))
  echo "run $run/$RUNS: FAILED in ${took}s ($summary); log: $log"
  # CTest's closing list: "<tab> 12 - reliability_faults (Failed)".
  names=$(sed -n '/The following tests FAILED:/,$p' "$log" |
          sed -nE 's/^[[:space:]]*[0-9]+ - (.+) \(([^)]*)\).*/\1 (\2)/p')
  if [ -z "$names" ]; then
    echo "  ctest exited $rc without a list of failed tests; see the log"
    FAILS["(ctest exited $rc)"]=$((${FAILS["(ctest exited $rc)"]:-0} + 1))
  fi
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    echo "  failed: $line"
    name=${line% (*}
    FAILS[$name]=$((${FAILS[$name]:-0} + 1))
  done <<<"$names"
done

echo
echo "stress-ci: $((RUNS - failed_runs)) of $RUNS runs passed under $CORES CPU hogs"
for name in "${!FAILS[@]}"; do
  echo "  $name failed in ${FAILS[$name]} of $RUNS runs"
done
[ "$failed_runs" -eq 0 ]
