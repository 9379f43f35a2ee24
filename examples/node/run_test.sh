#!/usr/bin/env bash
# CTest's node_example: installs the locked npm packages (from npm's cache
# when it has them) and runs the example's tests against $DOGPILED_BIN.
# Exits 77, which CTest reports as skipped, where node or npm is missing.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node_example: node or npm not installed; skipped" >&2
  exit 77
fi
# package-lock.json pins every package; node_modules stays out of git.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --prefer-offline --no-audit --no-fund
fi
exec node --test test/
