#!/usr/bin/env bash
# Ferry's shm transport against plain memcpy, measured in the same run.
#   bench/shm_vs_memcpy.sh [seconds-per-run] [repeats]   (needs build/)
# ferry-bench --mode=loopback --protocol=shm (two processes; the target's buffer is a
# shared-memory file the initiator maps) with --reference=memcpy: the initiator alternates
# 200 ms windows of transfers with windows of plain memcpy and of a streaming copy (stores
# that bypass the cache, as Ferry's copies of large submits) of the same blocks (same local
# buffer, a private one of the same size on the other side, same threads), and reports the
# rates and the ratio to the better copy, after one untimed window of each (the peer's pages are mapped into
# the initiator on first access; the reference's buffer is touched when zero-filled). This
# machine's memory bandwidth drifts by tens of percent within a minute; adjacent windows see
# the same drift, separate runs do not. Same thread count (bench
# threads = shm copy workers = memcpy threads) and the same cores: everything runs under
# `taskset` on the first N cores, so shm cannot win by using more CPUs than memcpy.
# 64 MiB per thread so the working set is larger than the last-level cache. Columns are
# medians over the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
reps=${2:-5}
bin=${FERRY_BIN:-build/bin}  # another build: FERRY_BIN=/path/to/bin (before/after comparisons)
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

shm() {  # op block batch threads -> "shm_GBps memcpy_GBps streaming_GBps ratio_to_the_better"; environment before the call
  taskset -c 0-$(($4 - 1)) $bin/ferry-bench --mode=loopback --protocol=shm --operation=$1 --block_size=$2 \
    --batch_size=$3 --threads=$4 --copy_threads=$4 --buffer_size=$(( (64 << 20) * $4 + (1 << 20) )) \
    --duration="$secs" --reference=memcpy --json 2>/dev/null |
    python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); r=j['references']; print(j['throughput_GBps'], r['memcpy'], r['streaming copy'], j['ratio'])"
}
caller_copies='{"transports": {"shm": {"inline_bytes": 1099511627776}}}'

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, kernel $(uname -r); median of $reps runs of ${secs}s each"
echo "# async: default config (copy workers; a thread waiting for its batch copies its own slices)"
echo "# caller: transports/shm/inline_bytes unlimited (submitTransfer copies, like UCX's mm)"
echo "# memcpy, streaming: the same blocks copied in windows alternating with the transfer's, by glibc's"
echo "# memcpy and by the cache-bypassing copy Ferry uses for large submits; ratios to the better, per run"
printf "%-6s %-6s %7s %11s %12s %12s %15s %6s %6s\n" op block threads "async GB/s" "caller GB/s" "memcpy GB/s" \
  "streaming GB/s" async caller
for block in 1048576 4194304; do
  batch=$(( (64 << 20) / block ))
  for threads in 1 2; do
    for op in write read; do
      as=(); cs=(); ref=(); sref=(); ar=(); cr=()
      for _ in $(seq "$reps"); do
        read -r a r t q <<<"$(shm $op $block $batch $threads)"
        as+=("$a"); ref+=("$r"); sref+=("$t"); ar+=("$q")
        read -r a r t q <<<"$(FERRY_CONF="$caller_copies" shm $op $block $batch $threads)"
        cs+=("$a"); ref+=("$r"); sref+=("$t"); cr+=("$q")
      done
      printf "%-6s %-6s %7s %11.2f %12.2f %12.2f %15.2f %6.2f %6.2f\n" $op $((block >> 20))M $threads \
        "$(median "${as[@]}")" "$(median "${cs[@]}")" "$(median "${ref[@]}")" "$(median "${sref[@]}")" \
        "$(median "${ar[@]}")" "$(median "${cr[@]}")"
    done
  done
done
