#!/usr/bin/env bash
# The GPU check (issue 15): Ferry's GPU paths on real hardware, each against a baseline
# measured in the same run, one JSON line per step and PASS/FAIL at the end.
#   bash scripts/gpu_check.sh [seconds-per-step]     (after scripts/build.sh; ~2 min)
# Exits 77 (skipped, saying why) where there is no NVIDIA GPU, 1 when a bar is missed.
# Steps (both processes on GPU 0):
#   probe     ferry-info --gpu: driver, devices
#   baseline  the driver's own copies: device to device, host to device, device to host
#             (ferry-info --gpu_copy), and that probing host memory made no context current
#   nvlink    ferry-bench GPU -> GPU over CUDA IPC, 4 MiB x 16, write and read, verified:
#             >= 0.85x the device-to-device copy
#   host2gpu  host -> GPU over nvlink: >= 0.85x the driver's host-to-device copy
#   latency   4 KiB synchronous GPU -> GPU write, p50 <= 30 us
#   tcp       GPU -> GPU and GPU -> host over tcp (staged), vs host -> host tcp in the same
#             run: >= 0.7x
#   on_cuda   python3 examples/on_cuda.py when torch is importable: stream ordering, 0 mismatches
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
bin=${FERRY_BIN:-build/bin}
[ -x "$bin/ferry-bench" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

gpu=$("$bin/ferry-info" --gpu 2>/dev/null)
echo "{\"step\":\"probe\",\"result\":$(echo "$gpu" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')}"
if ! echo "$gpu" | grep -q '"available": true'; then
  echo "gpu_check: skipped: $(echo "$gpu" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("why","?"))')" >&2
  exit 77
fi

failed=0
bar() {  # name value op limit
  if python3 -c "import sys; v,l=float(sys.argv[1]),float(sys.argv[3]); sys.exit(0 if (v>=l if sys.argv[2]=='>=' else v<=l) else 1)" "$2" "$3" "$4"; then
    echo "{\"step\":\"$1\",\"value\":$2,\"bar\":\"$3 $4\",\"pass\":true}"
  else
    echo "{\"step\":\"$1\",\"value\":$2,\"bar\":\"$3 $4\",\"pass\":false}"
    failed=1
  fi
}
field() { python3 -c "import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(j$1)"; }
bench() {  # extra flags...; prints the JSON line (throughput, latency, verified)
  "$bin/ferry-bench" --mode=loopback --duration="$secs" --buffer_size=256M --json "$@" 2>/dev/null | tail -1
}

base=$("$bin/ferry-info" --gpu_copy="$secs") || { echo "gpu_check: baselines failed" >&2; exit 1; }
echo "{\"step\":\"baseline\",\"result\":$base}"
d2d=$(echo "$base" | field '["d2d_GBps"]')
h2d=$(echo "$base" | field '["h2d_GBps"]')
[ "$(echo "$base" | field '["context_after_host_probe"]')" = "False" ] || { echo '{"step":"no_context_on_host_probe","pass":false}'; failed=1; }

for op in write read; do
  out=$(bench --protocol=nvlink --location=cuda:0 --target_location=cuda:0 --operation=$op \
    --block_size=4M --batch_size=16 --verify)
  echo "{\"step\":\"nvlink_$op\",\"result\":$out}"
  [ "$(echo "$out" | field '["verified"]')" = "True" ] || failed=1
  bar "nvlink_${op}_vs_d2d" "$(python3 -c "print($(echo "$out" | field '["throughput_GBps"]') / $d2d)")" ">=" 0.85
done
out=$(bench --protocol=nvlink --location=cpu:0 --target_location=cuda:0 --operation=write --block_size=4M --batch_size=16 --verify)
echo "{\"step\":\"host2gpu\",\"result\":$out}"
bar "host2gpu_vs_h2d" "$(python3 -c "print($(echo "$out" | field '["throughput_GBps"]') / $h2d)")" ">=" 0.85

out=$(bench --protocol=nvlink --location=cuda:0 --target_location=cuda:0 --operation=write --block_size=4096 --batch_size=1)
echo "{\"step\":\"latency\",\"result\":$out}"
bar "gpu_write_4k_p50_us" "$(echo "$out" | field '["batch_latency_us_p50"]')" "<=" 30

host_tcp=$(bench --protocol=tcp --operation=write --block_size=4M --batch_size=4 | field '["throughput_GBps"]')
for where in cuda:0 cpu:0; do
  out=$(bench --protocol=tcp --location=cuda:0 --target_location=$where --operation=write --block_size=4M --batch_size=4 --verify)
  echo "{\"step\":\"tcp_gpu_to_${where/:/}\",\"host_tcp_GBps\":$host_tcp,\"result\":$out}"
  bar "tcp_gpu_to_${where/:/}_vs_host_tcp" "$(python3 -c "print($(echo "$out" | field '["throughput_GBps"]') / $host_tcp)")" ">=" 0.7
done

if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  out=$(PYTHONPATH=build/python python3 examples/on_cuda.py 2>&1 | tail -1)
  echo "{\"step\":\"on_cuda\",\"result\":$out}"
  [ "$(echo "$out" | field '["mismatches"]')" = "0" ] || failed=1
else
  echo '{"step":"on_cuda","skipped":"torch with CUDA is not importable here"}'
fi

if [ $failed = 0 ]; then echo "gpu_check: PASS"; else echo "gpu_check: FAIL"; exit 1; fi
