#!/usr/bin/env bash
# What end-to-end checksums cost: ferry-bench loopback throughput with Request::checksum off
# and on, interleaved (off, on, off, on, ...) on the same machine in the same minute, over
# tcp and shm, writes and reads, at 1 MiB and 64 KiB blocks. The ratio on/off is the result.
#   bench/checksum.sh [seconds-per-run] [repeats] [batch size]      (needs build/)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-2}
reps=${2:-3}
batch=${3:-16}
bin=${FERRY_BIN:-build/bin}
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

run() {  # protocol operation block checksum -> GB/s
  $bin/ferry-bench --mode=loopback --protocol=$1 --operation=$2 --block_size=$3 --batch_size=$batch \
    --duration="$secs" --checksum=$4 --json 2>/dev/null |
    python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); assert not j['error'], j['error']; print(j['throughput_GBps'])"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.2f}')" "$@"; }

cpu=$(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)
echo "# $(date -u +%Y-%m-%d) $(nproc) cores ($cpu); batch $batch; median of $reps x ${secs}s runs, off and on interleaved"
printf "%-5s %-6s %6s %9s %9s %7s\n" proto op block "off GB/s" "on GB/s" "on/off"
for proto in tcp shm; do
  for op in write read; do
    for block in 1M 64K; do
      off="" on=""
      for ((i = 0; i < reps; i++)); do
        off+=" $(run $proto $op $block false)"
        on+=" $(run $proto $op $block true)"
      done
      o=$(median $off) c=$(median $on)
      printf "%-5s %-6s %6s %9s %9s %7s\n" $proto $op $block "$o" "$c" "$(python3 -c "print(f'{$c / $o:.2f}')")"
    done
  done
done
