"""The Python API of spec/python-api.md, two processes over TCP on 127.0.0.1."""
import hashlib
import json
import os
import signal
import socket
import time
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import initialize
from mooncake.engine import (SUPPORT_CUDA, TransferEngine, TransferNotify,
                             TransferOpcode)


def sha1(arr):
    return hashlib.sha1(arr.tobytes()).hexdigest()


def registered(engine, size, fill=None):
    arr = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8) if fill is None \
        else np.full(size, fill, dtype=np.uint8)
    assert engine.register_memory(arr.ctypes.data, arr.nbytes) == 0
    return arr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_basic_write_and_read(engine, peer):
    src = registered(engine, 1 << 20)
    assert engine.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr + 3, src.nbytes) == 0
    assert peer.hash(peer.addr + 3, src.nbytes) == sha1(src)
    back = registered(engine, 1 << 20, fill=0)
    assert engine.transfer_sync_read(peer.segment, back.ctypes.data, peer.addr + 3, back.nbytes) == 0
    assert np.array_equal(back, src)
    assert engine.transfer_sync(peer.segment, back.ctypes.data, peer.addr, 4096, TransferOpcode.READ) == 0
    assert engine.unregister_memory(src.ctypes.data) == 0


def test_async_submit_and_poll(engine, peer):
    src = registered(engine, 256 << 10)
    batch_id = engine.transfer_submit_write(peer.segment, src.ctypes.data, peer.addr, src.nbytes)
    assert batch_id > 0
    status = 0
    while status == 0:
        status = engine.transfer_check_status(batch_id)
    assert status == 1
    assert peer.hash(peer.addr, src.nbytes) == sha1(src)
    assert engine.transfer_check_status(batch_id) == -1  # already taken: unknown now
    assert engine.transfer_check_status(987654321) == -1


def test_managed_buffers(engine, peer):
    addr = engine.allocate_managed_buffer(1 << 20)
    assert addr != 0
    data = b"Test data for managed buffer"
    assert engine.write_bytes_to_buffer(addr, data, len(data)) == 0
    assert engine.read_bytes_from_buffer(addr, len(data)) == data
    assert engine.transfer_sync_write(peer.segment, addr, peer.addr, len(data)) == 0
    assert peer.hash(peer.addr, len(data)) == hashlib.sha1(data).hexdigest()
    others = [engine.allocate_managed_buffer(n) for n in (1, 4096, 3 << 20, 100 << 20)]
    assert all(others) and len(set(others)) == 4
    for a, n in zip(others, (1, 4096, 3 << 20, 100 << 20)):
        assert engine.free_managed_buffer(a, n) == 0
    assert engine.free_managed_buffer(addr, 1 << 20) == 0
    assert engine.free_managed_buffer(addr, 1 << 20) < 0  # double free
    assert engine.get_first_buffer_address(engine.get_engine().get_segment_name()) != 0


def test_batch_sync_and_async(engine, peer):
    chunks = 4
    size = 256 << 10
    src = registered(engine, chunks * size)
    bufs = [src.ctypes.data + i * size for i in range(chunks)]
    peers = [peer.addr + i * size for i in range(chunks)]
    lens = [size] * chunks
    assert engine.batch_transfer_sync_write(peer.segment, bufs, peers, lens) == 0
    assert peer.hash(peer.addr, chunks * size) == sha1(src)
    dst = registered(engine, chunks * size, fill=0)
    dbufs = [dst.ctypes.data + i * size for i in range(chunks)]
    assert engine.batch_transfer_sync_read(peer.segment, dbufs, peers, lens) == 0
    assert np.array_equal(dst, src)
    ids = [engine.batch_transfer_async_write(peer.segment, bufs, peers, lens),
           engine.batch_transfer_async_read(peer.segment, dbufs, peers, lens),
           engine.batch_transfer_async(peer.segment, bufs, peers, lens, TransferOpcode.WRITE)]
    assert all(i > 0 for i in ids)
    assert engine.get_batch_transfer_status(ids) == 0
    assert engine.get_batch_transfer_status(ids) == -1  # taken: unknown now
    assert engine.batch_transfer_sync(peer.segment, bufs, peers, lens, TransferOpcode.WRITE) == 0


def test_empty_batches_succeed(engine, peer):
    # Mooncake's vLLM connector sends an empty batch when the decode side already holds the
    # whole prompt: the sync calls return 0, the async ones a valid id that is complete.
    assert engine.batch_transfer_sync_write(peer.segment, [], [], []) == 0
    assert engine.batch_transfer_sync_read(peer.segment, [], [], []) == 0
    assert engine.batch_transfer_sync(peer.segment, [], [], [], TransferOpcode.WRITE) == 0
    ids = [engine.batch_transfer_async_write(peer.segment, [], [], []),
           engine.batch_transfer_async_read(peer.segment, [], [], [])]
    assert all(i > 0 for i in ids) and ids[0] != ids[1]
    assert engine.get_batch_transfer_status(ids) == 0
    assert engine.get_batch_transfer_status(ids) == -1  # taken: unknown now, as any batch
    one = engine.batch_transfer_async(peer.segment, [], [], [], TransferOpcode.READ)
    assert engine.transfer_check_status(one) == 1
    assert engine.transfer_check_status(one) == -1
    # Lists of different lengths are still an error.
    assert engine.batch_transfer_sync_write(peer.segment, [1], [], []) < 0


def test_cancel_transfer(engine, peer):
    """cancel_transfer returns once nothing of the batch moves any more: the memory the
    reads were landing in is overwritten at once and no late byte of them arrives."""
    # 256 MiB over tcp (~60 ms here): a same-machine peer would be served by shm in a few
    # ms, which a loaded machine can spend between two Python calls.
    mib, n = 1 << 20, 256
    dst = registered(engine, n * mib, fill=0)
    batch_id = engine.batch_transfer_async_read(
        peer.segment, [dst.ctypes.data + i * mib for i in range(n)],
        [peer.addr + (i * mib) % peer.len for i in range(n)], [mib] * n, transport_hint="tcp")
    assert batch_id > 0
    assert engine.cancel_transfer(batch_id) == 0
    dst.fill(0xEE)
    time.sleep(0.2)
    assert np.all(dst == 0xEE), "read data landed after cancel_transfer returned"
    # Unfinished tasks ended CANCELED: the batch reports a failure, and is released by it.
    assert engine.transfer_check_status(batch_id) == -1
    assert engine.cancel_transfer(batch_id) == -1  # released: unknown now
    # The memory is usable again at once.
    assert engine.transfer_sync_read(peer.segment, dst.ctypes.data, peer.addr, mib) == 0
    assert np.array_equal(dst[:mib], (np.arange(mib, dtype=np.uint64) % 256).astype(np.uint8))
    assert engine.cancel_transfer(engine.batch_transfer_async_write(peer.segment, [], [], [])) == 0


def test_paged_transfers(engine, peer):
    """Pages scattered at both ends, two layers, in one call; NumPy indices read in place."""
    page, pages, layers = 4096, 256, 2
    layer = page * pages
    assert peer.len >= layers * layer
    src = registered(engine, layers * layer)
    back = registered(engine, layers * layer, fill=0)
    rng = np.random.default_rng(5)
    local = rng.permutation(pages)[:100].astype(np.int64)
    remote = rng.permutation(pages)[:100].astype(np.int32)
    assert engine.paged_transfer_sync(peer.segment, src.ctypes.data, peer.addr, page, local,
                                      remote.astype(np.int64), TransferOpcode.WRITE, layers, layer, layer) == 0
    bid = engine.paged_transfer_async(peer.segment, back.ctypes.data, peer.addr, page,
                                      local.astype(np.int32), remote, TransferOpcode.READ,
                                      num_layers=layers, local_layer_stride=layer, remote_layer_stride=layer)
    assert bid > 0 and engine.get_batch_transfer_status([bid]) == 0
    for l in range(layers):
        for i in local:
            off = l * layer + int(i) * page
            assert np.array_equal(back[off:off + page], src[off:off + page]), (l, i)
    untouched = np.setdiff1d(np.arange(pages), local)
    assert not back[untouched[0] * page:(untouched[0] + 1) * page].any()
    # Python lists work too (converted); bad ones fail cleanly.
    assert engine.paged_transfer_sync(peer.segment, src.ctypes.data, peer.addr, page, [0, 1], [2, 3],
                                      TransferOpcode.WRITE) == 0
    assert engine.paged_transfer_sync(peer.segment, src.ctypes.data, peer.addr, page, np.array([0.5]),
                                      np.array([1.5]), TransferOpcode.WRITE) == -1
    assert engine.paged_transfer_sync(peer.segment, src.ctypes.data, peer.addr, page, [0, 1], [2],
                                      TransferOpcode.WRITE) == -1
    assert engine.paged_transfer_sync(peer.segment, src.ctypes.data, peer.addr, page, [0], [-1],
                                      TransferOpcode.WRITE) == -1
    assert engine.paged_transfer_sync(peer.segment, src.ctypes.data, peer.addr, page, [0], [peer.len // page],
                                      TransferOpcode.WRITE) == -1  # past the peer's buffer


def test_digest(engine, peer):
    """digest() is computed by the peer over what landed: equal bytes, equal digests."""
    src = registered(engine, 1 << 20)
    half = peer.len // 2
    for off in (0, half):
        assert engine.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr + off, src.nbytes) == 0
    a = engine.digest(peer.segment, peer.addr, src.nbytes)
    assert a >= 0 and a == engine.digest(peer.segment, peer.addr + half, src.nbytes)
    other = registered(engine, 4096, fill=(int(src[5]) + 1) % 256)
    assert engine.transfer_sync_write(peer.segment, other.ctypes.data, peer.addr + 5, 1) == 0  # one byte changed
    assert engine.digest(peer.segment, peer.addr, src.nbytes) != a
    assert engine.digest(peer.segment, peer.addr + peer.len - 8, 64) == -1  # past the buffer
    assert engine.digest(peer.segment, peer.addr, 0) == -1


@pytest.mark.parametrize("hint", ["tcp", "shm"])
def test_checksums(peer, backend, monkeypatch, hint):
    """FERRY_CHECKSUM=1 checks every transfer end to end: clean transfers pass; with the
    fault transport flipping a byte of every third slice, exactly those fail and count."""
    piece, n = 64 << 10, 6
    monkeypatch.setenv("FERRY_CHECKSUM", "1")
    clean = TransferEngine()
    assert initialize(clean, backend) == 0
    src, back = registered(clean, n * piece), registered(clean, n * piece, fill=0)
    assert clean.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr, src.nbytes, hint) == 0
    assert clean.transfer_sync_read(peer.segment, back.ctypes.data, peer.addr, back.nbytes, hint) == 0
    assert np.array_equal(src, back) and clean.get_checksum_mismatches() == 0

    monkeypatch.setenv("FERRY_CONF", json.dumps({"transports": {hint: {"fault": {"flip_byte_every": 3}}}}))
    faulty = TransferEngine()
    assert initialize(faulty, backend) == 0
    src = registered(faulty, n * piece)
    addrs = [src.ctypes.data + i * piece for i in range(n)]
    peers = [peer.addr + i * piece for i in range(n)]
    assert faulty.batch_transfer_sync_write(peer.segment, addrs, peers, [piece] * n, hint) == -1
    assert faulty.get_checksum_mismatches() == 2  # slices 3 and 6
    assert faulty.batch_transfer_sync_read(peer.segment, addrs, peers, [piece] * n, hint) == -1
    assert faulty.get_checksum_mismatches() == 4  # slices 9 and 12


def test_register_memory_location_and_engine_ptr(engine, peer):
    a = np.ones(1 << 16, dtype=np.uint8)
    b = np.ones(1 << 16, dtype=np.uint8)
    assert engine.register_memory(a.ctypes.data, a.nbytes, "cpu:0") == 0
    assert engine.register_memory(b.ctypes.data, b.nbytes, location="cuda:0") < 0  # host memory, checked
    assert engine.unregister_memory(a.ctypes.data) == 0
    bufs = [np.ones(4096, dtype=np.uint8) for _ in range(3)]
    assert engine.batch_register_memory([x.ctypes.data for x in bufs], [4096] * 3, "cpu:0") == 0
    assert engine.batch_unregister_memory([x.ctypes.data for x in bufs]) == 0
    assert engine.batch_register_memory([x.ctypes.data for x in bufs], [4096] * 3, location="*") == 0
    assert engine.batch_unregister_memory([x.ctypes.data for x in bufs]) == 0
    # All or nothing: the second is refused, the first is not left registered.
    assert engine.batch_register_memory([bufs[0].ctypes.data, b.ctypes.data], [4096, 4096], "cuda:0") < 0
    assert engine.register_memory(bufs[0].ctypes.data, 4096) == 0
    assert engine.unregister_memory(bufs[0].ctypes.data) == 0
    ptr = engine.get_engine_ptr()
    assert isinstance(ptr, int) and ptr != 0 and ptr == engine.get_engine_ptr()


def test_notifications(engine, peer):
    src = registered(engine, 64 << 10)
    rc = engine.transfer_sync(peer.segment, src.ctypes.data, peer.addr, src.nbytes,
                              TransferOpcode.WRITE, TransferNotify("writer", "block 7 ready"))
    assert rc == 0
    rc = engine.batch_transfer_sync(peer.segment, [src.ctypes.data], [peer.addr], [16],
                                    TransferOpcode.WRITE, notify=TransferNotify("writer", "batch"))
    assert rc == 0
    got = peer.notifications(want=2)
    assert sorted(got) == [["writer", "batch"], ["writer", "block 7 ready"]]
    assert engine.get_notifies() == []
    n = TransferNotify()
    n.name, n.msg = "a", "b"
    assert (n.name, n.msg) == ("a", "b")


def test_send_probe(engine, peer):
    assert engine.send_probe(peer.segment) == 0
    assert engine.send_probe("127.0.0.1:%d" % free_port()) != 0
    assert engine.send_probe("not-a-peer") != 0


def test_numpy_batch_registration(engine, peer):
    arrays = [np.full(1 << 16, i, dtype=np.uint8) for i in range(5)]
    addrs = [a.ctypes.data for a in arrays]
    assert engine.batch_register_memory(addrs, [a.nbytes for a in arrays]) == 0
    for i, a in enumerate(arrays):
        assert engine.transfer_sync_write(peer.segment, a.ctypes.data, peer.addr + i * a.nbytes, a.nbytes) == 0
    assert peer.hash(peer.addr, 5 << 16) == sha1(np.concatenate(arrays))
    assert engine.batch_unregister_memory(addrs) == 0
    assert engine.batch_unregister_memory(addrs) < 0  # already gone


def test_bad_inputs_return_negative(engine, peer):
    stray = np.zeros(4096, dtype=np.uint8)  # never registered
    assert engine.transfer_sync_write(peer.segment, stray.ctypes.data, peer.addr, 4096) < 0
    src = registered(engine, 4096)
    assert engine.transfer_sync_write("127.0.0.1:%d" % free_port(), src.ctypes.data, 0x1000, 16) < 0
    assert engine.transfer_sync_write("no-such-host-xyz:1", src.ctypes.data, 0x1000, 16) < 0
    assert engine.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr + peer.len - 10, 4096) < 0
    assert engine.transfer_sync_read(peer.segment, src.ctypes.data, 0x1000, 16) < 0
    assert engine.transfer_submit_write(peer.segment, stray.ctypes.data, peer.addr, 16) < 0
    assert engine.batch_transfer_async_write(peer.segment, [src.ctypes.data], [peer.addr], [1, 2]) == 0
    assert engine.batch_transfer_sync_write(peer.segment, [], [], []) == 0  # nothing to move: done (test_empty_batches_succeed)
    assert engine.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr, 0) < 0
    assert engine.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr, 16, transport_hint="rdma") < 0
    assert engine.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr, 16, transport_hint="tcp") == 0
    assert engine.write_bytes_to_buffer(stray.ctypes.data, b"x", 1) < 0
    assert engine.write_bytes_to_buffer(src.ctypes.data, b"x", 2) < 0
    with pytest.raises(RuntimeError):
        engine.read_bytes_from_buffer(stray.ctypes.data, 16)
    assert engine.unregister_memory(stray.ctypes.data) < 0
    assert engine.free_managed_buffer(stray.ctypes.data, 4096) < 0
    assert engine.get_first_buffer_address("127.0.0.1:%d" % free_port()) == 0
    # still healthy
    assert engine.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr, 4096) == 0


def test_many_threads_one_engine(engine, peer):
    threads, rounds, size = 4, 30, 64 << 10
    src = registered(engine, threads * size)
    dst = registered(engine, threads * size, fill=0)
    errors = []

    def work(t):
        off = t * size
        for _ in range(rounds):
            if engine.transfer_sync_write(peer.segment, src.ctypes.data + off, peer.addr + off, size) != 0 or \
               engine.transfer_sync_read(peer.segment, dst.ctypes.data + off, peer.addr + off, size) != 0:
                errors.append(t)
                return

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(60)
    assert not errors
    assert np.array_equal(src, dst)


def test_cuda_calls_raise_without_cuda(engine, peer):
    # SUPPORT_CUDA says whether this machine has an NVIDIA GPU and its driver (checked at
    # import, without initialising CUDA); tests/cuda runs the GPU paths over a fake driver.
    if os.path.isdir("/proc/driver/nvidia/gpus") and os.listdir("/proc/driver/nvidia/gpus"):
        pytest.skip("this machine has an NVIDIA GPU: scripts/gpu_check.sh covers it")
    assert SUPPORT_CUDA is False
    buf = engine.allocate_managed_buffer(4096)
    with pytest.raises(RuntimeError, match="need CUDA: no NVIDIA GPU"):
        engine.transfer_write_on_cuda(peer.segment, buf, peer.addr, 16)
    with pytest.raises(RuntimeError, match="CUDA"):
        engine.batch_transfer_read_on_cuda(peer.segment, [buf], [peer.addr], [16], stream_ptr=0)
    engine.free_managed_buffer(buf, 4096)


def test_topology_and_engine_info(engine, tmp_path):
    topo = json.loads(engine.get_local_topology())
    for key in ("cpus", "numa_nodes", "nics", "rdma_devices", "gpus"):
        assert key in topo
    assert topo["cpus"] >= 1
    custom = tmp_path / "topo.json"
    custom.write_text('{"custom": 1}')
    out = subprocess.run([sys.executable, "-c",
                          "from ferry.engine import TransferEngine; print(TransferEngine().get_local_topology())"],
                         env=dict(os.environ, MC_CUSTOM_TOPO_JSON=str(custom)),
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"custom": 1}
    inner = engine.get_engine()
    assert inner.get_rpc_port() == engine.get_rpc_port() > 0


def test_initialize_variants():
    e = TransferEngine()
    assert e.get_rpc_port() < 0 and e.allocate_managed_buffer(16) == 0  # not initialized
    assert e.initialize("127.0.0.1:7777", "etcd://127.0.0.1:%d" % free_port(), "tcp", "") < 0  # no etcd
    assert e.initialize("127.0.0.1:7777", "zk://127.0.0.1:1", "tcp", "") < 0  # unknown kind
    assert e.initialize_ext("127.0.0.1", "", "tcp", "", "p2p") == 0
    assert e.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") < 0  # twice
    port = free_port()
    out = subprocess.run([sys.executable, "-c",
                          "from ferry.engine import TransferEngine; e = TransferEngine();"
                          "print(e.initialize('127.0.0.1:%d', 'P2PHANDSHAKE', 'rdma', ''), e.get_rpc_port())" % port],
                         env=dict(os.environ, MC_LEGACY_RPC_PORT_BINDING="1"),
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", str(port)]


def test_transfer_timeout_env():
    out = subprocess.run([sys.executable, "-c", "import ferry.engine as f; e = f.TransferEngine();"
                          "e.initialize('127.0.0.1', 'P2PHANDSHAKE', 'tcp', '');"
                          "print(e.get_engine().get_segment_name())"],
                         env=dict(os.environ, MC_TRANSFER_TIMEOUT="bogus"), capture_output=True, text=True)
    assert "MC_TRANSFER_TIMEOUT" in out.stderr  # a clear complaint, not a crash


def test_metrics_log_line(p2p_peer):
    peer = p2p_peer
    script = ("import time, numpy as np; from ferry.engine import TransferEngine;"
              "e = TransferEngine(); assert e.initialize('127.0.0.1', 'P2PHANDSHAKE', 'tcp', '') == 0;"
              "a = np.ones(1 << 20, dtype=np.uint8); assert e.register_memory(a.ctypes.data, a.nbytes) == 0;"
              "t = time.time()\n"
              "while time.time() - t < 1.6: assert e.transfer_sync_write('%s', a.ctypes.data, %d, a.nbytes) == 0"
              % (peer.segment, peer.addr))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, MC_TE_METRIC="1", MC_TE_METRIC_INTERVAL_SECONDS="1"))
    assert out.returncode == 0, out.stderr
    assert "metrics" in out.stderr and "MB/s" in out.stderr, out.stderr


@pytest.mark.parametrize("alias", ["1", "0"])
def test_pip_install_offline(tmp_path, alias):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    env = dict(os.environ, FERRY_PYTHON_MOONCAKE_ALIAS=alias)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                    "--no-index", "--target", str(tmp_path / "site"), root],
                   env=env, check=True, capture_output=True, timeout=600)
    assert (tmp_path / "site" / "mooncake").exists() == (alias == "1")
    check = ("from ferry.engine import TransferEngine; e = TransferEngine();"
             "print(e.initialize('127.0.0.1', 'P2PHANDSHAKE', 'tcp', ''))")
    out = subprocess.run([sys.executable, "-c", check], cwd=str(tmp_path), capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")), timeout=60)
    assert out.stdout.strip() == "0", out.stderr


def test_check_status_reports_timeout(p2p_peer, monkeypatch):
    peer = p2p_peer
    monkeypatch.setenv("MC_TRANSFER_TIMEOUT", "1")  # read by initialize
    e = TransferEngine()
    assert e.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
    src = registered(e, 4 << 20)
    assert e.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr, 4096) == 0
    peer.proc.send_signal(signal.SIGSTOP)
    try:
        # Pinned to TCP: a frozen peer stalls a socket; shared memory would not notice it.
        bid = e.transfer_submit_write(peer.segment, src.ctypes.data, peer.addr, src.nbytes,
                                      transport_hint="tcp")
        assert bid > 0
        start, status = time.time(), 0
        while status == 0 and time.time() - start < 10:
            status = e.transfer_check_status(bid)
            time.sleep(0.01)
        assert status == -2
        assert 0.9 < time.time() - start < 5
    finally:
        peer.proc.send_signal(signal.SIGCONT)
    assert e.transfer_sync_write(peer.segment, src.ctypes.data, peer.addr, 4096) == 0  # recovered


def test_first_buffer_of_a_peer_by_name(engine, peer):
    assert engine.get_first_buffer_address(peer.segment) == peer.addr
    assert engine.get_first_buffer_address("no-such-segment") == 0


def test_http_metadata_names(metadata_url):
    e = TransferEngine()
    assert e.initialize("kv-prefill-7", metadata_url, "tcp", "") == 0
    assert e.get_engine().get_segment_name() == "kv-prefill-7"
    other = TransferEngine()
    assert other.initialize("kv-prefill-7", metadata_url, "tcp", "") == 0  # same name: the newer wins
    assert other.send_probe("127.0.0.1:%d" % e.get_rpc_port()) == 0


def test_cluster_token_from_the_environment(monkeypatch):
    """FERRY_AUTH_TOKEN: engines that have it serve and reach each other; one without it
    gets nothing from them and writes nothing."""
    from conftest import Peer
    token = "a cluster token for the python test"
    guarded = Peer(dict(os.environ, FERRY_AUTH_TOKEN=token))
    try:
        before = guarded.hash(guarded.addr, 4096)
        outsider = TransferEngine()
        assert outsider.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
        src = registered(outsider, 4096)
        assert outsider.transfer_sync_write(guarded.segment, src.ctypes.data, guarded.addr, 4096) < 0
        assert guarded.hash(guarded.addr, 4096) == before
        monkeypatch.setenv("FERRY_AUTH_TOKEN", token)
        member = TransferEngine()
        assert member.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
        src = registered(member, 4096)
        assert member.transfer_sync_write(guarded.segment, src.ctypes.data, guarded.addr, 4096) == 0
        assert guarded.hash(guarded.addr, 4096) == sha1(src)
    finally:
        guarded.stop()
