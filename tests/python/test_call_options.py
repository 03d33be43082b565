"""Per-call keyword arguments of the transfer calls (Ferry extensions after transport_hint):
priority, deadline_ns (time.monotonic_ns() based) and checksum reach the C++ Request."""
import hashlib
import json
import time

import numpy as np

from mooncake.engine import TransferEngine, TransferOpcode


def make_engine(conf=None, monkeypatch=None):
    if conf is not None:
        monkeypatch.setenv("FERRY_CONF", json.dumps(conf))
    e = TransferEngine()
    assert e.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
    return e


def registered(engine, size, seed=1):
    arr = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)
    assert engine.register_memory(arr.ctypes.data, arr.nbytes) == 0
    return arr


def test_priority_and_checksum_kwargs(p2p_peer):
    e = make_engine()
    src = registered(e, 256 << 10)
    assert e.transfer_sync_write(p2p_peer.segment, src.ctypes.data, p2p_peer.addr, src.nbytes, "tcp",
                                 priority=2, checksum=True) == 0
    assert p2p_peer.hash(p2p_peer.addr, src.nbytes) == hashlib.sha1(src.tobytes()).hexdigest()
    assert e.batch_transfer_sync_read(p2p_peer.segment, [src.ctypes.data], [p2p_peer.addr], [src.nbytes],
                                      priority=1, checksum=True) == 0
    pages = np.arange(4, dtype=np.int64)
    assert e.paged_transfer_sync(p2p_peer.segment, src.ctypes.data, p2p_peer.addr, 4096, pages, pages,
                                 TransferOpcode.WRITE, priority=2, checksum=True) == 0
    # Out of range: refused with a log line, nothing moves.
    assert e.transfer_sync_write(p2p_peer.segment, src.ctypes.data, p2p_peer.addr, 16, priority=7) == -1
    assert e.batch_transfer_async_write(p2p_peer.segment, [src.ctypes.data], [p2p_peer.addr], [16],
                                        priority=-1) == 0


def test_a_passed_deadline_drops_the_transfer(p2p_peer):
    e = make_engine()
    src = registered(e, 64 << 10)
    past = time.monotonic_ns() - 1_000_000
    assert e.transfer_sync_write(p2p_peer.segment, src.ctypes.data, p2p_peer.addr, src.nbytes, "tcp",
                                 deadline_ns=past) == -1
    batch = e.batch_transfer_async_write(p2p_peer.segment, [src.ctypes.data], [p2p_peer.addr], [src.nbytes],
                                         "tcp", deadline_ns=past)
    assert batch != 0
    deadline, status = time.time() + 10, 0
    while status == 0 and time.time() < deadline:
        status = e.transfer_check_status(batch)
    assert status == -2  # TIMEOUT
    future = time.monotonic_ns() + 10_000_000_000
    assert e.transfer_sync_write(p2p_peer.segment, src.ctypes.data, p2p_peer.addr, src.nbytes, "tcp",
                                 deadline_ns=future) == 0


def test_checksum_kwarg_catches_flipped_bytes(p2p_peer, monkeypatch):
    """The fault transport flips a byte of every slice: unchecked calls land corrupted bytes
    and report success; checksum=True fails the call and counts the mismatch."""
    e = make_engine({"transports": {"tcp": {"fault": {"flip_byte_every": 1}}}}, monkeypatch)
    src = registered(e, 64 << 10, seed=5)
    assert e.transfer_sync_write(p2p_peer.segment, src.ctypes.data, p2p_peer.addr, src.nbytes, "tcp") == 0
    assert p2p_peer.hash(p2p_peer.addr, src.nbytes) != hashlib.sha1(src.tobytes()).hexdigest()
    assert e.get_checksum_mismatches() == 0
    assert e.transfer_sync_write(p2p_peer.segment, src.ctypes.data, p2p_peer.addr, src.nbytes, "tcp",
                                 checksum=True) == -1
    assert e.get_checksum_mismatches() == 1
