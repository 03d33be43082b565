#!/usr/bin/env bash
# Multi-rail TCP between two "hosts" (network namespaces this test creates) joined by two
# veth pairs, each on its own subnet: a ferry-bench target in `a` and an initiator in `b`,
# both with transports/tcp/rails set to their two addresses. Checks, from the interfaces'
# own byte counters: (1) writes and reads use both rails, within 10 % of each other;
# (2) a rail taken down mid-transfer fails over to the other with every batch completed
# and every byte verified. Nothing leaves the namespaces. Exit 77 (skipped, reason
# printed) when namespaces cannot be created here.
#   tests/net/multirail.sh BIN_DIR
set -uo pipefail
bin=${1:?usage: multirail.sh BIN_DIR}
tag=fr$$
a=$tag-a b=$tag-b
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for ns in $a $b; do ip netns del $ns 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

if ! err=$(ip netns add $a 2>&1); then
  echo "SKIPPED: cannot create network namespaces here: $err"
  exit 77
fi
set -e
ip netns add $b
for ns in $a $b; do ip -n $ns link set lo up; done
for r in 1 2; do
  ip link add $tag-a$r type veth peer name $tag-b$r
  ip link set $tag-a$r netns $a
  ip link set $tag-b$r netns $b
  ip -n $a addr add 10.78.$r.1/24 dev $tag-a$r
  ip -n $b addr add 10.78.$r.2/24 dev $tag-b$r
  ip -n $a link set $tag-a$r up
  ip -n $b link set $tag-b$r up
done
conf() {  # conf RAILS: the engine's config
  echo "{\"transports\":{\"tcp\":{\"rails\":\"$1\",\"liveness_timeout_ms\":1500}},\"transfer_timeout_ms\":20000}"
}
# Two targets: reads verify the target's own pattern, which writes would overwrite.
for op in write read; do
  FERRY_CONF=$(conf 10.78.1.1,10.78.2.1) ip netns exec $a $bin/ferry-bench --mode=target \
    --local_server_name=0.0.0.0:0 --buffer_size=64M >$tmp/target-$op.out 2>$tmp/target-$op.log &
  pids+=($!)
  for _ in $(seq 100); do grep -qs '^SEGMENT' $tmp/target-$op.out && break; sleep 0.1; done
  grep -q '^SEGMENT' $tmp/target-$op.out || { echo "target did not start:"; cat $tmp/target-$op.log; exit 1; }
done
set +e

rail_bytes() {  # rail_bytes DIRECTION: bytes each of b's rails carried (tx for writes, rx for reads)
  echo "$(ip netns exec $b cat /sys/class/net/$tag-b1/statistics/$1) $(ip netns exec $b cat /sys/class/net/$tag-b2/statistics/$1)"
}
initiator() {  # initiator OP SECONDS
  # The namespaces share /dev/shm and the machine id: pin tcp, or shm would carry it.
  FERRY_CONF=$(conf 10.78.1.2,10.78.2.2) ip netns exec $b $bin/ferry-bench --mode=initiator --protocol=tcp \
    --segment_id=$(sed -n 's/^SEGMENT //p' $tmp/target-$1.out) --local_server_name=10.78.1.2 --operation=$1 --block_size=1M --batch_size=16 --buffer_size=64M \
    --duration=$2 --verify --json 2>>$tmp/init.log
}
passed=0 failed=0
check() {  # check NAME CONDITION-EXIT-STATUS DETAIL
  if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok: $1 ($3)"; else failed=$((failed + 1)); echo "FAILED: $1 ($3)"; fi
}
within10() { python3 -c "import sys; x,y=map(float,sys.argv[1:]); sys.exit(0 if max(x,y)>0 and abs(x-y)/max(x,y)<=0.10 else 1)" "$1" "$2"; }

# 1. Both rails carry the transfer, evenly.
for op in write read; do
  dir=tx_bytes; [ $op = read ] && dir=rx_bytes
  read -r b1 b2 <<<"$(rail_bytes $dir)"
  out=$(initiator $op 2)
  read -r e1 e2 <<<"$(rail_bytes $dir)"
  d1=$((e1 - b1)) d2=$((e2 - b2))
  echo "$out" | tail -1 | grep -q '"verified":true'
  check "$op verified over two rails" $? "$(echo "$out" | sed -n 's/^moved //p')"
  within10 $d1 $d2
  check "$op bytes per rail within 10 %" $? "rail 1: $d1 B, rail 2: $d2 B"
done

# 2. A rail taken down mid-transfer: the other carries on, no batch fails, bytes verified.
# Writes lose the far end (the target's NIC: nothing is acknowledged any more, reconnects
# hang until they time out), reads the near end (our NIC: sends fail at once).
for op in write read; do
  dir=tx_bytes; [ $op = read ] && dir=rx_bytes
  cut_ns=$a cut_dev=$tag-a1
  [ $op = read ] && cut_ns=$b cut_dev=$tag-b1
  initiator $op 6 >$tmp/$op.out &
  ipid=$!
  sleep 2
  ip -n $cut_ns link set $cut_dev down
  read -r m1 m2 <<<"$(rail_bytes $dir)"
  wait $ipid
  rc=$?
  read -r e1 e2 <<<"$(rail_bytes $dir)"
  ip -n $cut_ns link set $cut_dev up
  tail -1 $tmp/$op.out | grep -q '"verified":true' && [ $rc = 0 ]
  check "$op survives rail 1 going down ($cut_dev)" $? "exit $rc; $(sed -n 's/^moved //p' $tmp/$op.out)$(grep -m1 '^error' $tmp/$op.out)"
  [ $((e2 - m2)) -gt $((64 << 20)) ]
  check "$op carried on over rail 2" $? "rail 2 after the cut: $((e2 - m2)) B, rail 1: $((e1 - m1)) B"
  sleep 1  # the rail is back: the next run starts with both
done
grep -m2 "re-posted" $tmp/init.log
echo "multirail: $passed passed, $failed failed"
[ $failed = 0 ]
