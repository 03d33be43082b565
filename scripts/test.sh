#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: the layer rules, the release build's suite
# (with the Python suite from an installed wheel and the consumers of the installed C/C++
# package), the .deb installed and removed, the rdma transport's line coverage, the same
# suite under AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer, and
# bounded libFuzzer runs of the wire decoder, the token handshake and the HTTP request head.
# Exit status is non-zero
# if anything fails. To fit CI's time the three builds are unity builds
# (CMAKE_UNITY_BUILD; scripts/build.sh alone builds file by file, so a missing include still
# shows there), with line-table debug info, and the sanitizer builds use clang (a third
# faster to compile than g++ here; the release build stays g++).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
unity=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16)
# Sanitizer builds: optimized enough to run the suite quickly, line tables for the reports.
sanitized=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DFERRY_BUILD_PYTHON=OFF
           -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)

echo "== layer rules (docs/architecture.md)"
bash scripts/check-layers.sh

echo "== release build and tests (C++ and Python)"
bash scripts/build.sh build "${unity[@]}" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
# The Python API must have been built: a missing dependency is a failure, not a skip.
ls build/python/ferry/engine.*.so >/dev/null || { echo "the Python module was not built" >&2; exit 1; }
(cd build && ctest -j2 --output-on-failure --timeout 300)

echo "== Debian package: build, install with apt-get, run ferry-bench from /usr/bin, remove"
bash scripts/package.sh --check build

echo "== rdma transport: line coverage over the verbs emulation (bar 85 %)"
bash scripts/coverage.sh src/transport/rdma ferry_rdma_tests 85
# The main job (scripts/bench.sh) builds ferry-bench file by file, where a missing include
# that the unity builds above hide fails (it did once): build it the same way here, in the
# coverage build the library is already compiled in.
echo "== the main job's target, file by file"
cmake --build build-cov -j2 --target ferry-bench >/dev/null

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
# (The Python module stays out: the interpreter would need the sanitizer runtime preloaded.)
bash scripts/build.sh build-asan "${unity[@]}" "${sanitized[@]}" -DFERRY_SANITIZE=address,undefined
(cd build-asan &&
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest -j2 --output-on-failure --timeout 600)

echo "== ThreadSanitizer build and tests"
bash scripts/build.sh build-tsan "${unity[@]}" "${sanitized[@]}" -DFERRY_SANITIZE=thread
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest -j2 --output-on-failure --timeout 600)

# Every parser of what peers and clients send, each for a bounded time: the wire decoder
# (control, tcp and rdma-handshake frames), the token handshake, the HTTP request head with its signature.
fuzz_seconds=${FERRY_FUZZ_SECONDS:-20}
fuzz() {  # name, sources...
  local name=$1
  shift
  echo "== libFuzzer: $name, $fuzz_seconds s"
  mkdir -p "build/fuzz/$name"
  clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Isrc "tests/fuzz/$name.cpp" "$@" \
    src/common/status.cpp -o "build/bin/ferry_$name" -lcrypto
  "build/bin/ferry_$name" -max_total_time="$fuzz_seconds" -print_final_stats=1 "build/fuzz/$name" 2>&1 | tail -n 3
}
fuzz wire_fuzz src/control/wire.cpp src/transport/tcp/tcp_wire.cpp src/transport/rdma/rdma_wire.cpp
fuzz handshake_fuzz src/control/handshake.cpp src/control/rpc_client.cpp src/control/wire.cpp src/common/auth.cpp \
  src/common/environment.cpp src/common/net.cpp
fuzz http_fuzz src/common/http.cpp src/common/auth.cpp src/common/environment.cpp src/common/net.cpp \
  src/common/socket_server.cpp src/common/log.cpp
echo "fuzz: 3 passed, 0 failed"
