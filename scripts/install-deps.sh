#!/usr/bin/env bash
# The one list of what dogpiled needs on Debian bookworm, for people, CI and
# the Docker build alike. Idempotent: apt-get skips what is installed.
set -euo pipefail

PACKAGES=(
  # build
  g++ cmake make pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libspdlog-dev libasio-dev libcli11-dev
  prometheus-cpp-dev nlohmann-json3-dev libyaml-cpp-dev zlib1g-dev
  # tests
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-grpcio python3-protobuf python3-pytest python3-yaml
  python3-dogpile.cache python3-pip python3-setuptools
  # benchmarks (bench/): peers, the Redis client library, plots, profilers
  redis-server etcd-server etcd-client libhiredis-dev python3-matplotlib
  linux-perf valgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
