#!/usr/bin/env bash
# Paged KV transfers (submitPagedTransfer) against the same bytes moved as one contiguous
# request per layer, in alternating windows of the same run (ferry-bench --workload=kv):
# 64 layers x 512 pages of 16 KiB (and the same 512 MiB as 128 pages of 64 KiB), page
# local[i] paired with page remote[i] by two independent random permutations (a decode node
# pulling a prefill node's pages), as writes and reads, over tcp and shm.
# The memcpy and stream lines are the memory system's own price for scattering: the same pairs
# copied one by one in the engine's order (by source page) vs each layer in one copy, with
# glibc's memcpy and with the streaming copy the engine uses for large submits (ferry-bench
# --mode=memcpy --workload=kv; one thread).
#   bench/kv_paged.sh [seconds-per-run] [repeats]   (needs build/)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
reps=${2:-3}
bin=${FERRY_BIN:-build/bin}
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.3f}')" "$@"; }
fields() { python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); assert not j.get('error'), j['error']; print(j['throughput_GBps'], j['reference_GBps'], j['ratio'])"; }

cpu=$(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)
echo "# $(date -u +%Y-%m-%d) $(nproc) cores ($cpu); 64 layers, 512 MiB per call; median of $reps x ${secs}s runs (1 s windows)"
printf "%-7s %-6s %-6s %11s %15s %7s\n" proto op page "paged GB/s" "contiguous GB/s" ratio
for shape in "16384 512" "65536 128"; do
  read -r page pages <<<"$shape"
  for proto in tcp shm; do
    for op in write read; do
      g=(); r=(); q=()
      for ((i = 0; i < reps; i++)); do
        read -r a b c <<<"$($bin/ferry-bench --mode=loopback --protocol=$proto --workload=kv --operation=$op \
          --page_size=$page --pages=$pages --layers=64 --buffer_size=512M --duration="$secs" \
          --window_ms=1000 --json 2>/dev/null | fields)"
        g+=("$a"); r+=("$b"); q+=("$c")
      done
      printf "%-7s %-6s %-6s %11s %15s %7s\n" $proto $op $((page / 1024))K "$(median "${g[@]}")" "$(median "${r[@]}")" "$(median "${q[@]}")"
    done
  done
  m=(); st=()
  for ((i = 0; i < reps; i++)); do
    read -r a b <<<"$($bin/ferry-bench --mode=memcpy --workload=kv --page_size=$page --pages=$pages --layers=64 \
      --duration="$secs" --window_ms=500 --json |
      python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(j['ratio'], j['streaming_ratio'])")"
    m+=("$a"); st+=("$b")
  done
  printf "%-7s %-6s %-6s %43s\n" memcpy copy $((page / 1024))K "scattered / contiguous $(median "${m[@]}")"
  printf "%-7s %-6s %-6s %43s\n" stream copy $((page / 1024))K "scattered / contiguous $(median "${st[@]}")"
done
