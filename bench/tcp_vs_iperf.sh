#!/usr/bin/env bash
# Ferry's TCP transport against iperf3 on loopback, measured in the same run.
#   bench/tcp_vs_iperf.sh [seconds-per-run] [repeats]   (needs build/ and iperf3)
# Throughput: ferry-bench --mode=loopback (two processes, one thread) vs iperf3, one stream,
# -l = block size capped at 1 MiB. Latency: a synchronous 64 B ferry write (batch of 1) vs a
# plain TCP 64 B ping-pong between two processes (ferry-pingpong), blocking and polling.
# Each figure is the median of `repeats` runs, the ferry and iperf3 runs interleaved, since
# these shared machines drift by tens of percent from one minute to the next.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
reps=${2:-3}
bin=${FERRY_BIN:-build/bin}  # another build: FERRY_BIN=/path/to/bin (before/after comparisons)
command -v iperf3 >/dev/null || { echo "iperf3 missing: run scripts/setup.sh" >&2; exit 1; }
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

last_json() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
ratio() { python3 -c "import sys; print(float(sys.argv[1])/float(sys.argv[2]))" "$1" "$2"; }

iperf_gbps() {  # $1 = write size
  local port=$((20000 + RANDOM % 20000))
  iperf3 -s -1 -B 127.0.0.1 -p $port >/dev/null 2>&1 &
  local spid=$!
  sleep 0.3
  iperf3 -c 127.0.0.1 -p $port -l "$1" -t "$secs" -J 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)['end']['sum_received']['bits_per_second']/8e9)"
  wait $spid 2>/dev/null || true
}

ferry_gbps() {  # op bytes batch
  $bin/ferry-bench --mode=loopback --protocol=tcp --operation=$1 --block_size=$2 --batch_size=$3 \
    --duration="$secs" --json 2>/dev/null | last_json throughput_GBps
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, kernel $(uname -r); median of $reps x ${secs}s runs"
printf "%-6s %-6s %6s %11s %17s %6s\n" op block batch "ferry GB/s" "iperf3 GB/s (-l)" ratio
for block in 64K 1M 4M; do
  case $block in 64K) bytes=65536; batch=128; il=64K;; 1M) bytes=1048576; batch=16; il=1M;; 4M) bytes=4194304; batch=4; il=1M;; esac
  for op in write read; do
    f=(); r=()
    for ((i = 0; i < reps; i++)); do
      r+=("$(iperf_gbps $il)")
      f+=("$(ferry_gbps $op $bytes $batch)")
    done
    fm=$(median "${f[@]}"); rm=$(median "${r[@]}")
    printf "%-6s %-6s %6s %11.2f %12.2f (%s) %6.2f\n" $op $block $batch "$fm" "$rm" $il "$(ratio "$fm" "$rm")"
  done
done

echo
printf "%-26s %9s %14s %6s\n" "64 B latency, p50" "ferry us" "ping-pong us" ratio
for mode in blocking polling; do
  flag=""; [ $mode = polling ] && flag="--polling"
  l=(); p=()
  for ((i = 0; i < reps; i++)); do
    # As long as the ferry run (~30 us a round trip), so both see the same machine state.
    p+=("$($bin/ferry-pingpong --size=64 --iterations=$((secs * 30000)) --json | last_json rtt_us_p50)")
    l+=("$($bin/ferry-bench --mode=loopback --protocol=tcp --block_size=64 --batch_size=1 --duration="$secs" $flag \
           --json 2>/dev/null | last_json batch_latency_us_p50)")
  done
  lm=$(median "${l[@]}"); pm=$(median "${p[@]}")
  printf "%-26s %9.1f %14.1f %6.2f\n" "sync write, $mode" "$lm" "$pm" "$(ratio "$lm" "$pm")"
done
