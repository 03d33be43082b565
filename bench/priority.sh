#!/usr/bin/env bash
# Priority classes over TCP on loopback: the latency of a synchronous 4 KiB HIGH write while
# 1 GiB bulk write batches keep the same peer's connections busy, with the bulk in a lower
# class (LOW: the 4 KiB write overtakes what is queued) vs in the same class (HIGH: first in,
# first out, which is what every request got before priority classes existed). Both runs
# are interleaved, same machine, same minute; the ratio of the p99s is the result.
#   bench/priority.sh [seconds-per-run] [repeats] [protocol] [tcp connections per peer]
# (needs build/; connections 0 = the engine's default). With several connections the
# same-class figure also depends on how unevenly the bulk drains from them (a connection
# that finishes its share early carries small writes at once), so both are worth a look.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
reps=${2:-3}
proto=${3:-tcp}
conns=${4:-0}
bin=${FERRY_BIN:-build/bin}
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

run() {  # background class -> "p50 p99 p99.9 max writes background_GBps"
  $bin/ferry-bench --mode=loopback --protocol=$proto --operation=write --block_size=4096 --batch_size=1 \
    --buffer_size=256M --duration="$secs" --background_bytes=1G --background_priority=$1 --connections=$conns --json 2>/dev/null |
    python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); assert not j['error'], j['error']; print(*(j[k] for k in ('batch_latency_us_p50', 'batch_latency_us_p99', 'batch_latency_us_p999', 'batch_latency_us_max', 'batches', 'background_GBps')))"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.1f}')" "$@"; }

cpu=$(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)
echo "# $(date -u +%Y-%m-%d) $(nproc) cores ($cpu); $proto, connections per peer ${conns/#0/default}; median of $reps x ${secs}s runs"
echo "# a synchronous 4 KiB HIGH write while 1 GiB bulk write batches run to the same peer; latencies in us"
declare -A p50 p99 p999 mx n bg
for ((i = 0; i < reps; i++)); do
  for cls in low high; do
    read -r a b c d e g <<<"$(run $cls)"
    p50[$cls]+=" $a"; p99[$cls]+=" $b"; p999[$cls]+=" $c"; mx[$cls]+=" $d"; n[$cls]+=" $e"; bg[$cls]+=" $g"
  done
done
printf "%-11s %9s %9s %9s %9s %8s %10s\n" "bulk class" p50 p99 p99.9 max writes "bulk GB/s"
for cls in low high; do
  printf "%-11s %9s %9s %9s %9s %8s %10s\n" "$cls" "$(median ${p50[$cls]})" "$(median ${p99[$cls]})" \
    "$(median ${p999[$cls]})" "$(median ${mx[$cls]})" "$(median ${n[$cls]})" "$(median ${bg[$cls]})"
done
python3 -c "import sys; a,b,c,d=map(float,sys.argv[1:]); print(f'with LOW bulk / with same-class bulk: p99 {a/b:.3f}, p99.9 {c/d:.3f}')" \
  "$(median ${p99[low]})" "$(median ${p99[high]})" "$(median ${p999[low]})" "$(median ${p999[high]})"
