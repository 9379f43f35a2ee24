#!/usr/bin/env bash
# Server instructions per call, dogpiled against the no-op floor, counted by
# valgrind's callgrind: immune to the noise of a shared machine, which moves
# CPU-time figures by ±30 % (docs/benchmarks.md). User space only (the
# kernel's share, loopback TCP, is the same for both servers).
#
# Usage: bench/instructions.sh [BUILD_DIR]   (default build/)
# Prints one row per value size and calls in flight: instructions per call
# of the floor and of dogpiled, and their ratio. Takes about 3 minutes.
set -euo pipefail
BUILD=$(cd "${1:-$(dirname "$0")/../build}" && pwd)
WORK=$(mktemp -d /tmp/dogpiled-instructions.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }

# One server under callgrind, instrumented only while the load runs.
measure() {  # system value_bytes in_flight -> "instructions ops"
  local system=$1 bytes=$2 inflight=$3 dir="$WORK/$1.$2.$3"
  mkdir -p "$dir/state"
  local server=("$BUILD/bench/bench_noop_server" --listen 127.0.0.1:0
                --port-file "$dir/port")
  local scenario=(ceiling)
  if [ "$system" = dogpiled ]; then
    server=("$BUILD/server/dogpiled" --listen 127.0.0.1:0 --port-file "$dir/port"
            --state-dir "$dir/state" --metrics-listen 127.0.0.1:0 --log-level warn)
    scenario=(fresh --keys 1)
  fi
  valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$dir/callgrind.out" "${server[@]}" 2>"$dir/valgrind.log" &
  local pid=$!
  for _ in $(seq 600); do grep -qs . "$dir/port" && break; sleep 0.2; done
  callgrind_control -i on "$pid" >/dev/null 2>&1
  # No warm-up: every call of the window is counted, and only those.
  "$BUILD/bench/dogpiled_bench" "${scenario[@]}" --system "$system" \
    --target "127.0.0.1:$(cat "$dir/port")" --concurrency "$inflight" \
    --connections 4 --seconds 8 --warmup-seconds 0 --value-bytes "$bytes" \
    >"$dir/result.json"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local total ops
  total=$(cat "$dir"/callgrind.out.* | awk '/^totals:/ {print $2}')
  ops=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['runs'][0]['ops'])" "$dir/result.json")
  echo "$total $ops"
}

echo "| value | in flight | floor instructions/call | dogpiled instructions/call | ratio |"
echo "|---|---|---|---|---|"
for bytes in 64 65536; do
  for inflight in 1 32; do
    read -r ft fo < <(measure noop "$bytes" "$inflight")
    read -r dt do < <(measure dogpiled "$bytes" "$inflight")
    awk -v b="$bytes" -v n="$inflight" -v ft="$ft" -v fo="$fo" -v dt="$dt" -v do_="$do" \
      'BEGIN { f = ft / fo; d = dt / do_;
               printf "| %s B | %s | %.0f | %.0f | %.2f× |\n", b, n, f, d, d / f }'
  done
done
