#!/usr/bin/env bash
# Static analysis of the transport-free core (and the journal's record
# format): clang's -Wthread-safety over the annotated shared state, then
# clang-tidy with the checked-in .clang-tidy. Both fail on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=(server/core/*.cc server/replication/*.cc server/daemon/record_io.cc
       server/daemon/snapshot_io.cc)
# build/proto: dogpiled/v1/stats_fields.inc, generated from admin.proto by
# the build that runs before this.
FLAGS=(-std=c++20 -Iserver -I"${BUILD_DIR:-build}/proto")
echo "analyze: clang -Wthread-safety on ${#FILES[@]} files"
for f in "${FILES[@]}"; do
  clang++ "${FLAGS[@]}" -Wthread-safety -Wthread-safety-beta -Werror -fsyntax-only "$f"
done
echo "analyze: clang-tidy on ${#FILES[@]} files"
printf '%s\n' "${FILES[@]}" |
  xargs -P "$(nproc)" -I{} clang-tidy -quiet {} -- "${FLAGS[@]}"
echo "analyze: clean"
