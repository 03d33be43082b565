#!/usr/bin/env bash
# Ferry's TCP transport against iperf3 on loopback, measured in the same run.
#   bench/tcp_vs_iperf.sh [seconds-per-case]     (needs a build in build/; iperf3)
# Throughput: ferry-bench --mode=loopback (two processes) vs iperf3 one stream with
# -l = block size (at most 1 MiB). Latency: a synchronous 64 B ferry write (batch of 1)
# vs a plain TCP 64 B ping-pong (ferry-pingpong), blocking and polling modes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
bin=build/bin
command -v iperf3 >/dev/null || { echo "iperf3 missing: run scripts/setup.sh" >&2; exit 1; }
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

json_field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }

iperf_gbps() {  # $1 = write size
  local port=$((20000 + RANDOM % 20000))
  iperf3 -s -1 -B 127.0.0.1 -p $port >/dev/null 2>&1 &
  local spid=$!
  sleep 0.3
  iperf3 -c 127.0.0.1 -p $port -l "$1" -t "$secs" -J 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)['end']['sum_received']['bits_per_second']/8e9)"
  wait $spid 2>/dev/null || true
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, $(uname -r); ${secs}s per case"
printf "%-6s %-8s %6s %12s %12s %7s\n" op block batch "ferry GB/s" "iperf3 GB/s" ratio
for block in 64K 1M 4M; do
  case $block in 64K) bytes=65536; batch=128; il=64K;; 1M) bytes=1048576; batch=16; il=1M;; 4M) bytes=4194304; batch=4; il=1M;; esac
  ref=$(iperf_gbps $il)
  for op in write read; do
    got=$($bin/ferry-bench --mode=loopback --operation=$op --block_size=$bytes --batch_size=$batch \
          --duration="$secs" --json 2>/dev/null | json_field throughput_GBps)
    printf "%-6s %-8s %6s %12.3f %12.3f %7.2f\n" $op $block $batch "$got" "$ref" \
      "$(python3 -c "print($got/$ref)")"
  done
done

echo
ping=$($bin/ferry-pingpong --size=64 --iterations=20000 --json | json_field rtt_us_p50)
printf "%-34s %10s %14s %7s\n" "64 B latency (p50)" "ferry us" "ping-pong us" ratio
for mode in blocking polling; do
  flag=""; [ $mode = polling ] && flag="--polling"
  lat=$($bin/ferry-bench --mode=loopback --block_size=64 --batch_size=1 --duration="$secs" $flag --json \
        2>/dev/null | json_field batch_latency_us_p50)
  printf "%-34s %10.1f %14.1f %7.2f\n" "sync write, $mode" "$lat" "$ping" "$(python3 -c "print($lat/$ping)")"
done
