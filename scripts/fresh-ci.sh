#!/usr/bin/env bash
# CI as a new machine runs it: .ci/run on a clean clone of this checkout's
# HEAD inside a pristine debian:bookworm container (podman; nothing
# installed, cold ccache), RUNS times in a row. Prints each run's stage
# table and exit status, keeps each log, and exits 1 if any run failed.
# Every container is removed by id on every exit path.
#
# Usage: scripts/fresh-ci.sh [-n RUNS] [-c CCACHE_DIR] [-l HOGS]
#   -n: runs (default 1; a cold run takes 30-75 minutes on two cores,
#       depending on what else runs).
#   -c: a host folder kept as the containers' ccache, so only the first run
#       compiles cold. Everything else in each container is still pristine
#       (every package installed from the registry). Default: none, all cold.
#   -l: HOGS stress-ng CPU hogs run beside the containers throughout, so the
#       proof is on a loaded machine (default 0).
# Logs: build/fresh-ci/run-N.log.
# Env: FRESH_CI_CA: a CA bundle to hand to npm in the container (default:
#      the host's /etc/ssl/certs/ca-certificates.crt, so a network whose TLS
#      proxy only the host trusts still reaches registry.npmjs.org; empty
#      hands over nothing). Nothing else comes from the host.
# Needs root: ../shared/tools/container-base.sh sets podman up.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

RUNS=1 CCACHE_HOST="" HOGS=0
while getopts "n:c:l:h" opt; do
  case "$opt" in
    n) RUNS=$OPTARG ;;
    c) CCACHE_HOST=$OPTARG ;;
    l) HOGS=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "fresh-ci: -n wants a positive number" >&2; exit 2; }
[[ "$HOGS" =~ ^[0-9]+$ ]] || { echo "fresh-ci: -l wants a number" >&2; exit 2; }

BASE_SCRIPT="$REPO/../shared/tools/container-base.sh"
[ -f "$BASE_SCRIPT" ] || { echo "fresh-ci: $BASE_SCRIPT not found" >&2; exit 2; }
bash "$BASE_SCRIPT" >/dev/null

CA=${FRESH_CI_CA-/etc/ssl/certs/ca-certificates.crt}
CA_ARGS=()
if [ -n "$CA" ]; then
  CA_ARGS=(-v "$CA:/host-ca.pem:ro" -e NODE_EXTRA_CA_CERTS=/host-ca.pem
           -e npm_config_cafile=/host-ca.pem)
fi

CACHE_ARGS=()
if [ -n "$CCACHE_HOST" ]; then
  mkdir -p "$CCACHE_HOST"
  CACHE_ARGS=(-v "$(cd "$CCACHE_HOST" && pwd):/root/.cache/ccache")
fi

OUT=$REPO/build/fresh-ci
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/dogpiled-fresh-ci.XXXXXX)
CID="" HOG_PID=""
cleanup() {
  [ -z "$CID" ] || podman rm -f -t 0 "$CID" >/dev/null 2>&1 || true
  [ -z "$HOG_PID" ] || { kill "$HOG_PID" 2>/dev/null; wait "$HOG_PID" 2>/dev/null; } || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$HOGS" -gt 0 ]; then
  command -v stress-ng >/dev/null || { echo "fresh-ci: -l needs stress-ng on the host" >&2; exit 2; }
  stress-ng --cpu "$HOGS" --quiet &
  HOG_PID=$!
fi

failed=0
for run in $(seq 1 "$RUNS"); do
  src=$WORK/run-$run
  git clone -q "$REPO" "$src"
  start=$SECONDS
  CID=$(podman run -d --network=host -v "$src:/src" "${CA_ARGS[@]}" "${CACHE_ARGS[@]}" \
    debian:bookworm bash -c 'cd /src && CI=true bash .ci/run')
  # In the background and waited for, so that INT/TERM run the traps (and
  # remove the container) at once instead of after the whole run.
  podman wait "$CID" > "$WORK/rc" &
  wait $!
  rc=$(cat "$WORK/rc")
  podman logs "$CID" > "$OUT/run-$run.log" 2>&1
  podman rm -f -t 0 "$CID" >/dev/null 2>&1 || true
  CID=""
  rm -rf "$src"
  printf '\n=== fresh-ci run %d: exit %s in %dm%02ds (%s)\n' "$run" "$rc" \
    $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$OUT/run-$run.log"
  sed -n '/^=== stage times/,$p' "$OUT/run-$run.log"
  grep -A20 'The following tests FAILED' "$OUT/run-$run.log" | sed -n '2,/^Errors/p' || true
  [ "$rc" = 0 ] || failed=1
done
exit "$failed"
