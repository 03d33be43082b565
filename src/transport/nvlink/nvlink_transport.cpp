#include "transport/nvlink/nvlink_transport.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/base64.h"
#include "common/log.h"
#include "control/wire.h"
#include "transport/local_peer.h"

namespace ferry {

using nvlink::IpcCache;
using nvlink::IpcMapping;

namespace nvlink {

// One buffer's export, as a peer's descriptor claims it.
struct ExportAttrs {
  cuda::IpcHandle handle;
  uint64_t alloc = 0;      // the allocation's base in the exporting process
  uint64_t buffer_id = 0;  // which allocation that is
  std::string uuid;        // its device
};

std::optional<ExportAttrs> parseExport(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto h = j.find("h"), a = j.find("a"), id = j.find("id"), u = j.find("u");
  if (h == j.end() || a == j.end() || id == j.end() || u == j.end() || !h->is_string() ||
      !a->is_number_unsigned() || !id->is_number_unsigned() || !u->is_string())
    return std::nullopt;
  std::string raw;
  if (!base64Decode(h->get<std::string>(), raw) || raw.size() != cuda::kIpcHandleBytes) return std::nullopt;
  ExportAttrs e;
  std::memcpy(e.handle.bytes, raw.data(), raw.size());
  e.alloc = a->get<uint64_t>();
  e.buffer_id = id->get<uint64_t>();
  e.uuid = u->get<std::string>();
  return e;
}

}  // namespace nvlink

using nvlink::ExportAttrs;
using nvlink::parseExport;

// What this process holds of one same-machine peer instance for nvlink: the proven channel
// (LocalPeer), the exports of the peer's own descriptor, and the allocations mapped for it.
class NvlinkEndpoint : public Endpoint, public std::enable_shared_from_this<NvlinkEndpoint> {
 public:
  explicit NvlinkEndpoint(NvlinkTransport& t) : t_(t), local_(*t.ctx_, wire::controlMessages(), "nvlink") {}

  Status submit(const PeerEndpoint& peer, Slice* const* slices, size_t count) override {
    if (!peer.desc) return Status::NotSupported("nvlink needs the peer's descriptor");
    if (Status st = t_.ctx_->gpu().available(); !st.ok()) return Status::NotSupported("nvlink: " + st.message());
    uint64_t reported = 0;  // told to the engine after the lock
    std::map<int, std::vector<NvlinkTransport::Copy>> by_device;
    NvlinkTransport::Holds holds;
    Status st = prepare(peer, slices, count, reported, by_device, holds);
    if (reported) t_.ctx_->onPeerEpoch(peer.host, peer.port, reported);
    if (!st.ok()) return st;
    holds.endpoint = shared_from_this();
    for (auto& [ordinal, copies] : by_device) t_.dispatch(ordinal, std::move(copies), holds);
    return Status::OK();
  }

 private:
  Status prepare(const PeerEndpoint& peer, Slice* const* slices, size_t count, uint64_t& reported,
                 std::map<int, std::vector<NvlinkTransport::Copy>>& by_device, NvlinkTransport::Holds& holds) {
    std::lock_guard lock(mu_);
    std::shared_ptr<const SegmentDescriptor> proven;
    FERRY_RETURN_IF_ERROR(local_.attachCurrent(peer, reported, proven));
    const SegmentDescriptor& desc = *proven;
    indexLocked(proven);
    // A peer engine in this very process: its addresses are ours (the driver refuses to open
    // a handle in the process that exported it).
    const bool same_process = local_.pid() == ::getpid();
    const BufferDesc* buffer = nullptr;
    const ExportAttrs* exp = nullptr;
    std::shared_ptr<const IpcMapping> mapping;
    int direct_ordinal = -1;
    for (size_t i = 0; i < count; ++i) {
      Slice* s = slices[i];
      const BufferDesc* b = nullptr;
      FERRY_RETURN_IF_ERROR(desc.findForAccess(s->remote, s->length, s->op == Request::WRITE, b));
      if (b != buffer) {
        const auto& e = exports_[static_cast<size_t>(b - desc.buffers.data())];
        if (!e)
          return Status::NotSupported("nvlink: '" + desc.name + "' does not export " + rangeText(b->base, b->length) +
                                      " over CUDA IPC (host, read-only or local-only memory, or not IPC-capable)");
        buffer = b;
        exp = &*e;
        if (same_process) {
          const cuda::PointerInfo info = t_.ctx_->gpu().pointerInfo(b->base);
          if (!info.device || b->base + b->length > info.range_start + info.range_size)
            return Status::InvalidArgument("nvlink: " + rangeText(b->base, b->length) + " of '" + desc.name +
                                           "' is not GPU memory of this process");
          direct_ordinal = info.ordinal;
        } else {
          FERRY_RETURN_IF_ERROR(mappingLocked(desc, *e, mapping));
          holds.mappings.push_back(mapping);
        }
      }
      const auto here = reinterpret_cast<uint64_t>(s->local);
      const bool write = s->op == Request::WRITE;
      if (same_process) {  // inside the buffer (find), which lies in one allocation (above)
        by_device[direct_ordinal].push_back({s, write ? s->remote : here, write ? here : s->remote});
        continue;
      }
      // The peer's word on where its buffer lies is checked against the mapped range.
      if (s->remote < exp->alloc || s->remote - exp->alloc > mapping->size() ||
          s->length > mapping->size() - (s->remote - exp->alloc))
        return Status::InvalidArgument("nvlink: " + rangeText(s->remote, s->length) + " of '" + desc.name +
                                       "' lies outside the GPU allocation it exported");
      const uint64_t there = mapping->base() + (s->remote - exp->alloc);
      by_device[mapping->ordinal()].push_back({s, write ? there : here, write ? here : there});
    }
    return Status::OK();
  }

  // Re-reads the exports when the peer's descriptor changed, and lets go of mappings of
  // allocations it no longer lists. Caller holds mu_.
  void indexLocked(const std::shared_ptr<const SegmentDescriptor>& desc) {
    if (desc == indexed_) return;
    indexed_ = desc;
    exports_.assign(desc->buffers.size(), std::nullopt);
    std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<const IpcMapping>> kept;
    for (size_t i = 0; i < desc->buffers.size(); ++i) {
      const BufferDesc& b = desc->buffers[i];
      auto it = b.attrs.find("nvlink");
      if (it == b.attrs.end() || memoryKindOf(b.location) != kCudaMemory) continue;
      exports_[i] = parseExport(it->second);
      if (!exports_[i]) {
        FERRY_LOG_LIMITED(WARN, bad_attrs_) << "nvlink: '" << desc->name << "' describes the export of "
                                            << rangeText(b.base, b.length) << " in a form we do not read; not used";
        continue;
      }
      auto m = mappings_.find({exports_[i]->alloc, exports_[i]->buffer_id});
      if (m != mappings_.end()) kept.insert(*m);
    }
    mappings_.swap(kept);
  }

  Status mappingLocked(const SegmentDescriptor& desc, const ExportAttrs& e, std::shared_ptr<const IpcMapping>& out) {
    auto it = mappings_.find({e.alloc, e.buffer_id});
    if (it != mappings_.end()) {
      out = it->second;
      return Status::OK();
    }
    const int ordinal = t_.ordinalOfUuid(e.uuid);
    if (ordinal < 0)
      return Status::NotSupported("nvlink: the GPU holding '" + desc.name + "' memory (" + e.uuid +
                                  ") is not visible to this process (CUDA_VISIBLE_DEVICES?)");
    FERRY_RETURN_IF_ERROR(IpcCache::instance().open(t_.ctx_->gpu().table(), ordinal, desc.instance_id, e.alloc,
                                                    e.buffer_id, e.handle, out));
    mappings_[{e.alloc, e.buffer_id}] = out;
    return Status::OK();
  }

  NvlinkTransport& t_;
  std::mutex mu_;  // guards everything below (see the header)
  LocalPeer local_;
  std::shared_ptr<const SegmentDescriptor> indexed_;  // what exports_ was read from
  std::vector<std::optional<ExportAttrs>> exports_;   // parallel to indexed_->buffers
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<const IpcMapping>> mappings_;  // (base, id)
  log::RateLimit bad_attrs_;
};

void NvlinkTransport::declareOptions(OptionTable& t) {
  t.integer("slice_size", 64 << 20, 4096, 1ll << 31, "requests are cut into slices of this size (one copy each)");
}

TransportCaps NvlinkTransport::caps() const {
  return {.local_kinds = kHostMemory | kCudaMemory,
          .remote_kinds = kCudaMemory,
          .reaches_same_machine = true,
          .latency_us = 10,
          .bandwidth_GBps = 100};
}

Status NvlinkTransport::start(TransportContext& ctx) {
  ctx_ = &ctx;
  slice_size_ = ctx.config().get<uint64_t>("transports/nvlink/slice_size");
  return Status::OK();  // CUDA is probed on first use, not here
}

void NvlinkTransport::stop() {
  std::vector<std::unique_ptr<DeviceQueue>> queues;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    queues.swap(queues_);
  }
  for (auto& q : queues) {
    if (!q) continue;
    {
      std::lock_guard lock(q->mu);
      q->stopping = true;
      q->cv.notify_all();
    }
    q->completer.join();  // completes what was enqueued: its copies run to the end anyway
    const cuda::DriverApi& api = ctx_->gpu().api();
    ctx_->gpu()
        .inContext(q->ordinal,
                   [&] {
                     for (cuda::Event e : q->spare) api.event_destroy(e);
                     api.stream_destroy(q->stream);
                     return Status::OK();
                   })
        .IgnoreError();
  }
}

bool NvlinkTransport::canReach(const PeerEndpoint& peer) const {
  // The descriptor's claims only pick the candidate; attaching proves it (LocalPeer).
  if (peer.is_self || peer.file || !peer.desc || !ctx_ || ctx_->localDir().empty() ||
      peer.machine_id != ctx_->machineId())
    return false;
  return peer.desc->speaks("nvlink");
}

Status NvlinkTransport::connect(const PeerEndpoint& peer, std::shared_ptr<Endpoint>& out) {
  out = endpoints_.get(peer.instanceKey(), [this] { return std::make_shared<NvlinkEndpoint>(*this); });
  return Status::OK();
}

Status NvlinkTransport::registerMemory(const BufferDesc& buffer, const MemoryOptions&, std::string& attrs) {
  if (memoryKindOf(buffer.location) != kCudaMemory || buffer.perm != kGlobalReadWrite) return Status::OK();
  cuda::Gpu& gpu = ctx_->gpu();
  const cuda::PointerInfo info = gpu.pointerInfo(buffer.base);
  if (!info.device || !info.legacy_ipc) {
    static log::RateLimit lines;
    FERRY_LOG_LIMITED(INFO, lines) << "nvlink: " << rangeText(buffer.base, buffer.length) << " on " << buffer.location
                                   << " cannot be exported with legacy CUDA IPC (e.g. VMM memory); peers reach it "
                                      "another way";
    return Status::OK();
  }
  cuda::IpcHandle handle;
  FERRY_RETURN_IF_ERROR(gpu.inContext(info.ordinal, [&] {
    return cuda::fromResult(gpu.api(), gpu.api().ipc_export(info.range_start, &handle), "cuIpcGetMemHandle");
  }));
  const std::string uuid = cuda::deviceUuid(gpu.api(), info.ordinal);
  if (uuid.empty()) return Status::Unavailable("nvlink: the driver gives no UUID for cuda:" + std::to_string(info.ordinal));
  nlohmann::json j = {{"h", base64Encode(std::string_view(reinterpret_cast<const char*>(handle.bytes), sizeof handle.bytes))},
                      {"a", info.range_start},
                      {"id", info.buffer_id},
                      {"u", uuid}};
  attrs = j.dump();
  return Status::OK();
}

int NvlinkTransport::ordinalOfUuid(const std::string& uuid) {
  cuda::Gpu& gpu = ctx_->gpu();
  const int n = gpu.deviceCount();
  std::lock_guard lock(mu_);
  if (uuids_.empty()) {
    for (int i = 0; i < n; ++i) uuids_.push_back(cuda::deviceUuid(gpu.api(), i));
  }
  for (size_t i = 0; i < uuids_.size(); ++i)
    if (!uuid.empty() && uuids_[i] == uuid) return static_cast<int>(i);
  return -1;
}

Status NvlinkTransport::queueFor(int ordinal, DeviceQueue*& out) {
  std::lock_guard lock(mu_);
  if (stopped_) return Status::Canceled("nvlink: the transport stopped");
  if (queues_.size() <= static_cast<size_t>(ordinal)) queues_.resize(static_cast<size_t>(ordinal) + 1);
  auto& q = queues_[static_cast<size_t>(ordinal)];
  if (!q) {
    auto made = std::make_unique<DeviceQueue>();
    made->ordinal = ordinal;
    cuda::Gpu& gpu = ctx_->gpu();
    FERRY_RETURN_IF_ERROR(gpu.inContext(ordinal, [&] {
      return cuda::fromResult(gpu.api(), gpu.api().stream_create(&made->stream), "cuStreamCreate");
    }));
    made->completer = std::thread([this, p = made.get()] { completeLoop(*p); });
    q = std::move(made);
  }
  out = q.get();
  return Status::OK();
}

void NvlinkTransport::dispatch(int ordinal, std::vector<Copy> copies, Holds holds) {
  std::vector<std::pair<Slice*, Status>> dropped;  // canceled or out of time: never enqueued
  copies.erase(std::remove_if(copies.begin(), copies.end(),
                              [&](const Copy& c) {
                                Status admit = admitSlice(*c.slice);
                                if (admit.ok()) return false;
                                dropped.emplace_back(c.slice, std::move(admit));
                                return true;
                              }),
               copies.end());
  if (copies.empty()) holds = Holds{};  // released before the slices complete, as below
  for (auto& [s, why] : dropped) completeSlice(s, why);
  if (copies.empty()) return;
  DeviceQueue* q = nullptr;
  Status st = queueFor(ordinal, q);
  std::vector<Slice*> failed;
  if (st.ok()) {
    cuda::Gpu& gpu = ctx_->gpu();
    const cuda::DriverApi& api = gpu.api();
    const auto where = [ordinal] { return "cuda:" + std::to_string(ordinal); };  // for errors only
    std::lock_guard lock(q->mu);
    Pending p;
    st = gpu.inContext(ordinal, [&] {
      size_t enqueued = 0;
      Status enq;
      for (; enqueued < copies.size(); ++enqueued) {
        const Copy& c = copies[enqueued];
        if (int r = api.copy_async(c.dst, c.src, c.slice->length, q->stream)) {
          enq = cuda::fromResult(api, r, "cuMemcpyAsync on " + where());
          break;
        }
      }
      for (size_t k = enqueued; k < copies.size(); ++k) failed.push_back(copies[k].slice);
      for (size_t k = 0; k < enqueued; ++k) p.slices.push_back(copies[k].slice);
      if (p.slices.empty()) return enq;
      if (!q->spare.empty()) {
        p.event = q->spare.back();
        q->spare.pop_back();
      } else if (api.event_create(&p.event) != 0) {
        p.event = nullptr;
      }
      if (!p.event || api.event_record(p.event, q->stream) != 0) {
        // Nothing to wait on but the stream itself: the copies must end before their slices do.
        api.stream_synchronize(q->stream);
        if (p.event) q->spare.push_back(p.event);
        failed.insert(failed.end(), p.slices.begin(), p.slices.end());
        p.slices.clear();
        return Status::InternalError("nvlink: cannot record an event on " + where());
      }
      return enq;
    });
    if (!p.slices.empty()) {
      p.holds = std::move(holds);
      q->pending.push_back(std::move(p));
      q->cv.notify_all();
    }
  } else {
    for (const Copy& c : copies) failed.push_back(c.slice);
  }
  for (Slice* s : failed) completeSlice(s, st.ok() ? Status::InternalError("nvlink: copy not enqueued") : st);
}

void NvlinkTransport::completeLoop(DeviceQueue& q) {
  // The device's context is current while waiting (some drivers want it for events); the
  // queue is drained either way, or its slices would never complete.
  cuda::Gpu& gpu = ctx_->gpu();
  if (!gpu.inContext(q.ordinal, [&] { drain(q); return Status::OK(); }).ok()) drain(q);
}

void NvlinkTransport::drain(DeviceQueue& q) {
  const cuda::DriverApi& api = ctx_->gpu().api();
  const std::string where = "a copy on cuda:" + std::to_string(q.ordinal);
  std::unique_lock lock(q.mu);
  while (true) {
    q.cv.wait(lock, [&] { return q.stopping || !q.pending.empty(); });
    if (q.pending.empty()) return;  // stopping, all done
    Pending p = std::move(q.pending.front());
    q.pending.pop_front();
    lock.unlock();
    const Status st = cuda::fromResult(api, api.event_synchronize(p.event), where);
    // The copies are over: what kept their memory mapped may go before anyone hears they
    // are done (a caller that then closes the segment finds nothing of it left open).
    p.holds = {};
    for (Slice* s : p.slices) completeSlice(s, st);
    lock.lock();
    q.spare.push_back(p.event);
  }
}

std::string NvlinkTransport::inspect() const {
  nlohmann::json j;
  Status st = ctx_ ? ctx_->gpu().available() : Status::Unavailable("not started");
  j["cuda"] = st.ok() ? "available" : st.message();
  j["peer_allocations_mapped"] = IpcCache::instance().openCount();
  {
    std::lock_guard lock(mu_);
    size_t used = 0;
    for (auto& q : queues_) used += q != nullptr;
    j["devices_copying"] = used;
  }
  return j.dump();
}

}  // namespace ferry
