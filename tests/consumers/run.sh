#!/usr/bin/env bash
# Builds a consumer of Ferry against the *installed* artefacts and runs it:
#   run.sh BUILD_DIR cmake    an out-of-tree CMake project: find_package(Ferry) -> Ferry::ferry
#                             and Ferry::ferry_static (tests/consumers/cmake_project)
#   run.sh BUILD_DIR c        a C program built with pkg-config (tests/consumers/c_program)
# Ferry is installed from BUILD_DIR into a temporary prefix first; every installed header
# must also compile on its own (C++17; ferry.h as C99 too). Each consumer moves verified
# bytes between two processes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
kind=$2
work=$(mktemp -d /tmp/ferry-consumer-XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null

for h in "$prefix"/include/ferry/*.h "$prefix"/include/tent/*.h; do
  name=${h#"$prefix/include/"}
  echo "#include <$name>" > "$work/alone.cpp"
  c++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I"$prefix/include" "$work/alone.cpp" ||
    { echo "installed header $name does not compile on its own" >&2; exit 1; }
done
echo '#include <ferry/ferry.h>' > "$work/alone.c"
cc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$prefix/include" "$work/alone.c"
# Nothing installed may point back into the source or build tree.
if grep -rIl -e "$build" -e "$(cd "$here/../.." && pwd)/src" "$prefix/include" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"; then
  echo "installed files name the build or source tree" >&2
  exit 1
fi

case $kind in
  cmake)
    cmake -S "$here/cmake_project" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$work/build" >/dev/null
    "$work/build/consumer_shared"
    "$work/build/consumer_static"
    # The shared program must really load the installed library.
    ldd "$work/build/consumer_shared" > "$work/ldd.txt"
    grep -q "$prefix/lib/libferry.so" "$work/ldd.txt" ||
      { echo "consumer_shared does not load $prefix/lib/libferry.so" >&2; exit 1; }
    ;;
  c)
    export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
    [ "$(pkg-config --modversion ferry)" = "$(sed -n 's/^#define FERRY_VERSION_STRING "\(.*\)"/\1/p' "$prefix/include/ferry/version.h")" ]
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Wextra -Werror -o "$work/consumer" "$here/c_program/consumer.c" $(pkg-config --cflags --libs ferry) \
      -Wl,-rpath,"$(pkg-config --variable=libdir ferry)"
    "$work/consumer"
    ;;
  *)
    echo "usage: run.sh BUILD_DIR cmake|c" >&2
    exit 2
    ;;
esac
echo "consumer $kind: passed"
