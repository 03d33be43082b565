#!/usr/bin/env bash
# Ferry's TCP transport against Mooncake's classic transfer engine over TCP on loopback, the
# same block x batch shapes, runs interleaved (these machines drift by tens of percent within
# a minute). Mooncake is not part of Ferry: point MOONCAKE_BENCH at the transfer_engine_bench
# of a Mooncake build you have (built with -DUSE_TCP=ON; ../shared/MACHINE-NOTES.md says how;
# offline, also pass -DBUILD_UNIT_TESTS=OFF -DFETCHCONTENT_SOURCE_DIR_GOOGLETEST=/usr/src/googletest
# -DFETCHCONTENT_FULLY_DISCONNECTED=ON, or its configure step waits to download googletest).
# Both sides run one initiator thread and host memory; Mooncake's classic engine (its default
# --backend), P2P handshake, no metadata server.
#   MOONCAKE_BENCH=/path/to/transfer_engine_bench bench/vs_mooncake.sh [seconds-per-run] [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
reps=${2:-3}
bin=${FERRY_BIN:-build/bin}
mc=${MOONCAKE_BENCH:?set MOONCAKE_BENCH to Mooncake\'s transfer_engine_bench}
[ -x "$mc" ] || { echo "$mc is not executable" >&2; exit 1; }
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
tmp=$(mktemp -d)
mc_target=
cleanup() { [ -n "$mc_target" ] && kill $mc_target 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
ferry_gbps() {  # op block batch
  $bin/ferry-bench --mode=loopback --protocol=tcp --operation=$1 --block_size=$2 --batch_size=$3 \
    --buffer_size=1G --duration="$secs" --json 2>/dev/null |
    python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['throughput_GBps'])"
}
# Mooncake's target, once: P2P handshake (no metadata server), host memory. It picks its own
# handshake port and says it ("listening on HOST:PORT"): that is its segment name.
GLOG_logtostderr=1 "$mc" --mode=target --protocol=tcp --metadata_server=P2PHANDSHAKE \
  --local_server_name=127.0.0.1 --buffer_size=1073741824 >$tmp/target.log 2>&1 &
mc_target=$!
segment=
for _ in $(seq 100); do
  segment=$(sed -n 's/.*P2P handshake, listening on \([0-9.:]*\).*/\1/p' $tmp/target.log | head -1)
  [ -n "$segment" ] && break
  sleep 0.1
done
[ -n "$segment" ] || { echo "Mooncake's target did not start:"; tail -5 $tmp/target.log; exit 1; }
sleep 0.5
mooncake_gbps() {  # op block batch: its "throughput X GB/s" line
  GLOG_logtostderr=1 "$mc" --mode=initiator --protocol=tcp --metadata_server=P2PHANDSHAKE \
    --local_server_name=127.0.0.1 --segment_id=$segment \
    --operation=$1 --block_size=$2 --batch_size=$3 --threads=1 --buffer_size=1073741824 \
    --duration="$secs" --report_unit=GB 2>&1 | sed -n 's/.*throughput \([0-9.]*\) GB.*/\1/p' | tail -1
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1); median of $reps x ${secs}s runs, one thread"
printf "%-6s %-6s %6s %11s %14s %6s\n" op block batch "ferry GB/s" "mooncake GB/s" ratio
for shape in "1048576 16" "4194304 16" "1048576 4" "65536 128"; do
  read -r block batch <<<"$shape"
  for op in write read; do
    f=(); m=()
    for ((i = 0; i < reps; i++)); do
      f+=("$(ferry_gbps $op $block $batch)")
      v=$(mooncake_gbps $op $block $batch)
      m+=("${v:-0}")
    done
    fm=$(median "${f[@]}"); mm=$(median "${m[@]}")
    printf "%-6s %-6s %6s %11.2f %14.2f %6s\n" $op $((block >> 10))K $batch "$fm" "$mm" \
      "$(python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'{a/b:.2f}' if b > 0 else 'n/a')" "$fm" "$mm")"
  done
done
