#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. install and build (scripts/build.sh);
#   2. every CTest test: core unit tests, the journal, integration tests
#      against the real daemon, SDK, CLI, Python, deployment (the container
#      image included), reliability and the benchmark harness in quick mode;
#   3. static analysis (scripts/analyze.sh);
#   4. a short fuzz of each libFuzzer target (scripts/fuzz.sh);
#   5. the suite under ASan+UBSan and the core and daemon under TSan
#      (scripts/sanitize.sh).
# QUICK=0 runs the reliability suites at full length; FUZZ_SECONDS sets the
# fuzzing time per target. ONLY=ctest stops after step 2.
set -euo pipefail
cd "$(dirname "$0")/.."
stage() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

stage build
scripts/build.sh
stage ctest
(cd build && ctest --output-on-failure --timeout 1500 -j"${CTEST_JOBS:-2}")
[ "${ONLY:-}" = ctest ] && exit 0
stage analyze
scripts/analyze.sh
stage fuzz
FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh
stage sanitize
scripts/sanitize.sh
stage done
