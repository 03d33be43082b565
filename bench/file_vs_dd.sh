#!/usr/bin/env bash
# Ferry's file segments against the same file I/O done directly, measured in the same run.
#   bench/file_vs_dd.sh [seconds-per-run] [repeats] [dir]   (needs build/)
# One 256 MiB file in [dir] (default build/bench-files, i.e. on the disk of the checkout).
#   ferry      ferry-bench --mode=initiator --segment_id=file://FILE: one engine, the file
#              opened as a segment, batches of 16 requests (io_uring keeps them in flight)
#   ferry-pread the same with transports/file/backend=pread (the fallback)
#   direct     ferry-bench --mode=fileio: plain pread/pwrite of the same blocks over the same
#              range, one at a time, O_DIRECT (what the file transport does per block)
#   dd         dd over the whole file with the same block size, O_DIRECT (sequential, QD 1)
# Ratios are ferry / direct. Medians of interleaved runs (these machines drift).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-2}
reps=${2:-3}
dir=${3:-build/bench-files}
bin=build/bin
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
mkdir -p "$dir"
file="$(cd "$dir" && pwd)/ferry-bench.dat"
trap 'rm -f "$file"' EXIT
dd if=/dev/urandom of="$file" bs=1M count=256 status=none conv=fsync

last_json() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
ratio() { python3 -c "import sys; print(float(sys.argv[1])/float(sys.argv[2]))" "$1" "$2"; }
# "N bytes (...) copied, S s, ..." -> GB/s
dd_gbps() { python3 -c "import re,sys; t=sys.stdin.read(); m=re.search(r'^(\d+) bytes.*copied, ([0-9.e-]+) s', t, re.M); print(int(m.group(1))/float(m.group(2))/1e9)"; }

ferry() {  # op block batch backend
  $bin/ferry-bench --mode=initiator --segment_id="file://$file" --operation=$1 --block_size=$2 \
    --batch_size=$3 --buffer_size=$(( $2 * $3 )) --file_backend=$4 --duration="$secs" --json 2>/dev/null |
    last_json throughput_GBps
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores, kernel $(uname -r), $(stat -f -c %T "$dir") under $dir; median of $reps x ${secs}s runs"
printf "%-6s %-6s %12s %12s %12s %10s %7s\n" op block "ferry GB/s" "f-pread GB/s" "direct GB/s" "dd GB/s" ratio
for block in 65536 1048576; do
  batch=16
  for op in write read; do
    fe=(); fp=(); di=(); dd_=()
    for _ in $(seq "$reps"); do
      fe+=("$(ferry $op $block $batch auto)")
      fp+=("$(ferry $op $block $batch pread)")
      di+=("$($bin/ferry-bench --mode=fileio --file="$file" --operation=$op --block_size=$block \
               --batch_size=$batch --duration="$secs" --json | last_json throughput_GBps)")
      if [ $op = write ]; then
        dd_+=("$(dd if=/dev/zero of="$file" bs=$block count=$(( (256 << 20) / block )) oflag=direct conv=notrunc 2>&1 | dd_gbps)")
      else
        dd_+=("$(dd if="$file" of=/dev/null bs=$block iflag=direct 2>&1 | dd_gbps)")
      fi
    done
    f=$(median "${fe[@]}"); p=$(median "${fp[@]}"); d=$(median "${di[@]}"); x=$(median "${dd_[@]}")
    label=$((block >> 10))K
    printf "%-6s %-6s %12.2f %12.2f %12.2f %10.2f %7.2f\n" $op $label "$f" "$p" "$d" "$x" "$(ratio "$f" "$d")"
  done
done
