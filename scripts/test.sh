#!/usr/bin/env bash
# The whole test suite: installs, builds, then runs every test with CTest
# (core unit tests, integration tests against the real daemon, SDK, CLI and
# Python tests). Set QUICK=0 for the long modes of soak/fuzz/bench suites.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure --timeout 900 -j"${CTEST_JOBS:-2}"
