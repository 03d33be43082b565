#!/usr/bin/env bash
# The layer rules of docs/architecture.md, checked on every build (CMake target check_layers)
# and by scripts/test.sh. Each #include "…" of a folder must name an allowed folder:
#   include/ferry  ferry/                       (the public API stands alone)
#   src/common     common/ ferry/               (a leaf)
#   src/model      common/ model/ ferry/        (the data model core and transports share)
#   src/control    common/ control/ ferry/
#   src/metadata   common/ metadata/ ferry/
#   src/transport  common/ control/ model/ ferry/ transport/<interface>.h, its own folder;
#                  registry.cpp alone names the transport folders
#   src/core       anything above, but of transport/ only transport.h and registry.h
#   src/compat, python, tools   ferry/ common/ compat/ metadata/ (the public API and
#                  ferry/engine_ext.h, never core/)
#   src/capi       ferry/ common/ capi/        (the C API wraps the public C++ API only)
# Core never names a transport (no transport's name as a string, no transport class), and
# nothing but src/common/environment.cpp reads the environment.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
report() { echo "check-layers: $1" >&2; fail=1; }

# check DIR ALLOWED-REGEX [FILES...]: every project include of files under DIR matches.
check() {
  local dir=$1 allowed=$2
  shift 2
  local files=("$@")
  [ ${#files[@]} -eq 0 ] && mapfile -t files < <(find "$dir" -name '*.h' -o -name '*.cpp' | sort)
  for f in "${files[@]}"; do
    while IFS= read -r line; do
      inc=${line#*\"}
      inc=${inc%%\"*}
      [[ $inc == */* ]] || continue  # same-folder or tool-local headers
      [[ $inc =~ $allowed ]] || report "$f includes \"$inc\" (allowed: $allowed)"
    done < <(grep -h '^#include "' "$f")
  done
}

check include/ferry '^ferry/'
check src/common '^(common|ferry)/'
check src/model '^(common|model|ferry)/'
check src/control '^(common|control|ferry)/'
check src/metadata '^(common|metadata|ferry)/'
check src/core '^(common|control|metadata|model|core|ferry)/|^transport/(transport|registry)\.h$'
check src/compat '^(common|compat|metadata|ferry)/'
check src/capi '^(common|capi|ferry)/'
check python '^(common|compat|ferry)/'
check tools '^(common|metadata|ferry)/'
for t in src/transport/*/; do
  name=$(basename "$t")
  check "$t" "^(common|control|model|ferry)/|^transport/(transport|local_peer|endpoint_cache|checked_copy)\.h$|^transport/$name/"
done
mapfile -t iface < <(ls src/transport/*.h src/transport/*.cpp | grep -v '/registry\.cpp$')
check src/transport "^(common|control|model|ferry)/|^transport/[a-z_]+\.h$" "${iface[@]}"
check src/transport "^(common|control|model|ferry)/|^transport/" src/transport/registry.cpp

# Core never names a transport.
names=$(sed -n 's/^ *{"\([a-z_]*\)", [0-9].*/\1/p' src/transport/registry.cpp | grep -vx file | paste -sd'|')
[ -n "$names" ] || report "no transport names found in src/transport/registry.cpp"
if out=$(grep -nE "\"($names)\"|\b[A-Z][a-z]+Transport\b" src/core/*.h src/core/*.cpp | grep -v '^\S*:[0-9]*: *//'); then
  report "core names a transport:"$'\n'"$out"
fi

# One place reads the environment.
if out=$(grep -rnE '\b(std::)?(secure_)?getenv\(' src tools python | grep -v '^src/common/environment.cpp:'); then
  report "reads the environment outside src/common/environment.cpp:"$'\n'"$out"
fi

[ $fail -eq 0 ] && echo "check-layers: OK"
exit $fail
