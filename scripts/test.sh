#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. install (scripts/install-deps.sh) and build (scripts/build.sh);
#   2. every CTest test: core unit tests, the journal, integration tests
#      against the real daemon, SDK, CLI, Python, deployment (the container
#      image included), reliability and the benchmark harness in quick mode;
#   3. static analysis (scripts/analyze.sh);
#   4. a short fuzz of each libFuzzer target (scripts/fuzz.sh);
#   5. the core and daemon under TSan (scripts/sanitize.sh tsan);
#   6. with ASAN=1 only: the suite under ASan+UBSan (scripts/sanitize.sh
#      asan). It rebuilds everything and was the slowest stage by far (about
#      33 minutes cold on two shared cores), which kept a cold CI run from
#      staying well inside its 90 minutes; people run it before merging
#      changes to server/ or client/.
# Each stage prints how long it took, and a table of all of them ends the
# run, failed or not. A failed install or build ends the run; after that
# every stage runs even if one before it failed, so one CI run reports on
# all of them, and the exit status is non-zero if any failed.
# QUICK=0 runs the reliability suites at full length; FUZZ_SECONDS sets the
# fuzzing time per target. ONLY=ctest stops after step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ccache-env.sh

STAGES=(install build ctest)
[ "${ONLY:-}" = ctest ] || STAGES+=(analyze fuzz tsan asan)
declare -A TOOK RESULT
RUN_START=$SECONDS

duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

summary() {
  printf '\n=== stage times\n'
  printf '%-9s %9s  %s\n' stage time result
  for s in "${STAGES[@]}"; do
    if [ -n "${TOOK[$s]:-}" ]; then
      printf '%-9s %9s  %s\n' "$s" "$(duration "${TOOK[$s]}")" "${RESULT[$s]}"
    else
      printf '%-9s %9s  %s\n' "$s" - "${RESULT[$s]:-not run}"
    fi
  done
  printf '%-9s %9s\n' total "$(duration $((SECONDS - RUN_START)))"
}
trap summary EXIT

# stage NAME COMMAND...: runs one stage, records its time and result, and
# returns its exit status.
stage() {
  local name=$1 start=$SECONDS rc=0
  shift
  printf '\n=== %s (started %s)\n' "$name" "$(date +%T)"
  "$@" || rc=$?
  TOOK[$name]=$((SECONDS - start))
  RESULT[$name]=$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")
  printf '=== %s: %s in %s\n' "$name" "${RESULT[$name]}" "$(duration "${TOOK[$name]}")"
  return "$rc"
}

stage install scripts/install-deps.sh
stage build scripts/build.sh
failed=0
stage ctest bash -c 'cd build && ctest --output-on-failure --timeout 1500 -j"${CTEST_JOBS:-2}"' \
  || failed=1
if [ "${ONLY:-}" != ctest ]; then
  stage analyze scripts/analyze.sh || failed=1
  stage fuzz env FUZZ_SECONDS="${FUZZ_SECONDS:-20}" scripts/fuzz.sh || failed=1
  stage tsan scripts/sanitize.sh tsan || failed=1
  if [ "${ASAN:-0}" = 1 ]; then
    stage asan scripts/sanitize.sh asan || failed=1
  else
    RESULT[asan]="skipped (ASAN=1 runs it)"
  fi
fi
exit "$failed"
