#!/usr/bin/env bash
# Installs what dogpiled needs (Debian bookworm) and builds everything into
# build/. Safe to run again: installs are skipped, builds are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ccache-env.sh
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
cmake --build build -j"$(nproc)"
