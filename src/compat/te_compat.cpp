// mooncake::TransferEngine (classic API) over ferry::TransferEngine. Each call converts
// types and return conventions and forwards; failures are logged with the native Status.
#include "ferry/te_compat.h"

#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "common/log.h"
#include "compat/classic_init.h"
#include "common/net.h"
#include "common/topology.h"
#include "ferry/engine_ext.h"
#include "ferry/transfer_engine.h"

namespace mooncake {

using ferry::Status;

class Transport {};  // opaque handle returned by installTransport

namespace {

Transport g_transport_handle;

int toInt(const Status& st, const char* call) {
  if (st.ok()) return 0;
  FERRY_LOG(WARN) << call << ": " << st.ToString();
  return -1;
}

TransferStatusEnum fromNative(ferry::TransferStatusEnum s) {
  switch (s) {
    case ferry::INITIAL: return WAITING;
    case ferry::PENDING: return PENDING;
    case ferry::INVALID: return INVALID;
    case ferry::CANCELED: return CANCELED;
    case ferry::COMPLETED: return COMPLETED;
    case ferry::TIMEOUT: return TIMEOUT;
    case ferry::FAILED: return FAILED;
  }
  return FAILED;
}

}  // namespace

TransferEngine::TransferEngine(bool auto_discover) : auto_discover_(auto_discover) {}
TransferEngine::TransferEngine(bool auto_discover, const std::vector<std::string>& filter)
    : auto_discover_(auto_discover), filters_(filter) {}
TransferEngine::~TransferEngine() = default;

int TransferEngine::init(const std::string& metadata_conn_string,
                         const std::string& local_server_name,
                         const std::string& ip_or_host_name, uint64_t rpc_port) {
  if (engine_) {
    FERRY_LOG(WARN) << "init: engine already initialized";
    return -1;
  }
  auto config = std::make_shared<ferry::Config>();
  Status st = ferry::compat::classicConfig(metadata_conn_string, local_server_name,
                                           ip_or_host_name, rpc_port, *config);
  if (!st.ok()) return toInt(st, "init");
  engine_ = std::make_unique<ferry::TransferEngine>(config);
  if (!engine_->available()) {
    st = engine_->initStatus();
    engine_.reset();
    return toInt(st, "init");
  }
  return 0;
}

int TransferEngine::freeEngine() {
  engine_.reset();
  return 0;
}

Transport* TransferEngine::installTransport(const std::string& proto, void**) {
  FERRY_LOG(INFO) << "installTransport(" << proto << "): accepted; Ferry selects transports itself";
  return &g_transport_handle;
}

int TransferEngine::uninstallTransport(const std::string&) { return 0; }

#define FERRY_COMPAT_REQUIRE_INIT(ret)                           \
  do {                                                           \
    if (!engine_) {                                              \
      FERRY_LOG(WARN) << __func__ << ": engine not initialized"; \
      return ret;                                                \
    }                                                            \
  } while (0)

SegmentHandle TransferEngine::openSegment(const std::string& segment_name) {
  FERRY_COMPAT_REQUIRE_INIT(static_cast<SegmentHandle>(-1));
  ferry::SegmentID id;
  Status st = engine_->openSegment(id, segment_name);
  if (!st.ok()) {
    toInt(st, "openSegment");
    return static_cast<SegmentHandle>(-1);
  }
  return id;
}

int TransferEngine::closeSegment(SegmentHandle handle) {
  FERRY_COMPAT_REQUIRE_INIT(-1);
  return toInt(engine_->closeSegment(handle), "closeSegment");
}

int TransferEngine::removeLocalSegment(const std::string&) { return 0; }

Status TransferEngine::CheckSegmentStatus(SegmentID sid) {
  if (!engine_) return Status::Unavailable("engine not initialized");
  ferry::SegmentInfo info;
  return engine_->getSegmentInfo(sid == LOCAL_SEGMENT_ID ? localHandle() : sid, info);
}

int TransferEngine::syncSegmentCache(const std::string& segment_name) {
  FERRY_COMPAT_REQUIRE_INIT(-1);
  if (segment_name.empty()) return 0;  // descriptors refresh themselves on a miss
  ferry::SegmentID id;
  Status st = engine_->openSegment(id, segment_name);
  ferry::SegmentInfo info;
  if (st.ok()) st = engine_->getSegmentInfo(id, info);  // fetches the current descriptor
  if (st.ok()) st = engine_->closeSegment(id);
  return toInt(st, "syncSegmentCache");
}

int TransferEngine::registerLocalMemory(void* addr, size_t length, const std::string& location,
                                        bool remote_accessible, bool) {
  FERRY_COMPAT_REQUIRE_INIT(-1);
  ferry::MemoryOptions o;
  o.location = location;
  o.perm = remote_accessible ? ferry::kGlobalReadWrite : ferry::kLocalReadWrite;
  return toInt(engine_->registerLocalMemory(addr, length, o), "registerLocalMemory");
}

int TransferEngine::unregisterLocalMemory(void* addr, bool) {
  FERRY_COMPAT_REQUIRE_INIT(-1);
  return toInt(engine_->unregisterLocalMemory(addr), "unregisterLocalMemory");
}

int TransferEngine::registerLocalMemoryBatch(const std::vector<BufferEntry>& buffer_list,
                                             const std::string& location) {
  FERRY_COMPAT_REQUIRE_INIT(-1);
  for (size_t i = 0; i < buffer_list.size(); ++i) {
    if (registerLocalMemory(buffer_list[i].addr, buffer_list[i].length, location) != 0) {
      for (size_t j = 0; j < i; ++j)
        engine_->unregisterLocalMemory(buffer_list[j].addr).IgnoreError();
      return -1;
    }
  }
  return 0;
}

int TransferEngine::unregisterLocalMemoryBatch(const std::vector<void*>& addr_list) {
  FERRY_COMPAT_REQUIRE_INIT(-1);
  return toInt(engine_->unregisterLocalMemory(addr_list), "unregisterLocalMemoryBatch");
}

bool TransferEngine::checkOverlap(void* addr, uint64_t length) {
  if (!engine_) return false;
  return ferry::ext::overlapsRegistered(*engine_, addr, length);
}

BatchID TransferEngine::allocateBatchID(size_t batch_size) {
  FERRY_COMPAT_REQUIRE_INIT(INVALID_BATCH_ID);
  ferry::BatchID id = engine_->allocateBatch(batch_size);
  return id == 0 ? INVALID_BATCH_ID : id;
}

Status TransferEngine::freeBatchID(BatchID batch_id) {
  if (!engine_) return Status::Unavailable("engine not initialized");
  return engine_->freeBatch(batch_id);
}

ferry::SegmentID TransferEngine::localHandle() {
  std::call_once(self_once_, [&] {
    Status st = engine_->openSegment(self_handle_, engine_->getSegmentName());
    if (!st.ok()) FERRY_LOG(ERROR) << "cannot open the local segment: " << st.ToString();
  });
  return self_handle_;
}

std::vector<ferry::Request> TransferEngine::toNative(const std::vector<TransferRequest>& entries) {
  std::vector<ferry::Request> out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    ferry::Request r;
    // Pass the opcode's integer through: the native layer rejects values outside the enum.
    std::underlying_type_t<ferry::Request::OpCode> op;
    std::memcpy(&op, &e.opcode, sizeof op);
    std::memcpy(&r.opcode, &op, sizeof op);
    r.source = e.source;
    r.target_id = e.target_id == LOCAL_SEGMENT_ID ? localHandle() : e.target_id;
    r.target_offset = e.target_offset;
    r.length = e.length;
    out.push_back(r);
  }
  return out;
}

Status TransferEngine::submitTransfer(BatchID batch_id,
                                      const std::vector<TransferRequest>& entries) {
  if (!engine_) return Status::Unavailable("engine not initialized");
  return engine_->submitTransfer(batch_id, toNative(entries));
}

Status TransferEngine::submitTransferWithNotify(BatchID batch_id,
                                                const std::vector<TransferRequest>& entries,
                                                TransferMetadata::NotifyDesc notify_msg) {
  if (!engine_) return Status::Unavailable("engine not initialized");
  return engine_->submitTransfer(batch_id, toNative(entries),
                                 ferry::Notification{notify_msg.name, notify_msg.notify_msg});
}

Status TransferEngine::getTransferStatus(BatchID batch_id, size_t task_id,
                                         TransferStatus& status) {
  if (!engine_) return Status::Unavailable("engine not initialized");
  ferry::TransferStatus ts;
  Status st = engine_->getTransferStatus(batch_id, task_id, ts);
  if (st.ok()) status = {fromNative(ts.s), ts.transferred_bytes};
  return st;
}

Status TransferEngine::getBatchTransferStatus(BatchID batch_id, TransferStatus& status) {
  if (!engine_) return Status::Unavailable("engine not initialized");
  ferry::TransferStatus ts;
  Status st = engine_->getTransferStatus(batch_id, ts);
  if (st.ok()) status = {fromNative(ts.s), ts.transferred_bytes};
  return st;
}

int TransferEngine::sendNotifyByID(SegmentID target_id, TransferMetadata::NotifyDesc notify_msg) {
  FERRY_COMPAT_REQUIRE_INIT(-1);
  ferry::SegmentID id = target_id == LOCAL_SEGMENT_ID ? localHandle() : target_id;
  return toInt(engine_->sendNotification(id, {notify_msg.name, notify_msg.notify_msg}),
               "sendNotifyByID");
}

int TransferEngine::sendNotifyByName(std::string remote_agent,
                                     TransferMetadata::NotifyDesc notify_msg) {
  FERRY_COMPAT_REQUIRE_INIT(-1);
  ferry::SegmentID id;
  Status st = engine_->openSegment(id, remote_agent);
  if (st.ok()) {
    st = engine_->sendNotification(id, {notify_msg.name, notify_msg.notify_msg});
    engine_->closeSegment(id).IgnoreError();
  }
  return toInt(st, "sendNotifyByName");
}

int TransferEngine::getNotifies(std::vector<TransferMetadata::NotifyDesc>& notifies) {
  FERRY_COMPAT_REQUIRE_INIT(-1);
  std::vector<ferry::Notification> got;
  Status st = engine_->receiveNotification(got);
  for (auto& n : got) notifies.push_back({std::move(n.name), std::move(n.msg)});
  return toInt(st, "getNotifies");
}

std::string TransferEngine::getLocalIpAndPort() {
  if (!engine_) return "";
  return ferry::net::joinHostPort(engine_->getRpcServerAddress(), engine_->getRpcServerPort());
}

int TransferEngine::getRpcPort() { return engine_ ? engine_->getRpcServerPort() : -1; }

std::string TransferEngine::getLocalTopology() {
  std::string filter;
  for (auto& f : filters_) filter += (filter.empty() ? "" : ",") + f;
  std::string out;
  Status st = ferry::localTopologyJson(filter, out);
  if (!st.ok()) {
    FERRY_LOG(WARN) << "getLocalTopology: " << st.ToString();
    return "{}";
  }
  return out;
}

}  // namespace mooncake
