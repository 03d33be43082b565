#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: the release build's suite, the same suite
# under AddressSanitizer + UndefinedBehaviorSanitizer, and a bounded libFuzzer run of the
# wire decoder. Exit status is non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== release build and tests (C++ and Python)"
bash scripts/build.sh build
# The Python API must have been built: a missing dependency is a failure, not a skip.
ls build/python/ferry/engine.*.so >/dev/null || { echo "the Python module was not built" >&2; exit 1; }
(cd build && ctest -j2 --output-on-failure --timeout 300)

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
# (The Python module stays out: the interpreter would need the ASan runtime preloaded.)
bash scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=address,undefined \
  -DFERRY_BUILD_PYTHON=OFF
(cd build-asan &&
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest -j2 --output-on-failure --timeout 600)

echo "== libFuzzer: wire decoder, ${FERRY_FUZZ_SECONDS:-30} s"
mkdir -p build/fuzz
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
  tests/fuzz/wire_fuzz.cpp src/control/wire.cpp src/core/status.cpp -o build/bin/ferry_wire_fuzz
build/bin/ferry_wire_fuzz -max_total_time="${FERRY_FUZZ_SECONDS:-30}" -print_final_stats=1 \
  build/fuzz 2>&1 | tail -n 3
echo "fuzz: 1 passed, 0 failed"
