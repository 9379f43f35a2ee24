#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each one
# from the seed corpus in tests/fuzz/corpus/. Quick by default (CI); set
# FUZZ_SECONDS for longer runs. New inputs go to a scratch corpus, so the
# checked-in seeds only change when someone copies findings in on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ccache-env.sh
SECONDS_EACH=${FUZZ_SECONDS:-20}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDOGPILED_FUZZ=ON -DDOGPILED_WERROR=ON -DCMAKE_CXX_FLAGS="$SAN" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target validation_fuzzer core_ops_fuzzer
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# A failing input is kept in the build folder (not the checkout) to replay:
#   $BUILD/tests/fuzz/<target> $BUILD/fuzz-artifacts/<file>
mkdir -p "$BUILD/fuzz-artifacts"
for target in validation_fuzzer core_ops_fuzzer; do
  mkdir -p "$scratch/$target"
  cp tests/fuzz/corpus/"$target"/* "$scratch/$target"/
  echo "fuzz: $target for ${SECONDS_EACH}s"
  "$BUILD/tests/fuzz/$target" -max_total_time="$SECONDS_EACH" -max_len=4096 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/" \
    "$scratch/$target" 2>&1 | tail -n 12
done
echo "fuzz: no crash, no invariant broken"
