#!/usr/bin/env bash
# What the cluster token costs: ferry-bench loopback (two processes) with and without
# FERRY_AUTH_TOKEN, over tcp and shm, the two runs of each pair back to back and their order
# alternating, since these shared machines drift by tens of percent within a minute.
#   bench/auth_overhead.sh [seconds-per-run] [pairs]   (needs build/)
# The token is proven once per connection (one more round trip and two HMACs when a
# connection opens); nothing changes per request, so throughput should not move. The shm rows
# also show the memcpy reference of the same run (ferry-bench --reference=memcpy) and compare
# the ratios to it, which cancels the drift; the tcp rows compare medians of the raw rates.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
pairs=${2:-5}
bin=${FERRY_BIN:-build/bin}
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
token="bench token: $(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
field() { python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(j['$1'])"; }

run() {  # with-token(0/1) field ferry-bench-args...
  local with=$1 what=$2
  shift 2
  if [ "$with" = 1 ]; then
    FERRY_AUTH_TOKEN="$token" $bin/ferry-bench --mode=loopback --duration="$secs" --json "$@" 2>/dev/null | field "$what"
  else
    env -u FERRY_AUTH_TOKEN $bin/ferry-bench --mode=loopback --duration="$secs" --json "$@" 2>/dev/null | field "$what"
  fi
}

row() {  # label field args...
  local label=$1 what=$2
  shift 2
  local none=() with=()
  for ((i = 0; i < pairs; i++)); do
    if ((i % 2)); then
      with+=("$(run 1 "$what" "$@")"); none+=("$(run 0 "$what" "$@")")
    else
      none+=("$(run 0 "$what" "$@")"); with+=("$(run 1 "$what" "$@")")
    fi
  done
  local n w
  n=$(median "${none[@]}"); w=$(median "${with[@]}")
  printf "%-34s %12.3f %12.3f %8.3f\n" "$label" "$n" "$w" "$(python3 -c "print($w / $n)")"
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, kernel $(uname -r); median of $pairs pairs of ${secs}s runs"
printf "%-34s %12s %12s %8s\n" "case" "no token" "token" "ratio"
row "tcp write 1M x16, GB/s" throughput_GBps --protocol=tcp --operation=write --block_size=1048576 --batch_size=16
row "tcp read 1M x16, GB/s" throughput_GBps --protocol=tcp --operation=read --block_size=1048576 --batch_size=16
row "tcp write 64K x128, GB/s" throughput_GBps --protocol=tcp --operation=write --block_size=65536 --batch_size=128
row "tcp 64 B sync write p50, us" batch_latency_us_p50 --protocol=tcp --block_size=64 --batch_size=1
row "shm write 1M x16, ratio to memcpy" ratio --protocol=shm --operation=write --block_size=1048576 --batch_size=16 \
  --buffer_size=65M --reference=memcpy
row "shm read 1M x16, ratio to memcpy" ratio --protocol=shm --operation=read --block_size=1048576 --batch_size=16 \
  --buffer_size=65M --reference=memcpy
