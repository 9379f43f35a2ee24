#!/usr/bin/env bash
# The one list of what dogpiled needs on Debian bookworm, for people, CI and
# the Docker build alike. Idempotent: apt-get skips what is installed.
# Usage: install-deps.sh [build] [test] [bench] [runtime]; no argument
# installs build, test and bench (the Docker image's build stage asks for
# "build", its final stage for "runtime": the shared libraries only).
set -euo pipefail

BUILD=(
  g++ cmake make pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libspdlog-dev libasio-dev libcli11-dev
  prometheus-cpp-dev nlohmann-json3-dev libyaml-cpp-dev zlib1g-dev
  # google/rpc/{status,error_details}.proto, grpc/health/v1/health.proto
  golang-github-gogo-googleapis-dev grpc-proto
)
TEST=(
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-grpcio python3-protobuf python3-pytest python3-yaml
  python3-dogpile.cache python3-pip python3-setuptools python3-venv openssl
  python3-h2   # raw HTTP/2 client of the zero-window test (tests/integration)
  systemd   # systemd-analyze checks deploy/dogpiled.service
  # analysis, fuzzing and sanitizers (scripts/analyze.sh, fuzz.sh)
  clang clang-tidy libclang-rt-14-dev
  stress-ng  # the CPU hogs of scripts/stress-ci.sh
)
# benchmarks (bench/): peers, the Redis client library, plots, profilers
BENCH=(
  redis-server etcd-server etcd-client libhiredis-dev python3-matplotlib
  linux-perf valgrind
)

# What the image's final stage runs dogpiled and dogpilectl with.
RUNTIME=(libgrpc++1.51 libprotobuf32 libspdlog1.10 libprometheus-cpp-pull1.0)

# Node.js and npm run the examples/node test. Debian's nodejs and npm only
# where no node is installed at all: npm's Debian package conflicts with
# nodesource's nodejs, which bundles its own npm.
NODE=()
if [ -z "$(command -v node)" ]; then
  NODE+=(nodejs)
fi
if [ -z "$(command -v npm)" ]; then
  NODE+=(npm)
fi

# The Raft engine of replicated mode (docs/replication.md): libraft 0.22
# from bookworm-backports, never bookworm's own 0.15 (a known safety bug);
# libuv, which its raft.pc does not name, from bookworm. Headers to build,
# the libraries alone to run.
RAFT=(libraft-dev libuv1-dev)
RAFT_RUNTIME=(libraft0 libuv1)
RAFT_MIN=0.22.1

PACKAGES=()
WANT_RAFT=()
for group in "${@:-build test bench}"; do
  for g in $group; do
    case "$g" in
      build) PACKAGES+=("${BUILD[@]}"); WANT_RAFT=("${RAFT[@]}") ;;
      test) PACKAGES+=("${TEST[@]}" ${NODE[@]+"${NODE[@]}"}); WANT_RAFT=("${RAFT[@]}") ;;
      bench) PACKAGES+=("${BENCH[@]}") ;;
      runtime) PACKAGES+=("${RUNTIME[@]}")
               [ ${#WANT_RAFT[@]} -gt 0 ] || WANT_RAFT=("${RAFT_RUNTIME[@]}") ;;
      *) echo "install-deps: unknown group '$g' (build, test, bench, runtime)" >&2; exit 2 ;;
    esac
  done
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

raft_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' "${WANT_RAFT[0]}" 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge "$RAFT_MIN" &&
    dpkg-query -W -f='${Status}' "${WANT_RAFT[1]}" 2>/dev/null | grep -q "install ok installed"
}
if [ ${#WANT_RAFT[@]} -gt 0 ] && ! raft_ok; then
  list=/etc/apt/sources.list.d/bookworm-backports.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # The mirror apt already uses, as ../shared/tools/container-base.sh reads it.
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || { echo "install-deps: cannot find the Debian mirror in apt's sources" >&2; exit 1; }
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" | $SUDO tee "$list" >/dev/null
  fi
  echo "install-deps: installing ${WANT_RAFT[*]} (libraft from bookworm-backports)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    -t bookworm-backports "${WANT_RAFT[@]}"
  raft_ok || { echo "install-deps: ${WANT_RAFT[0]} >= $RAFT_MIN did not install" >&2; exit 1; }
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
