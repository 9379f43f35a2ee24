#!/usr/bin/env bash
# Sanitizer builds, each in its own build folder:
#   asan: AddressSanitizer + UndefinedBehaviorSanitizer, then the whole
#         suite (minus the container, benchmark and soak runs, which test
#         deployment and speed rather than memory safety) against it;
#   tsan: ThreadSanitizer on the core's and the journal's unit tests (one
#         has many threads hammering one Coordinator), on the C++ SDK's
#         tests (its keep-alive thread, flights and gRPC callbacks; the SDK
#         and the daemon both built with TSan), and on the daemon
#         serving the functional integration tests (the 1,000-waiter scale
#         test is left to the normal build: TSan slows it past its waits).
# Usage: scripts/sanitize.sh [asan] [tsan]   (no argument: both)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ccache-env.sh
JOBS=$(nproc)
want=${*:-asan tsan}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for kind in $want; do
  case "$kind" in
    asan)
      # No benchmarks: their tests are left out below, so skip compiling them.
      cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_BENCHMARKS=OFF \
        -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
        -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
      cmake --build build-asan -j"$JOBS"
      (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        ctest --output-on-failure -j"${CTEST_JOBS:-2}" -E "container|bench|soak|reliability")
      ;;
    tsan)
      cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_FLAGS="-fsanitize=thread -Wno-tsan" \
        -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
      sdk_tests=(client_client_test client_session_test client_dogpile_test
                 client_dogpile_lock_only_test client_herd_test
                 client_name_registry_test client_rwmutex_test client_retry_test
                 client_near_cache_test)
      cmake --build build-tsan -j"$JOBS" --target core_test state_test dogpiled dogpiled_python_stubs \
        "${sdk_tests[@]}"
      export TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/scripts/tsan.supp"
      # Leases in the SDK tests run 3 times longer (tests/client/test_util.h):
      # TSan slows each renewal's round trip several times over.
      export DOGPILED_TEST_TIME_SCALE=3
      (cd build-tsan && ctest --output-on-failure -j"${CTEST_JOBS:-2}" \
        -R "^(ConcurrencyTest|CoreTest|InvalidationTest|LockOnlyTest|MemoryTest|StaleIfErrorTest|PersistenceTest|ValueJournalTest|RecordReaderTest|ClientTest|SessionTest|DogpileTest|DogpileLockOnlyTest|HerdTest|NameRegistryTest|StatusTest|ReadWriteMutexTest|RetryTest|NearCacheTest|NearCacheSteadyTest)\\.")
      DOGPILED_BIN=build-tsan/server/dogpiled DOGPILED_PY_STUBS=build-tsan/python_stubs \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider -k "not thousand" \
        tests/integration/test_sessions.py tests/integration/test_dogpile.py \
        tests/integration/test_bad_input.py tests/integration/test_security.py \
        tests/integration/test_section5.py tests/integration/test_near_cache.py
      ;;
    *) echo "sanitize: unknown kind '$kind' (asan, tsan)" >&2; exit 2 ;;
  esac
done
