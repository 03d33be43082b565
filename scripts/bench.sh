#!/usr/bin/env bash
# The main job on a fresh machine: install packages, build, and run a transfer benchmark
# between two processes on this machine (ferry-bench --mode=loopback, p2p metadata: no
# server). Extra arguments go to ferry-bench, e.g. --operation=read --block_size=1048576.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Only what the benchmark runs (the library and ferry-bench): half the build on a fresh
# machine, and a test file cannot stop the main job. test.sh builds the same target file by
# file, as this does.
FERRY_TARGETS=ferry-bench bash scripts/build.sh build
exec build/bin/ferry-bench --mode=loopback "$@"
