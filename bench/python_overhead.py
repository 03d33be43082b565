#!/usr/bin/env python3
"""Per-call cost of the Python API against the same transfer from C++.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_overhead.py [seconds] [repeats]

One ferry-bench target process; against it, alternately: Python transfer_sync_write of 64 B
in a loop, and ferry-bench --mode=initiator with one 64 B write per batch. Reports the
median p50 of each and the ratio.
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "..", "build", "bin")


def python_p50(segment, remote, seconds):
    import numpy as np
    from ferry.engine import TransferEngine
    e = TransferEngine()
    assert e.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
    buf = np.ones(4096, dtype=np.uint8)
    assert e.register_memory(buf.ctypes.data, buf.nbytes) == 0
    addr = buf.ctypes.data
    for _ in range(1000):  # warm-up: connection, descriptor
        assert e.transfer_sync_write(segment, addr, remote, 64) == 0
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        rc = e.transfer_sync_write(segment, addr, remote, 64)
        samples.append((time.perf_counter() - t0) * 1e6)
        assert rc == 0
    e.unregister_memory(addr)
    return statistics.median(samples)


def cpp_p50(segment, seconds):
    out = subprocess.run([os.path.join(BIN, "ferry-bench"), "--mode=initiator", "--segment_id=" + segment,
                          "--local_server_name=127.0.0.1", "--block_size=64", "--batch_size=1",
                          "--buffer_size=1M", "--duration=%g" % seconds, "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["batch_latency_us_p50"]


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    target = subprocess.Popen([os.path.join(BIN, "ferry-bench"), "--mode=target",
                               "--local_server_name=127.0.0.1:0", "--buffer_size=1M"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        segment = target.stdout.readline().split()[1]
        from ferry.engine import TransferEngine
        probe = TransferEngine()
        assert probe.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
        remote = probe.get_first_buffer_address(segment)
        py, cpp = [], []
        for _ in range(repeats):
            py.append(python_p50(segment, remote, seconds))
            cpp.append(cpp_p50(segment, seconds))
        p, c = statistics.median(py), statistics.median(cpp)
        print("# %s, %d cores; median of %d x %gs; 64 B transfer_sync_write, p50 per call"
              % (time.strftime("%Y-%m-%d"), os.cpu_count(), repeats, seconds))
        print("%-28s %8.1f us" % ("C++ (ferry-bench, batch 1)", c))
        print("%-28s %8.1f us" % ("Python transfer_sync_write", p))
        print("%-28s %8.2f x  (+%.1f us per call)" % ("ratio", p / c, p - c))
    finally:
        target.terminate()
        target.wait(10)


if __name__ == "__main__":
    main()
