"""Stream-ordered transfers with PyTorch, as an inference engine's connector uses them:
transfer_write_on_cuda / transfer_read_on_cuda on the current CUDA stream.

Two engines in this process on GPU 0 (the target's tensor registered as it would be in another
process). Each round: the stream is kept busy (torch.cuda._sleep), a kernel fills the source
with value A, the write is ordered after it, then a kernel overwrites the source with B; and a
read into a third tensor is ordered before a kernel that copies it out. The calls must return
at once; the target must hold A (not B, not what was there before); the read-back must match.
Prints one JSON line: {"rounds", "mismatches", "max_call_ms"}.

    PYTHONPATH=build/python python3 examples/on_cuda.py
"""
import json
import time

import torch
from mooncake.engine import TransferEngine

N = 1 << 20  # elements (int32): 4 MiB
ROUNDS = 20


def engine():
    e = TransferEngine()
    assert e.initialize("127.0.0.1", "P2PHANDSHAKE", "tcp", "") == 0
    return e


initiator, target = engine(), engine()
src = torch.zeros(N, dtype=torch.int32, device="cuda:0")
dst = torch.zeros(N, dtype=torch.int32, device="cuda:0")
back = torch.zeros(N, dtype=torch.int32, device="cuda:0")
check = torch.zeros(N, dtype=torch.int32, device="cuda:0")
nbytes = N * 4
assert initiator.register_memory(src.data_ptr(), nbytes) == 0
assert initiator.register_memory(back.data_ptr(), nbytes) == 0
assert target.register_memory(dst.data_ptr(), nbytes) == 0
peer = target.get_engine().get_segment_name()
stream = torch.cuda.current_stream()

mismatches, max_call_ms = 0, 0.0
for r in range(ROUNDS):
    a, b = 2 * r + 1, 2 * r + 2
    torch.cuda._sleep(20_000_000)  # hold the stream (~10 ms): the calls below must not wait
    src.fill_(a)
    t0 = time.perf_counter()
    initiator.transfer_write_on_cuda(peer, src.data_ptr(), dst.data_ptr(), nbytes, stream.cuda_stream)
    max_call_ms = max(max_call_ms, (time.perf_counter() - t0) * 1e3)
    src.fill_(b)  # later work: must not reach the transfer
    t0 = time.perf_counter()
    initiator.transfer_read_on_cuda(peer, back.data_ptr(), dst.data_ptr(), nbytes, stream.cuda_stream)
    max_call_ms = max(max_call_ms, (time.perf_counter() - t0) * 1e3)
    check.copy_(back)  # later work: sees the read's bytes
    stream.synchronize()
    if not (torch.all(dst == a) and torch.all(check == a)):
        mismatches += 1

print(json.dumps({"rounds": ROUNDS, "mismatches": mismatches, "max_call_ms": round(max_call_ms, 3)}))
