"""Target process for the Python API tests: an engine on 127.0.0.1 (p2p) with one
registered numpy buffer. Prints one JSON line, then serves commands on stdin:
  notifs           -> {"notifs": [[name, msg], ...]}
  hash ADDR LEN    -> {"hash": "<sha1 of our memory>"}
  quit
"""
import hashlib
import json
import os
import sys

import numpy as np
from mooncake.engine import TransferEngine

SIZE = 8 << 20

engine = TransferEngine()
META = os.environ.get("FERRY_TEST_METADATA_URL", "")  # empty: p2p
NAME = os.environ.get("FERRY_TEST_SEGMENT_NAME", "127.0.0.1")
if engine.initialize(NAME, META or "P2PHANDSHAKE", "tcp", "") != 0:
    print(json.dumps({"error": "initialize failed"}), flush=True)
    sys.exit(1)
buf = np.arange(SIZE, dtype=np.uint64).astype(np.uint8)  # a known pattern
addr = buf.ctypes.data
assert engine.register_memory(addr, SIZE) == 0
print(json.dumps({"segment": engine.get_engine().get_segment_name(), "addr": addr, "len": SIZE}),
      flush=True)

for line in sys.stdin:
    words = line.split()
    if not words or words[0] == "quit":
        break
    if words[0] == "notifs":
        out = {"notifs": [[n.name, n.msg] for n in engine.get_notifies()]}
    elif words[0] == "hash":
        a, n = int(words[1]), int(words[2])
        out = {"hash": hashlib.sha1(engine.read_bytes_from_buffer(a, n)).hexdigest()}
    else:
        out = {"error": "unknown command"}
    print(json.dumps(out), flush=True)
