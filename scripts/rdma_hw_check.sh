#!/usr/bin/env bash
# The rdma transport on real NICs, for a machine that has them (CI has none: it runs the
# transport over the verbs emulation in tests/rdma and this script exits 77, saying why).
#   scripts/rdma_hw_check.sh [device] [seconds]     (needs build/; perftest for the reference)
# 1. ferry-info --transports: the NICs Ferry sees, the GID it chose (and by which rule), MTU,
#    NUMA node, speed.
# 2. ferry-bench --protocol=rdma between two processes through the NIC (loopback), write and
#    read, 1 MiB and 64 KiB blocks, every byte verified.
# 3. With perftest's ib_write_bw / ib_read_bw on the same device: the ratios, against the bars
#    (>= 0.90 at 1 MiB, >= 0.80 at 64 KiB).
# It ends with the list of what it could not check here.
set -uo pipefail
cd "$(dirname "$0")/.."
dev=${1:-}
secs=${2:-5}
bin=build/bin
[ -x $bin/ferry-bench ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
if [ -z "$(ls /sys/class/infiniband 2>/dev/null)" ]; then
  echo "rdma_hw_check: skipped: no RDMA device (/sys/class/infiniband is empty or missing)"
  exit 77
fi
[ -z "$dev" ] && dev=$(ls /sys/class/infiniband | head -1)
export FERRY_CONF="{\"transports\": {\"rdma\": {\"devices\": \"$dev\"}}}"

echo "== what Ferry sees"
info=$($bin/ferry-info --transports) || exit 1
echo "$info"
# perftest on RoCE needs the GID index Ferry chose (its default, 0, is often link-local).
gid_flag=$(python3 -c "
import json, sys
d = [x for x in json.loads(sys.argv[1]).get('rdma', {}).get('devices', []) if x['name'] == sys.argv[2]]
print(f\"-x {d[0]['gid_index']}\" if d and d[0]['link'] == 'ethernet' else '')" "$info" "$dev")

ferry_gbps() {  # op block batch
  $bin/ferry-bench --mode=loopback --protocol=rdma --operation=$1 --block_size=$2 --batch_size=$3 \
    --buffer_size=1G --duration="$secs" --verify --json 2>/dev/null | tail -1 |
    python3 -c "import json,sys; j=json.load(sys.stdin); print(j['throughput_GBps'] if j.get('verified') else 'unverified')"
}
perf_gbps() {  # tool block -> GB/s
  command -v "$1" >/dev/null || { echo "-"; return; }
  local port=$((20000 + RANDOM % 20000))
  "$1" -d "$dev" $gid_flag -s "$2" -D "$secs" -p $port >/dev/null 2>&1 &
  local spid=$!
  sleep 1
  "$1" -d "$dev" $gid_flag -s "$2" -D "$secs" -p $port localhost 2>/dev/null |
    awk -v s="$2" '$1 == s { print $4 / 1000 * 1.048576 }' | tail -1  # MB/sec (2^20) -> GB/s
  wait $spid 2>/dev/null
}

echo
printf "%-6s %-6s %10s %12s %7s %5s\n" op block "ferry GB/s" "perftest" ratio bar
fails=0
for shape in "1048576 16 0.90" "65536 128 0.80"; do
  read -r block batch bar <<<"$shape"
  for op in write read; do
    f=$(ferry_gbps $op $block $batch)
    tool=ib_write_bw; [ $op = read ] && tool=ib_read_bw
    p=$(perf_gbps $tool $block)
    r=$(python3 -c "import sys; f,p=sys.argv[1:]; print(f'{float(f)/float(p):.2f}' if p not in ('-','') and f != 'unverified' else '-')" "$f" "$p")
    mark=""
    [ "$r" != "-" ] && mark=$(python3 -c "import sys; print('ok' if float(sys.argv[1]) >= float(sys.argv[2]) else 'BELOW')" "$r" "$bar")
    [ "$f" = unverified ] && { mark="FAILED"; fails=$((fails + 1)); }
    [ "$mark" = BELOW ] && fails=$((fails + 1))
    printf "%-6s %-6s %10s %12s %7s %5s %s\n" $op $((block >> 10))K "$f" "$p" "$r" ">=$bar" "$mark"
  done
done

echo
echo "not checked here (needs more than one host or a special setup):"
echo "  - two hosts through a switch (routing, RoCE GID/traffic class, real retry timing): run"
echo "    ferry-bench --mode=target on one and --mode=initiator --protocol=rdma on the other"
echo "  - several NICs at once (aggregate bandwidth; pass no device and set transports/rdma/devices)"
echo "  - port flaps (async events), QP-count scaling, hugepage and GPU (GPUDirect) memory, ODP"
[ "$(command -v ib_write_bw)" ] || echo "  - the perftest reference: apt-get install perftest"
exit $((fails > 0))
