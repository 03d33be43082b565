#!/usr/bin/env bash
# Fails when a function of the C API (include/ferry/ferry.h) is not called by its tests
# (tests/capi/*.c): every call must be exercised.
set -euo pipefail
cd "$(dirname "$0")/../.."
mapfile -t calls < <(sed -nE 's/^[a-z_ ]+[ *]+(ferry_[a-z0-9_]+)\(.*/\1/p' include/ferry/ferry.h | sort -u)
[ ${#calls[@]} -ge 60 ] || { echo "only ${#calls[@]} calls found in ferry.h: the pattern is broken" >&2; exit 1; }
missing=0
for c in "${calls[@]}"; do
  grep -qE "\b$c\(" tests/capi/*.c || { echo "not exercised by tests/capi: $c" >&2; missing=$((missing + 1)); }
done
echo "capi coverage: ${#calls[@]} calls, $missing not exercised"
[ $missing -eq 0 ]
