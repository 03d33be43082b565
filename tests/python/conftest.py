import json
import os
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


class MetadataServer:
    """The real ferry-metadata binary on a free port of 127.0.0.1."""

    def __init__(self):
        self.proc = subprocess.Popen([os.path.join(BIN, "ferry-metadata"), "--host=127.0.0.1", "--port=0"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "LISTENING", line
        self.url = "http://%s/metadata" % line[1]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(params=["p2p", "http"])
def backend(request, monkeypatch):
    """Every test using `engine`/`peer` runs with p2p and through an HTTP metadata server."""
    if request.param == "p2p":
        yield ""
        return
    server = MetadataServer()
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
