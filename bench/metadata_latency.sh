#!/usr/bin/env bash
# openSegment and descriptor-refresh latency per metadata backend (p2p, HTTP, etcd, Redis),
# each against a real server on 127.0.0.1 and a ferry-bench target publishing to it.
#   bench/metadata_latency.sh [iterations] [other bin dir]   (needs build/, etcd-server, redis-server)
# With another build's bin directory (e.g. an older commit built elsewhere), both builds are
# measured against the same servers, backend by backend, and labelled by directory.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
bins=(build/bin)
[ -n "${2:-}" ] && bins+=("$2")
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

start_backend() {  # $1 kind -> sets $uri; runs in this shell so $pids is kept for cleanup
  local port; port=$(free_port)
  case $1 in
    p2p) uri="P2PHANDSHAKE"; return ;;
    http) ${bins[0]}/ferry-metadata --host=127.0.0.1 --port=$port >/dev/null 2>&1 & pids+=($!)
          wait_port $port; uri="http://127.0.0.1:$port/metadata" ;;
    etcd) local peer; peer=$(free_port)
          etcd --name=b --data-dir=$tmp/etcd --listen-client-urls=http://127.0.0.1:$port \
            --advertise-client-urls=http://127.0.0.1:$port --listen-peer-urls=http://127.0.0.1:$peer \
            --initial-advertise-peer-urls=http://127.0.0.1:$peer --initial-cluster=b=http://127.0.0.1:$peer \
            --log-level=error >/dev/null 2>&1 & pids+=($!)
          wait_port $port; sleep 1; uri="etcd://127.0.0.1:$port" ;;
    redis) redis-server --bind 127.0.0.1 --port $port --save "" --appendonly no --dir $tmp >/dev/null 2>&1 & pids+=($!)
           wait_port $port; uri="redis://127.0.0.1:$port" ;;
  esac
}

echo "# $(date -u +%Y-%m-%d) $(nproc) cores; $n samples each; microseconds"
printf "%-8s %-24s %12s %12s %14s %14s\n" backend build "open p50" "open p99" "refresh p50" "refresh p99"
for kind in p2p http etcd redis; do
  start_backend $kind
  for b in "${!bins[@]}"; do
    bin=${bins[$b]}
    name=(); [ $kind = p2p ] || name=(--segment_name=latency-target-$b)  # p2p: the name is the address
    exec 4< <($bin/ferry-bench --mode=target --local_server_name=127.0.0.1:0 --buffer_size=1M \
                --metadata_server="$uri" "${name[@]}" 2>/dev/null)
    read -r -u 4 word segment
    [ "$word" = SEGMENT ] || { echo "target did not start for $kind" >&2; exit 1; }
    line=$($bin/ferry-info --latency="$segment" --metadata_server="$uri" --iterations=$n --json 2>/dev/null | tail -1)
    python3 -c "import json,sys; j=json.loads(sys.argv[1]); print('%-8s %-24s %12.1f %12.1f %14.1f %14.1f' % ('$kind', '$bin'[-24:], j['open_us_p50'], j['open_us_p99'], j['refresh_us_p50'], j['refresh_us_p99']))" "$line"
    pkill -f "ferry-bench --mode=target --local_server_name=127.0.0.1:0 --buffer_size=1M" 2>/dev/null || true
    exec 4<&-
  done
done
