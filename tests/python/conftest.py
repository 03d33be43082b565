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


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.stop()


@pytest.fixture
def engine():
    from mooncake.engine import TransferEngine
    e = TransferEngine()
    assert e.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
    return e
