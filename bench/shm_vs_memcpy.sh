#!/usr/bin/env bash
# Ferry's shm transport against plain memcpy, measured in the same run.
#   bench/shm_vs_memcpy.sh [seconds-per-run] [repeats]   (needs build/)
# ferry-bench --mode=loopback --protocol=shm (two processes; the target's buffer is a
# shared-memory file the initiator maps) vs ferry-bench --mode=memcpy (two buffers of one
# process), same block size, same thread count (bench threads = shm copy workers = memcpy
# threads) and the same cores: both run under `taskset` on the first N cores, so the shm side
# cannot win by using more CPUs than memcpy (a thread waiting for its batch copies too).
# 64 MiB per thread so the working set is larger than the last-level cache. Medians of
# interleaved runs (these machines drift minute to minute).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-2}
reps=${2:-3}
bin=build/bin
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

last_json() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
ratio() { python3 -c "import sys; print(float(sys.argv[1])/float(sys.argv[2]))" "$1" "$2"; }

shm() {  # op block batch threads -> GB/s; extra environment before the call
  taskset -c 0-$(($4 - 1)) $bin/ferry-bench --mode=loopback --protocol=shm --operation=$1 --block_size=$2 \
    --batch_size=$3 --threads=$4 --copy_threads=$4 --buffer_size=$(( (64 << 20) * $4 + (1 << 20) )) \
    --duration="$secs" --json 2>/dev/null | last_json throughput_GBps
}
caller_copies='{"transports": {"shm": {"inline_bytes": 1099511627776}}}'

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, kernel $(uname -r); median of $reps x ${secs}s runs"
echo "# async: default config (copy workers; a thread waiting for its batch copies too)"
echo "# caller: transports/shm/inline_bytes unlimited (submitTransfer copies, like UCX's mm)"
printf "%-6s %-6s %7s %11s %12s %12s %6s %6s\n" op block threads "async GB/s" "caller GB/s" "memcpy GB/s" async caller
for block in 1048576 4194304; do
  batch=$(( (64 << 20) / block ))
  for threads in 1 2; do
    for op in write read; do
      as=(); cs=(); ref=()
      for _ in $(seq "$reps"); do
        as+=("$(shm $op $block $batch $threads)")
        cs+=("$(FERRY_CONF="$caller_copies" shm $op $block $batch $threads)")
        ref+=("$(taskset -c 0-$((threads - 1)) $bin/ferry-bench --mode=memcpy --block_size=$block \
                 --batch_size=$batch --threads=$threads --duration="$secs" --json | last_json throughput_GBps)")
      done
      a=$(median "${as[@]}"); c=$(median "${cs[@]}"); r=$(median "${ref[@]}")
      printf "%-6s %-6s %7s %11.2f %12.2f %12.2f %6.2f %6.2f\n" $op $((block >> 20))M $threads "$a" "$c" "$r" \
        "$(ratio "$a" "$r")" "$(ratio "$c" "$r")"
    done
  done
done
