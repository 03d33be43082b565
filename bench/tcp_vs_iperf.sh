#!/usr/bin/env bash
# Ferry's TCP transport on loopback against two references measured in the same run:
#  - a raw TCP stream between the same two processes over the same memory (ferry-bench
#    --reference=tcp: blocking 1 MiB sends/receives walking the transfer's working set, on one
#    connection and on two, timed in windows alternating with the transfer's); the ratio is
#    to the better of the two;
#  - iperf3, one stream, -l 1M (or 64K), which reuses one cache-hot buffer.
# Latency: a synchronous 64 B ferry write (batch of 1) vs a plain TCP 64 B ping-pong between
# two processes (ferry-pingpong), blocking and polling.
#   bench/tcp_vs_iperf.sh [seconds-per-run] [repeats]   (needs build/ and iperf3)
# Each figure is the median of `repeats` runs; iperf3 runs are interleaved with ferry's,
# since these shared machines drift by tens of percent from one minute to the next. A run
# with --reference splits its time in three (transfer, one stream, two streams).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
reps=${2:-3}
bin=${FERRY_BIN:-build/bin}  # another build: FERRY_BIN=/path/to/bin (before/after comparisons)
command -v iperf3 >/dev/null || { echo "iperf3 missing: run scripts/setup.sh" >&2; exit 1; }
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

json_field() { python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); v=j$1; print(v)"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
ratio() { python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'{a/b:.2f}' if b > 0 else 'n/a')" "$1" "$2"; }
mark() { python3 -c "import sys; r,bar=sys.argv[1:]; print('' if r == 'n/a' else ('ok' if float(r) >= float(bar) else 'BELOW'))" "$1" "$2"; }

iperf_gbps() {  # $1 = write size; a try whose server was not up yet (or whose random port
  # was taken) is tried again on another port
  local try port spid out
  for try in 1 2 3; do
    port=$((20000 + RANDOM % 20000))
    iperf3 -s -1 -B 127.0.0.1 -p $port >/dev/null 2>&1 &
    spid=$!
    sleep 0.3
    out=$(iperf3 -c 127.0.0.1 -p $port -l "$1" -t "$((secs > 1 ? secs - 1 : 1))" -J 2>/dev/null |
      python3 -c "import json,sys; print(json.load(sys.stdin)['end']['sum_received']['bits_per_second']/8e9)" 2>/dev/null) || true
    kill $spid 2>/dev/null || true
    wait $spid 2>/dev/null || true
    [ -n "$out" ] && { echo "$out"; return; }
  done
  echo "iperf3 -l $1 failed three times" >&2
  exit 1
}

# One ferry run with the raw TCP reference: "ferry x1 x2" in GB/s.
ferry_vs_raw() {  # op block batch threads
  $bin/ferry-bench --mode=loopback --protocol=tcp --operation=$1 --block_size=$2 --batch_size=$3 --threads=$4 \
    --buffer_size=512M --duration="$secs" --reference=tcp --json 2>/dev/null |
    python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); r=j['references']; print(j['throughput_GBps'], r['tcp x1'], r['tcp x2'])"
}

cpu=$(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)
echo "# $(date -u +%Y-%m-%d) $(nproc) cores ($cpu), kernel $(uname -r); median of $reps x ${secs}s runs"
echo "# raw: a plain TCP stream between the same processes over the same memory (x1: one connection, x2: two);"
echo "# bars: >= 0.90x the better raw stream; >= 1.0x iperf3 -l 1M at 1 MiB, batch 4/16, one thread; >= 1.5x iperf3 -l 64K at 64 KiB"
printf "%-5s %-5s %5s %3s %8s %7s %7s %9s %9s %10s\n" op block batch thr "ferry" "raw x1" "raw x2" "vs raw" "iperf3" "vs iperf3"
shapes=()
for b in 4 16 64; do for t in 1 2; do shapes+=("1048576 $b $t"); done; done
shapes+=("65536 128 1" "4194304 4 1")
for shape in "${shapes[@]}"; do
  read -r block batch threads <<<"$shape"
  il=""
  [ $block = 65536 ] && il=64K
  [ $block = 1048576 ] && [ $threads = 1 ] && [ $batch != 64 ] && il=1M
  for op in write read; do
    f=(); x1=(); x2=(); ip=()
    for ((i = 0; i < reps; i++)); do
      read -r a b c <<<"$(ferry_vs_raw $op $block $batch $threads)"
      f+=("$a"); x1+=("$b"); x2+=("$c")
      [ -n "$il" ] && ip+=("$(iperf_gbps $il)")
    done
    fm=$(median "${f[@]}"); m1=$(median "${x1[@]}"); m2=$(median "${x2[@]}")
    best=$(python3 -c "import sys; print(max(map(float, sys.argv[1:])))" "$m1" "$m2")
    vr=$(ratio "$fm" "$best")
    im="-"; vi="-"
    if [ -n "$il" ]; then
      im=$(median "${ip[@]}"); vi=$(ratio "$fm" "$im")
      bar=1.0; [ $il = 64K ] && bar=1.5
      vi="$vi $(mark "$vi" $bar)"
      im=$(printf "%.2f(%s)" "$im" $il)
    fi
    rbar=0.9; [ $block != 1048576 ] && rbar=0  # the raw-stream bar is for 1 MiB blocks
    printf "%-5s %-5s %5s %3s %8.2f %7.2f %7.2f %9s %9s %10s\n" $op $((block >> 10))K $batch $threads "$fm" "$m1" "$m2" \
      "$vr$( [ $rbar != 0 ] && echo " $(mark "$vr" $rbar)")" "$im" "$vi"
  done
done

echo
printf "%-26s %9s %14s %6s %5s\n" "64 B latency, p50" "ferry us" "ping-pong us" ratio bar
for mode in blocking polling; do
  flag=""; [ $mode = polling ] && flag="--polling"
  l=(); p=()
  for ((i = 0; i < reps; i++)); do
    # As long as the ferry run (~30 us a round trip), so both see the same machine state.
    p+=("$($bin/ferry-pingpong --size=64 --iterations=$((secs * 30000)) --json | json_field "['rtt_us_p50']")")
    l+=("$($bin/ferry-bench --mode=loopback --protocol=tcp --block_size=64 --batch_size=1 --duration="$secs" $flag \
           --json 2>/dev/null | json_field "['batch_latency_us_p50']")")
  done
  lm=$(median "${l[@]}"); pm=$(median "${p[@]}")
  bar=1.5; [ $mode = polling ] && bar=1.0
  r=$(ratio "$lm" "$pm")
  printf "%-26s %9.1f %14.1f %6s %5s %s\n" "sync write, $mode" "$lm" "$pm" "$r" "<=$bar" \
    "$(python3 -c "import sys; print('ok' if float(sys.argv[1]) <= float(sys.argv[2]) else 'ABOVE')" "$r" $bar)"
done
