#!/usr/bin/env bash
# What the cluster token costs: ferry-bench loopback (two processes) with and without
# FERRY_AUTH_TOKEN, over tcp and shm. These shared machines drift by tens of percent within a
# minute, so the runs come in pairs, back to back, their order alternating, and the figure is
# the median over pairs of (with token / without): adjacent runs see the same machine.
#   bench/auth_overhead.sh [seconds-per-run] [pairs]   (needs build/)
# The token is proven once per connection (one more round trip and two HMACs when a
# connection opens); nothing changes per request, so throughput should not move. The shm rows
# run as bench/shm_vs_memcpy.sh does (one thread, one copy worker, one core) and give the
# ratio to the memcpy reference timed in the same run, which cancels drift within a run too.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-2}
pairs=${2:-9}
bin=${FERRY_BIN:-build/bin}
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
token="bench token: $(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
field() { python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(j['$1'])"; }

prefix=()  # runs ferry-bench under this (taskset for the shm rows)
run() {  # with-token(0/1) field ferry-bench-args...
  local with=$1 what=$2
  shift 2
  local env=(env -u FERRY_AUTH_TOKEN)
  [ "$with" = 1 ] && env=(env "FERRY_AUTH_TOKEN=$token")
  "${env[@]}" "${prefix[@]}" $bin/ferry-bench --mode=loopback --duration="$secs" --json "$@" 2>/dev/null | field "$what"
}

row() {  # label field args...
  local label=$1 what=$2
  shift 2
  local none=() with=() ratios=() n w
  for ((i = 0; i < pairs; i++)); do
    if ((i % 2)); then
      w=$(run 1 "$what" "$@"); n=$(run 0 "$what" "$@")
    else
      n=$(run 0 "$what" "$@"); w=$(run 1 "$what" "$@")
    fi
    none+=("$n"); with+=("$w"); ratios+=("$(python3 -c "print($w / $n)")")
  done
  printf "%-34s %10.3f %10.3f %8.3f\n" "$label" "$(median "${none[@]}")" "$(median "${with[@]}")" \
    "$(median "${ratios[@]}")"
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, kernel $(uname -r); $pairs pairs of ${secs}s runs"
echo "# columns: medians of the runs; ratio: median over pairs of token / no token"
printf "%-34s %10s %10s %8s\n" "case" "no token" "token" "ratio"
row "tcp write 1M x16, GB/s" throughput_GBps --protocol=tcp --operation=write --block_size=1048576 --batch_size=16
row "tcp read 1M x16, GB/s" throughput_GBps --protocol=tcp --operation=read --block_size=1048576 --batch_size=16
row "tcp write 64K x128, GB/s" throughput_GBps --protocol=tcp --operation=write --block_size=65536 --batch_size=128
row "tcp 64 B sync write p50, us" batch_latency_us_p50 --protocol=tcp --block_size=64 --batch_size=1
prefix=(taskset -c 0)
shm=(--protocol=shm --block_size=1048576 --batch_size=64 --threads=1 --copy_threads=1 --buffer_size=65M
     --reference=memcpy)
row "shm write 1M x64, ratio to best copy" ratio "${shm[@]}" --operation=write
row "shm read 1M x64, ratio to best copy" ratio "${shm[@]}" --operation=read
