"""/metrics scraped by a real Prometheus server (Debian's `prometheus`, started here on
127.0.0.1 and stopped by pid): a counter that moved with a transfer is read back through
Prometheus' query API."""
import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import numpy as np

from mooncake.engine import TransferEngine


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(port, expr):
    url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(expr))
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())["data"]["result"]


def test_prometheus_scrapes_a_counter_that_moved(p2p_peer, monkeypatch, tmp_path):
    metrics_port, prom_port = free_port(), free_port()
    monkeypatch.setenv("FERRY_METRICS_PORT", str(metrics_port))
    engine = TransferEngine()
    assert engine.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
    src = np.arange(1 << 20, dtype=np.uint8)
    assert engine.register_memory(src.ctypes.data, src.nbytes) == 0
    assert engine.transfer_sync_write(p2p_peer.segment, src.ctypes.data, p2p_peer.addr, src.nbytes, "tcp") == 0

    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ferry\n"
                      "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % metrics_port)
    prom = subprocess.Popen(["/usr/bin/prometheus", "--config.file=%s" % config,
                             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % prom_port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        expr = 'sum(ferry_transferred_bytes_total{transport="tcp",op="write"})'
        value, deadline = None, time.time() + 60
        while time.time() < deadline:
            assert prom.poll() is None, "prometheus exited"
            try:
                result = query(prom_port, expr)
                if result:
                    value = float(result[0]["value"][1])
                    if value >= src.nbytes:
                        break
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        assert value == src.nbytes, value
        up = query(prom_port, 'up{job="ferry"}')
        assert up and up[0]["value"][1] == "1", up
    finally:
        prom.kill()
        prom.wait(10)
