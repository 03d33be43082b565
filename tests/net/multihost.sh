#!/usr/bin/env bash
# Three "hosts" as network namespaces this test creates, joined pairwise by veth links on
# their own private subnets: etcd runs in `meta`, a ferry-bench target in `a`, the initiator
# in `b`. The initiator finds the target by name through etcd (trying etcd's two addresses in
# turn, one per link) and moves verified data over the a<->b link. Nothing leaves the
# namespaces. Exit 77 (skipped, reason printed) when namespaces cannot be created here.
#   tests/net/multihost.sh BIN_DIR
set -uo pipefail
bin=${1:?usage: multihost.sh BIN_DIR}
tag=fy$$
meta=$tag-meta a=$tag-a b=$tag-b
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for ns in $meta $a $b; do ip netns del $ns 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

if ! err=$(ip netns add $meta 2>&1); then
  echo "SKIPPED: cannot create network namespaces here: $err"
  exit 77
fi
set -e
ip netns add $a
ip netns add $b
link() {  # link NS1 IP1 NS2 IP2 (a /24 of their own)
  ip link add $tag-$5 type veth peer name $tag-$6
  ip link set $tag-$5 netns $1
  ip link set $tag-$6 netns $3
  ip -n $1 addr add $2/24 dev $tag-$5
  ip -n $3 addr add $4/24 dev $tag-$6
  ip -n $1 link set $tag-$5 up
  ip -n $3 link set $tag-$6 up
}
for ns in $meta $a $b; do ip -n $ns link set lo up; done
link $meta 10.77.1.1 $a 10.77.1.2 ma am
link $meta 10.77.2.1 $b 10.77.2.2 mb bm
link $a 10.77.3.1 $b 10.77.3.2 ab ba

ip netns exec $meta etcd --name=m --data-dir=$tmp/etcd \
  --listen-client-urls=http://10.77.1.1:2379,http://10.77.2.1:2379 \
  --advertise-client-urls=http://10.77.1.1:2379 --listen-peer-urls=http://127.0.0.1:2380 \
  --initial-advertise-peer-urls=http://127.0.0.1:2380 --initial-cluster=m=http://127.0.0.1:2380 \
  --log-level=error >$tmp/etcd.log 2>&1 &
pids+=($!)
uri=etcd://10.77.1.1:2379,10.77.2.1:2379
for _ in $(seq 100); do ip netns exec $a bash -c "exec 3<>/dev/tcp/10.77.1.1/2379" 2>/dev/null && break; sleep 0.1; done

ip netns exec $a $bin/ferry-bench --mode=target --local_server_name=10.77.3.1:0 --buffer_size=16M \
  --metadata_server=$uri --segment_name=host-a >$tmp/target.out 2>$tmp/target.log &
pids+=($!)
for _ in $(seq 100); do grep -q '^SEGMENT' $tmp/target.out && break; sleep 0.1; done
grep -q '^SEGMENT host-a' $tmp/target.out || { echo "target did not start:"; cat $tmp/target.log; exit 1; }

out=$(ip netns exec $b $bin/ferry-bench --mode=initiator --segment_id=host-a --local_server_name=10.77.3.2 \
  --metadata_server=$uri --buffer_size=16M --block_size=65536 --batch_size=16 --duration=1 --verify --json 2>$tmp/init.log) || true
echo "$out" | tail -2
if ! echo "$out" | tail -1 | grep -q '"verified":true'; then
  echo "FAILED: no verified transfer between the namespaces"; cat $tmp/init.log | tail -5; exit 1
fi
# The initiator reached the target at its own address, not through loopback.
grep -q "10.77.3.1" $tmp/target.log && echo "target served on 10.77.3.1"
echo "multihost: 1 passed, 0 failed"
