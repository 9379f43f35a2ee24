#!/usr/bin/env bash
# Checks deploy/dogpiled.service with systemd's own tools:
#   systemd-analyze verify            (syntax, directives, the ExecStart binary)
#   systemd-analyze security --offline (the hardening score)
# The unit names the installed path; verify needs an executable there, so a
# copy pointing at the built binary ($DOGPILED_BIN) is checked.
# Exits 77 (reported as skipped by CTest) when systemd-analyze is missing.
set -euo pipefail
UNIT="$(cd "$(dirname "$0")/.." && pwd)/dogpiled.service"
MAX_EXPOSURE=2.5

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIPPED: systemd-analyze is not installed (Debian package: systemd);" \
       "deploy/dogpiled.service was not verified"
  exit 77
fi
: "${DOGPILED_BIN:?set DOGPILED_BIN to the built dogpiled}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -q '^ExecStart=/usr/local/bin/dogpiled ' "$UNIT"
sed "s|^ExecStart=/usr/local/bin/dogpiled |ExecStart=$DOGPILED_BIN |" "$UNIT" > "$tmp/dogpiled.service"

# verify prints problems and may still exit 0: any output is a failure.
out=$(systemd-analyze verify "$tmp/dogpiled.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "systemd-analyze verify complained:"; echo "$out"; exit 1; fi
echo "systemd-analyze verify: clean"

# The flags in ExecStart must be ones the daemon accepts.
flags=$(sed -n 's|^ExecStart=/usr/local/bin/dogpiled ||p' "$UNIT")
help=$("$DOGPILED_BIN" --help)
for flag in $flags; do
  case "$flag" in --*) grep -q -- "  $flag " <<<"$help" || { echo "unknown flag in ExecStart: $flag"; exit 1; } ;; esac
done

score=$(systemd-analyze security --offline=true "$tmp/dogpiled.service" 2>/dev/null \
        | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "could not read the exposure level"; exit 1; }
echo "systemd-analyze security: exposure $score (at most $MAX_EXPOSURE)"
awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'
