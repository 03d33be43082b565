"""Ferry's log lines captured by Python's logging (log_to_python / FERRY_LOG_TO_PYTHON)."""
import logging
import os
import subprocess
import sys
import time

import pytest

from ferry import engine as ferry_engine
from mooncake.engine import TransferEngine


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def wait_for(records, predicate, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [r for r in records if predicate(r)]
        if found:
            return found
        time.sleep(0.02)
    return []


def test_lines_reach_the_python_logger_with_their_levels():
    logger = logging.getLogger("ferry.test")
    logger.setLevel(logging.DEBUG)
    handler = Collect()
    logger.addHandler(handler)
    ferry_engine.set_log_level("info")
    ferry_engine.log_to_python("ferry.test")
    try:
        e = TransferEngine()
        assert e.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
        up = wait_for(handler.records, lambda r: "up: rpc" in r.getMessage())
        assert up and up[0].levelno == logging.INFO, [r.getMessage() for r in handler.records]
        assert "engine.cpp:" in up[0].getMessage()
        # A transfer to a segment that cannot be reached: a WARNING or ERROR line.
        assert e.transfer_sync_write("127.0.0.1:1", 0, 0, 16) < 0
        assert wait_for(handler.records, lambda r: r.levelno >= logging.WARNING)
    finally:
        ferry_engine.log_to_stderr()
        logger.removeHandler(handler)


def test_bad_level_is_refused():
    with pytest.raises(ValueError):
        ferry_engine.set_log_level("loud")


def test_env_turns_it_on_at_import_and_exit_is_clean():
    code = ("import logging, sys\n"
            "logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='PY %(name)s %(message)s')\n"
            "from mooncake.engine import TransferEngine\n"
            "e = TransferEngine()\n"
            "assert e.initialize('127.0.0.1', 'P2PHANDSHAKE', 'tcp', '') == 0\n")
    env = dict(os.environ, FERRY_LOG_TO_PYTHON="1", FERRY_LOG_LEVEL="info")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "PY ferry " in out.stdout and "up: rpc" in out.stdout, out.stdout
    assert "[ferry I" not in out.stderr, out.stderr
