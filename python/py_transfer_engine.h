// The object behind ferry.engine.TransferEngine: the Python API of spec/python-api.md over
// the native engine (engine_module.cpp binds it). Return conventions are the spec's (0 /
// negative ints, batch ids, 1/0/-1/-2 from transfer_check_status); every failure also leaves
// a log line with the native Status. The GIL is released in every call that waits or moves
// data. Included by engine_module.cpp only.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/topology.h"
#include "compat/classic_init.h"
#include "compat/managed_allocator.h"
#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"

namespace py = pybind11;

namespace ferry_py {

using ferry::Status;

enum class Opcode { READ = 0, WRITE = 1 };

// What a transfer call may ask besides its ranges (keyword arguments of the Python calls):
// the transport to pin, and Request's priority, deadline_ns (time.monotonic_ns() based: the
// steady clock) and checksum.
struct CallOptions {
  std::string hint;
  int priority = ferry::PRIO_HIGH;
  uint64_t deadline_ns = 0;
  bool checksum = false;
  Status check() const {
    if (priority < ferry::PRIO_HIGH || priority > ferry::PRIO_LOW)
      return Status::InvalidArgument("priority must be 0 (high), 1 (medium) or 2 (low), not " +
                                     std::to_string(priority));
    return Status::OK();
  }
};

struct Notify {
  std::string name, msg;
};

int fail(const Status& st, const char* call) {
  FERRY_LOG(WARN) << call << ": " << st.ToString();
  return -1;
}

// What get_engine() returns: the engine underneath, for code that shares it.
struct InnerEngine {
  std::shared_ptr<ferry::TransferEngine> engine;
};

class PyTransferEngine {
 public:
  ~PyTransferEngine() {
    py::gil_scoped_release nogil;
    allocator_.reset();  // its pools go back to the engine before the engine goes
    engine_.reset();
  }

  int initialize(const std::string& local_hostname, const std::string& metadata_server,
                 const std::string& protocol, const std::string& device_name) {
    return initialize_ext(local_hostname, metadata_server, protocol, device_name, "");
  }

  int initialize_ext(const std::string& local_hostname, const std::string& metadata_server,
                     const std::string& protocol, const std::string& device_name,
                     const std::string& metadata_type) {
    py::gil_scoped_release nogil;
    std::lock_guard lock(mu_);
    if (engine_) return fail(Status::InvalidArgument("already initialized"), "initialize");
    auto config = std::make_shared<ferry::Config>();
    std::string meta = metadata_server;
    if (metadata_type == "p2p" || metadata_type == "P2PHANDSHAKE") meta = "P2PHANDSHAKE";
    Status st = ferry::compat::classicConfig(meta, local_hostname, "", 0, *config);
    if (!st.ok()) return fail(st, "initialize");
    if (!protocol.empty() && protocol != "tcp")
      FERRY_LOG(INFO) << "initialize: protocol '" << protocol
                      << "' noted; Ferry selects among the transports it has";
    device_filter_ = device_name;
    auto engine = std::make_shared<ferry::TransferEngine>(config);
    if (!engine->available()) return fail(engine->initStatus(), "initialize");
    engine_ = std::move(engine);
    allocator_ = std::make_unique<ferry::ManagedAllocator>(
        [e = engine_](size_t size, void** base) { return e->allocateLocalMemory(base, size, "cpu:0"); },
        [e = engine_](void* base, size_t) { e->freeLocalMemory(base).IgnoreError(); });
    return 0;
  }

  InnerEngine get_engine() { return InnerEngine{engine_}; }
  uintptr_t enginePtr() const { return reinterpret_cast<uintptr_t>(engine_.get()); }

  int get_rpc_port() { return engine_ ? engine_->getRpcServerPort() : -1; }

  // ---------------- buffers ----------------

  uintptr_t allocate_managed_buffer(size_t length) {
    if (!ready("allocate_managed_buffer")) return 0;
    py::gil_scoped_release nogil;
    uint64_t addr = 0;
    Status st = allocator_->allocate(length, addr);
    if (!st.ok()) {
      fail(st, "allocate_managed_buffer");
      return 0;
    }
    return addr;
  }

  int free_managed_buffer(uintptr_t addr, size_t length) {
    if (!ready("free_managed_buffer")) return -1;
    Status st = allocator_->free(addr, length);
    return st.ok() ? 0 : fail(st, "free_managed_buffer");
  }

  uintptr_t get_first_buffer_address(const std::string& segment_name) {
    if (!ready("get_first_buffer_address")) return 0;
    py::gil_scoped_release nogil;
    ferry::SegmentID id;
    if (!segment(segment_name, id).ok()) return 0;
    ferry::SegmentInfo info;
    if (!engine_->getSegmentInfo(id, info).ok() || info.buffers.empty()) return 0;
    return info.buffers[0].base;
  }

  int write_bytes_to_buffer(uintptr_t dest, py::bytes src, size_t length) {
    if (!ready("write_bytes_to_buffer")) return -1;
    std::string_view data = src;
    if (length > data.size())
      return fail(Status::InvalidArgument("length exceeds the bytes given"), "write_bytes_to_buffer");
    Status st = ferry::ext::checkRegistered(*engine_, reinterpret_cast<const void*>(dest), length);
    if (st.ok()) st = ferry::ext::copyLocal(*engine_, reinterpret_cast<void*>(dest), data.data(), length);
    return st.ok() ? 0 : fail(st, "write_bytes_to_buffer");
  }

  py::bytes read_bytes_from_buffer(uintptr_t source, size_t length) {
    if (!engine_) throw std::runtime_error("read_bytes_from_buffer: engine not initialized");
    Status st = ferry::ext::checkRegistered(*engine_, reinterpret_cast<const void*>(source), length);
    if (!st.ok()) throw std::runtime_error("read_bytes_from_buffer: " + st.ToString());
    // Straight into the bytes object (one copy; the driver's when `source` is GPU memory).
    auto out = py::reinterpret_steal<py::bytes>(PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(length)));
    if (!out) throw py::error_already_set();
    st = ferry::ext::copyLocal(*engine_, PyBytes_AS_STRING(out.ptr()), reinterpret_cast<const void*>(source), length);
    if (!st.ok()) throw std::runtime_error("read_bytes_from_buffer: " + st.ToString());
    return out;
  }

  // `location`: Mooncake's optional argument ("*": found by the engine, GPU memory included;
  // "cpu:N", "cuda:N": checked against what the address is).
  int register_memory(uintptr_t addr, size_t capacity, const std::string& location) {
    if (!ready("register_memory")) return -1;
    ferry::MemoryOptions o;
    o.location = location;
    Status st = engine_->registerLocalMemory(reinterpret_cast<void*>(addr), capacity, o);
    return st.ok() ? 0 : fail(st, "register_memory");
  }

  int unregister_memory(uintptr_t addr) {
    if (!ready("unregister_memory")) return -1;
    py::gil_scoped_release nogil;  // waits for peers' in-flight accesses
    Status st = engine_->unregisterLocalMemory(reinterpret_cast<void*>(addr));
    return st.ok() ? 0 : fail(st, "unregister_memory");
  }

  int batch_register_memory(const std::vector<uintptr_t>& addrs, const std::vector<size_t>& sizes,
                            const std::string& location) {
    if (!ready("batch_register_memory")) return -1;
    if (location == ferry::kWildcardLocation) {
      Status st = engine_->registerLocalMemory(toPtrs(addrs), sizes);
      return st.ok() ? 0 : fail(st, "batch_register_memory");
    }
    if (addrs.size() != sizes.size())
      return fail(Status::InvalidArgument("buffer_addresses and capacities differ in length"), "batch_register_memory");
    // All or nothing, as the list form of the C++ call.
    ferry::MemoryOptions o;
    o.location = location;
    for (size_t i = 0; i < addrs.size(); ++i) {
      Status st = engine_->registerLocalMemory(reinterpret_cast<void*>(addrs[i]), sizes[i], o);
      if (!st.ok()) {
        for (size_t j = 0; j < i; ++j) engine_->unregisterLocalMemory(reinterpret_cast<void*>(addrs[j])).IgnoreError();
        return fail(st, "batch_register_memory");
      }
    }
    return 0;
  }

  int batch_unregister_memory(const std::vector<uintptr_t>& addrs) {
    if (!ready("batch_unregister_memory")) return -1;
    py::gil_scoped_release nogil;
    Status st = engine_->unregisterLocalMemory(toPtrs(addrs));
    return st.ok() ? 0 : fail(st, "batch_unregister_memory");
  }

  // ---------------- synchronous transfers ----------------

  int transfer_sync_write(const std::string& target, uintptr_t buffer, uintptr_t peer, size_t length,
                          const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    return transfer_sync(target, buffer, peer, length, Opcode::WRITE, std::nullopt, hint, priority, deadline_ns, checksum);
  }
  int transfer_sync_read(const std::string& target, uintptr_t buffer, uintptr_t peer, size_t length,
                         const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    return transfer_sync(target, buffer, peer, length, Opcode::READ, std::nullopt, hint, priority, deadline_ns, checksum);
  }
  int transfer_sync(const std::string& target, uintptr_t buffer, uintptr_t peer, size_t length,
                    Opcode op, std::optional<Notify> notify, const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    return batch_transfer_sync(target, {buffer}, {peer}, {length}, op, std::move(notify), hint, priority, deadline_ns, checksum);
  }

  int batch_transfer_sync_write(const std::string& target, const std::vector<uintptr_t>& buffers,
                                const std::vector<uintptr_t>& peers, const std::vector<size_t>& lengths,
                                const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    return batch_transfer_sync(target, buffers, peers, lengths, Opcode::WRITE, std::nullopt, hint, priority, deadline_ns, checksum);
  }
  int batch_transfer_sync_read(const std::string& target, const std::vector<uintptr_t>& buffers,
                               const std::vector<uintptr_t>& peers, const std::vector<size_t>& lengths,
                               const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    return batch_transfer_sync(target, buffers, peers, lengths, Opcode::READ, std::nullopt, hint, priority, deadline_ns, checksum);
  }

  int batch_transfer_sync(const std::string& target, const std::vector<uintptr_t>& buffers,
                          const std::vector<uintptr_t>& peers, const std::vector<size_t>& lengths,
                          Opcode op, std::optional<Notify> notify, const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    if (!ready("transfer_sync")) return -1;
    // Nothing to move is done at once (Mooncake's vLLM connector sends an empty batch when
    // the decode side already holds the whole prompt).
    if (buffers.empty() && peers.empty() && lengths.empty()) return 0;
    py::gil_scoped_release nogil;
    ferry::BatchID b = 0;
    Status st = submit(target, buffers, peers, lengths, op, notify ? &*notify : nullptr, CallOptions{hint, priority, deadline_ns, checksum}, b);
    if (!st.ok()) return fail(st, "transfer_sync");
    return waitAndRelease(b, "transfer_sync");
  }

  // Waits for batch `b` (bounded), releases it; 0 when every task completed, else -1 with a
  // log line naming `call`. Called without the GIL.
  int waitAndRelease(ferry::BatchID b, const char* call) {
    ferry::TransferStatus ts;
    Status st = engine_->waitTransfer(b, ts, waitLimit());
    int rc = (st.ok() && ts.s == ferry::COMPLETED) ? 0 : -1;
    if (rc != 0)
      fail(st.ok() ? Status::InternalError(std::string("transfer ended ") + ferry::ToString(ts.s)) : st, call);
    freeWhenSettled(b);
    return rc;
  }

  // ---------------- stream-ordered transfers ----------------

  // Returns once the transfer is ordered on the stream (ext::submitOnStream); raises
  // RuntimeError when it cannot be, with the reason (no CUDA here among them).
  void batch_transfer_on_cuda(const char* call, const std::string& target, const std::vector<uintptr_t>& buffers,
                              const std::vector<uintptr_t>& peers, const std::vector<size_t>& lengths, Opcode op,
                              uintptr_t stream, const std::string& hint) {
    if (!engine_) throw std::runtime_error(std::string(call) + ": engine not initialized");
    Status st;
    {
      py::gil_scoped_release nogil;
      std::vector<ferry::Request> reqs;
      st = requests(target, buffers, peers, lengths, op, CallOptions{hint}, reqs);
      if (st.ok()) st = ferry::ext::submitOnStream(*engine_, reqs, reinterpret_cast<void*>(stream));
    }
    if (!st.ok()) throw std::runtime_error(std::string(call) + ": " + st.ToString());
  }

  // ---------------- asynchronous transfers ----------------

  int64_t transfer_submit_write(const std::string& target, uintptr_t buffer, uintptr_t peer,
                                size_t length, const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    if (!ready("transfer_submit_write")) return -1;
    py::gil_scoped_release nogil;
    ferry::BatchID b = 0;
    Status st = submit(target, {buffer}, {peer}, {length}, Opcode::WRITE, nullptr, CallOptions{hint, priority, deadline_ns, checksum}, b);
    if (!st.ok()) return fail(st, "transfer_submit_write");
    return static_cast<int64_t>(b);
  }

  // 1 completed, 0 in progress, -1 failed (or unknown id), -2 timed out. A final answer
  // releases the batch: its status has been taken.
  int transfer_check_status(int64_t batch_id) {
    if (!ready("transfer_check_status")) return -1;
    if (takeEmpty(batch_id)) return 1;
    ferry::TransferStatus ts;
    Status st = engine_->getTransferStatus(static_cast<ferry::BatchID>(batch_id), ts);
    if (!st.ok()) return fail(st, "transfer_check_status");
    if (ts.s == ferry::PENDING || ts.s == ferry::INITIAL) return 0;
    py::gil_scoped_release nogil;
    freeWhenSettled(static_cast<ferry::BatchID>(batch_id));
    if (ts.s == ferry::COMPLETED) return 1;
    return ts.s == ferry::TIMEOUT ? -2 : -1;
  }

  uint64_t batch_transfer_async_write(const std::string& target, const std::vector<uintptr_t>& buffers,
                                      const std::vector<uintptr_t>& peers,
                                      const std::vector<size_t>& lengths, const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    return batch_transfer_async(target, buffers, peers, lengths, Opcode::WRITE, hint, priority, deadline_ns, checksum);
  }
  uint64_t batch_transfer_async_read(const std::string& target, const std::vector<uintptr_t>& buffers,
                                     const std::vector<uintptr_t>& peers,
                                     const std::vector<size_t>& lengths, const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    return batch_transfer_async(target, buffers, peers, lengths, Opcode::READ, hint, priority, deadline_ns, checksum);
  }
  uint64_t batch_transfer_async(const std::string& target, const std::vector<uintptr_t>& buffers,
                                const std::vector<uintptr_t>& peers, const std::vector<size_t>& lengths,
                                Opcode op, const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    if (!ready("batch_transfer_async")) return 0;
    if (buffers.empty() && peers.empty() && lengths.empty()) return emptyBatch();
    py::gil_scoped_release nogil;
    ferry::BatchID b = 0;
    Status st = submit(target, buffers, peers, lengths, op, nullptr, CallOptions{hint, priority, deadline_ns, checksum}, b);
    if (!st.ok()) {
      fail(st, "batch_transfer_async");
      return 0;
    }
    return b;
  }

  // XXH3-64 of [peer_buffer_address, +length) computed by the peer (TransferEngine::digest);
  // -1 on failure (a checksum is never negative here: it comes back as a Python int >= 0).
  py::int_ digest(const std::string& target, uintptr_t peer, size_t length) {
    if (!ready("digest")) return py::int_(-1);
    uint64_t sum = 0;
    Status st;
    {
      py::gil_scoped_release nogil;
      ferry::SegmentID seg;
      st = segment(target, seg);
      if (st.ok()) st = engine_->digest(seg, peer, length, sum);
    }
    if (!st.ok()) return py::int_(fail(st, "digest"));
    return py::int_(sum);
  }

  // Slices that failed their end-to-end checksum so far (config `checksum` / FERRY_CHECKSUM=1).
  uint64_t get_checksum_mismatches() {
    return engine_ ? ferry::ext::checksumMismatches(*engine_) : 0;
  }

  // ---------------- paged transfers ----------------

  // One paged transfer (TransferEngine::submitPagedTransfer) in a batch of its own; NumPy
  // int32/int64 index arrays are read in place, other sequences converted to int64.
  Status paged(const std::string& target, uintptr_t buffer, uintptr_t peer, size_t page_size,
               const py::object& local_list, const py::object& remote_list, Opcode op, size_t layers,
               uint64_t local_stride, uint64_t remote_stride, const CallOptions& o, ferry::BatchID& out) {
    auto indices = [](const py::array& a, ferry::PagedRequest::IndexType& type) -> Status {
      if (a.ndim() != 1 || !(a.flags() & py::array::c_style))
        return Status::InvalidArgument("page indices must be a one-dimensional contiguous array");
      if (a.dtype().is(py::dtype::of<int32_t>())) type = ferry::PagedRequest::INT32;
      else if (a.dtype().is(py::dtype::of<int64_t>())) type = ferry::PagedRequest::INT64;
      else return Status::InvalidArgument("page indices must be int32 or int64");
      return Status::OK();
    };
    const py::array local_pages = py::array::ensure(local_list), remote_pages = py::array::ensure(remote_list);
    if (!local_pages || !remote_pages) {
      PyErr_Clear();
      return Status::InvalidArgument("page indices must be arrays or sequences of integers");
    }
    ferry::PagedRequest p;
    ferry::PagedRequest::IndexType remote_type;
    FERRY_RETURN_IF_ERROR(indices(local_pages, p.index_type));
    FERRY_RETURN_IF_ERROR(indices(remote_pages, remote_type));
    if (remote_type != p.index_type) return Status::InvalidArgument("the two index arrays differ in type");
    if (local_pages.size() != remote_pages.size())
      return Status::InvalidArgument("local_pages and remote_pages differ in length");
    p.opcode = op == Opcode::READ ? ferry::Request::READ : ferry::Request::WRITE;
    p.local_base = reinterpret_cast<void*>(buffer);
    p.remote_base = peer;
    p.page_size = page_size;
    p.local_pages = local_pages.data();
    p.remote_pages = remote_pages.data();
    p.num_pages = static_cast<size_t>(local_pages.size());
    p.num_layers = layers;
    p.local_layer_stride = local_stride;
    p.remote_layer_stride = remote_stride;
    FERRY_RETURN_IF_ERROR(o.check());
    p.transport_hint = o.hint.empty() ? nullptr : o.hint.c_str();
    p.priority = o.priority;
    p.deadline_ns = o.deadline_ns;
    p.checksum = o.checksum;
    py::gil_scoped_release nogil;  // the arrays stay referenced until we return
    FERRY_RETURN_IF_ERROR(segment(target, p.target_id));
    ferry::BatchID b = engine_->allocateBatch(1);
    if (b == 0) return Status::InternalError("cannot allocate a batch");
    Status st = engine_->submitPagedTransfer(b, p);
    if (!st.ok()) {
      freeWhenSettled(b);
      return st;
    }
    out = b;
    return Status::OK();
  }

  int paged_transfer_sync(const std::string& target, uintptr_t buffer, uintptr_t peer, size_t page_size,
                          const py::object& local_pages, const py::object& remote_pages, Opcode op, size_t layers,
                          uint64_t local_stride, uint64_t remote_stride, const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    if (!ready("paged_transfer_sync")) return -1;
    ferry::BatchID b = 0;
    Status st = paged(target, buffer, peer, page_size, local_pages, remote_pages, op, layers, local_stride,
                      remote_stride, CallOptions{hint, priority, deadline_ns, checksum}, b);
    if (!st.ok()) return fail(st, "paged_transfer_sync");
    py::gil_scoped_release nogil;
    return waitAndRelease(b, "paged_transfer_sync");
  }

  uint64_t paged_transfer_async(const std::string& target, uintptr_t buffer, uintptr_t peer, size_t page_size,
                                const py::object& local_pages, const py::object& remote_pages, Opcode op,
                                size_t layers, uint64_t local_stride, uint64_t remote_stride, const std::string& hint, int priority, uint64_t deadline_ns, bool checksum) {
    if (!ready("paged_transfer_async")) return 0;
    ferry::BatchID b = 0;
    Status st = paged(target, buffer, peer, page_size, local_pages, remote_pages, op, layers, local_stride,
                      remote_stride, CallOptions{hint, priority, deadline_ns, checksum}, b);
    if (!st.ok()) {
      fail(st, "paged_transfer_async");
      return 0;
    }
    return b;
  }

  // 0 once no task of the batch moves any more (TransferEngine::cancelTransfer: its
  // buffers may be reused; unfinished tasks end CANCELED, so the batch's status call then
  // returns -1 and releases it); -1 when that cannot be promised or the id is unknown.
  int cancel_transfer(int64_t batch_id) {
    if (!ready("cancel_transfer")) return -1;
    py::gil_scoped_release nogil;
    Status st = engine_->cancelTransfer(static_cast<ferry::BatchID>(batch_id));
    return st.ok() ? 0 : fail(st, "cancel_transfer");
  }

  // Waits for every batch; 0 if all completed, -1 if any failed, timed out or is unknown.
  int get_batch_transfer_status(const std::vector<int64_t>& batch_ids) {
    if (!ready("get_batch_transfer_status")) return -1;
    py::gil_scoped_release nogil;
    int rc = 0;
    for (int64_t id : batch_ids) {
      if (takeEmpty(id)) continue;  // nothing to move: done
      ferry::TransferStatus ts;
      auto b = static_cast<ferry::BatchID>(id);
      Status st = engine_->waitTransfer(b, ts, waitLimit());
      if (!st.ok() || ts.s != ferry::COMPLETED) {
        fail(st.ok() ? Status::InternalError(std::string("batch ") + std::to_string(id) + " ended " +
                                             ferry::ToString(ts.s))
                     : st,
             "get_batch_transfer_status");
        rc = -1;
      }
      if (st.ok()) freeWhenSettled(b);
    }
    return rc;
  }

  // ---------------- notifications, topology, probe ----------------

  std::vector<Notify> get_notifies() {
    std::vector<Notify> out;
    if (!ready("get_notifies")) return out;
    std::vector<ferry::Notification> got;
    engine_->receiveNotification(got).IgnoreError();
    for (auto& n : got) out.push_back({std::move(n.name), std::move(n.msg)});
    return out;
  }

  std::string get_local_topology(std::optional<std::string> device_name) {
    std::string out;
    Status st = ferry::localTopologyJson(device_name.value_or(device_filter_), out);
    if (!st.ok()) {
      fail(st, "get_local_topology");
      return "{}";
    }
    return out;
  }

  int send_probe(const std::string& peer) {
    if (!ready("send_probe")) return -1;
    py::gil_scoped_release nogil;
    Status st = ferry::ext::probe(*engine_, peer);
    return st.ok() ? 0 : fail(st, "send_probe");
  }

 private:
  bool ready(const char* call) {
    if (engine_) return true;
    fail(Status::Unavailable("engine not initialized: call initialize() first"), call);
    return false;
  }

  static std::vector<void*> toPtrs(const std::vector<uintptr_t>& addrs) {
    std::vector<void*> out;
    for (auto a : addrs) out.push_back(reinterpret_cast<void*>(a));
    return out;
  }

  std::chrono::milliseconds waitLimit() const {
    // The engine's own transfer timeout settles every task; this only bounds the wait.
    return std::chrono::milliseconds(
        ferry::ext::engineConfig(*engine_).get<int64_t>("transfer_timeout_ms") + 10000);
  }

  // Segments stay open for the engine's lifetime: names are reused call after call.
  Status segment(const std::string& name, ferry::SegmentID& id) {
    std::lock_guard lock(mu_);
    auto it = segments_.find(name);
    if (it != segments_.end()) {
      id = it->second;
      return Status::OK();
    }
    Status st = engine_->openSegment(id, name);
    if (st.ok()) segments_[name] = id;
    return st;
  }

  // The requests of one call, to `target` (opened on first use); `o` must outlive them.
  Status requests(const std::string& target, const std::vector<uintptr_t>& buffers,
                  const std::vector<uintptr_t>& peers, const std::vector<size_t>& lengths, Opcode op,
                  const CallOptions& o, std::vector<ferry::Request>& reqs) {
    if (buffers.size() != peers.size() || buffers.size() != lengths.size())
      return Status::InvalidArgument("buffers, peer_buffer_addresses and lengths differ in length");
    if (buffers.empty()) return Status::InvalidArgument("no transfer given");
    ferry::SegmentID seg;
    FERRY_RETURN_IF_ERROR(segment(target, seg));
    reqs.reserve(buffers.size());
    FERRY_RETURN_IF_ERROR(o.check());
    for (size_t i = 0; i < buffers.size(); ++i) {
      reqs.push_back({op == Opcode::READ ? ferry::Request::READ : ferry::Request::WRITE,
                      reinterpret_cast<void*>(buffers[i]), seg, peers[i], lengths[i],
                      o.hint.empty() ? nullptr : o.hint.c_str()});  // pins the transport
      reqs.back().priority = o.priority;
      reqs.back().deadline_ns = o.deadline_ns;
      reqs.back().checksum = o.checksum;
    }
    return Status::OK();
  }

  Status submit(const std::string& target, const std::vector<uintptr_t>& buffers,
                const std::vector<uintptr_t>& peers, const std::vector<size_t>& lengths, Opcode op,
                const Notify* notify, const CallOptions& o, ferry::BatchID& out) {
    std::vector<ferry::Request> reqs;
    FERRY_RETURN_IF_ERROR(requests(target, buffers, peers, lengths, op, o, reqs));
    ferry::BatchID b = engine_->allocateBatch(reqs.size());
    if (b == 0) return Status::InvalidArgument("cannot allocate a batch of " + std::to_string(reqs.size()));
    Status st = notify ? engine_->submitTransfer(b, reqs, ferry::Notification{notify->name, notify->msg})
                       : engine_->submitTransfer(b, reqs);
    if (!st.ok()) {
      freeWhenSettled(b);
      return st;
    }
    out = b;
    return Status::OK();
  }

  // A valid id for an empty async batch, complete at once (its status is taken once, as any).
  uint64_t emptyBatch() {
    ferry::BatchID b = engine_->allocateBatch(1);
    if (b == 0) return 0;
    std::lock_guard lock(mu_);
    empty_batches_.insert(b);
    return b;
  }
  // True (and the id released) when `id` is an empty batch's.
  bool takeEmpty(int64_t id) {
    {
      std::lock_guard lock(mu_);
      if (empty_batches_.erase(static_cast<ferry::BatchID>(id)) == 0) return false;
    }
    engine_->freeBatch(static_cast<ferry::BatchID>(id)).IgnoreError();
    return true;
  }

  // A batch whose tasks all settled (or never started) is freed; bounded wait otherwise.
  void freeWhenSettled(ferry::BatchID b) {
    ferry::TransferStatus ts;
    if (!engine_->freeBatch(b).ok() && engine_->waitTransfer(b, ts, waitLimit()).ok())
      engine_->freeBatch(b).IgnoreError();
  }

  std::mutex mu_;
  std::shared_ptr<ferry::TransferEngine> engine_;
  std::unique_ptr<ferry::ManagedAllocator> allocator_;
  std::map<std::string, ferry::SegmentID> segments_;
  std::set<ferry::BatchID> empty_batches_;  // ids handed out for empty batches: complete
  std::string device_filter_;
};

}  // namespace ferry_py
