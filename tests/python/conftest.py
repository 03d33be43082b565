import json
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


class Peer:
    """A target engine in another process."""

    def __init__(self, env=None):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "peer.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        hello = json.loads(self.proc.stdout.readline())
        assert "segment" in hello, hello
        self.segment, self.addr, self.len = hello["segment"], hello["addr"], hello["len"]

    def ask(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def hash(self, addr, length):
        return self.ask("hash %d %d" % (addr, length))["hash"]

    def notifications(self, want=1, timeout=5.0):
        got, deadline = [], time.time() + timeout
        while len(got) < want and time.time() < deadline:
            got += self.ask("notifs")["notifs"]
            if len(got) < want:
                time.sleep(0.01)
        return got

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


BIN = os.path.join(os.environ.get("FERRY_BUILD_DIR", os.path.join(HERE, "..", "..", "build")), "bin")


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc, timeout=15):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("server on port %d did not come up" % port)


class MetadataServer:
    """A real metadata service on a free port of 127.0.0.1: ferry-metadata, etcd or redis."""

    def __init__(self, kind="http", tmp="/tmp"):
        port = _free_port()
        self.data_dir = None
        if kind == "http":
            argv = [os.path.join(BIN, "ferry-metadata"), "--host=127.0.0.1", "--port=%d" % port]
            self.url = "http://127.0.0.1:%d/metadata" % port
        elif kind == "etcd":
            peer, client = "http://127.0.0.1:%d" % _free_port(), "http://127.0.0.1:%d" % port
            self.data_dir = "%s/etcd-%d" % (tmp, port)
            argv = ["/usr/bin/etcd", "--name=t", "--data-dir=" + self.data_dir,
                    "--listen-client-urls=" + client, "--advertise-client-urls=" + client,
                    "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
                    "--initial-cluster=t=" + peer, "--log-level=error"]
            self.url = "etcd://127.0.0.1:%d" % port
        else:
            argv = ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                    "--appendonly", "no", "--dir", tmp, "--loglevel", "warning"]
            self.url = "redis://127.0.0.1:%d" % port
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(port, self.proc)

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)
        if self.data_dir:  # etcd preallocates a 64 MB WAL: pytest keeps old tmp dirs around
            shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(params=["p2p", "http", "etcd", "redis"])
def backend(request, monkeypatch, tmp_path):
    """Every test using `engine`/`peer` runs with p2p and through each metadata service."""
    if request.param == "p2p":
        yield ""
        return
    server = MetadataServer(request.param, str(tmp_path))
    # Engines advertise where they listen: keep that on loopback.
    monkeypatch.setenv("MC_TCP_BIND_ADDRESS", "127.0.0.1")
    yield server.url
    server.stop()


@pytest.fixture
def metadata_url(monkeypatch):
    server = MetadataServer()
    monkeypatch.setenv("MC_TCP_BIND_ADDRESS", "127.0.0.1")
    yield server.url
    server.stop()


_names = iter(range(1 << 30))


def initialize(engine, url):
    if url:
        return engine.initialize("node-%d-%d" % (os.getpid(), next(_names)), url, "tcp", "")
    return engine.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "")


@pytest.fixture
def peer(backend):
    env = dict(os.environ, FERRY_TEST_METADATA_URL=backend,
               FERRY_TEST_SEGMENT_NAME="peer-%d" % next(_names) if backend else "127.0.0.1")
    p = Peer(env)
    yield p
    p.stop()


@pytest.fixture
def p2p_peer():
    p = Peer()
    yield p
    p.stop()


@pytest.fixture
def engine(backend):
    from mooncake.engine import TransferEngine
    e = TransferEngine()
    assert initialize(e, backend) == 0
    return e
