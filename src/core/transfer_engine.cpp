// ferry::TransferEngine: the public face; every call checks the engine started, then
// forwards to the part of EngineImpl that does it.
#include "ferry/transfer_engine.h"

#include "common/log.h"
#include "core/engine.h"

namespace ferry {

namespace {
std::unique_ptr<EngineImpl> fromEnv() {
  auto c = std::make_shared<Config>();
  Status st = c->loadFromEnv();
  if (!st.ok()) st = Status(st.code(), "configuration from the environment: " + st.message());
  return std::make_unique<EngineImpl>(std::move(c), st);
}

std::unique_ptr<EngineImpl> fromPath(const std::string& path) {
  auto c = std::make_shared<Config>();
  Status st = c->load(path);
  if (!st.ok()) st = Status(st.code(), "configuration '" + path + "': " + st.message());
  return std::make_unique<EngineImpl>(std::move(c), st);
}
}  // namespace

TransferEngine::TransferEngine() : impl_(fromEnv()) {}
TransferEngine::TransferEngine(const std::string config_path) : impl_(fromPath(config_path)) {}
TransferEngine::TransferEngine(std::shared_ptr<Config> config)
    : impl_(std::make_unique<EngineImpl>(std::move(config), Status::OK())) {}
TransferEngine::~TransferEngine() = default;

bool TransferEngine::available() const { return impl_->initStatus().ok(); }
Status TransferEngine::initStatus() const { return impl_->initStatus(); }

#define FERRY_REQUIRE_AVAILABLE()                                                   \
  do {                                                                              \
    if (!available())                                                               \
      return Status::Unavailable("engine not available: " +                        \
                                 impl_->initStatus().ToString());                  \
  } while (0)

const std::string TransferEngine::getSegmentName() const { return impl_->segmentName(); }
const std::string TransferEngine::getRpcServerAddress() const { return impl_->rpcHost(); }
uint16_t TransferEngine::getRpcServerPort() const { return impl_->rpcPort(); }

Status TransferEngine::allocateLocalMemory(void** addr, size_t size, Location location) {
  MemoryOptions o;
  o.location = std::move(location);
  return allocateLocalMemory(addr, size, o);
}

Status TransferEngine::allocateLocalMemory(void** addr, size_t size, MemoryOptions& options) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->memory().allocate(addr, size, options);
}

Status TransferEngine::freeLocalMemory(void* addr) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->memory().free(addr);
}

Status TransferEngine::registerLocalMemory(void* addr, size_t size, Permission permission) {
  MemoryOptions o;
  o.perm = permission;
  return registerLocalMemory(addr, size, o);
}

Status TransferEngine::registerLocalMemory(std::vector<void*> addr_list,
                                           std::vector<size_t> size_list, Permission permission) {
  FERRY_REQUIRE_AVAILABLE();
  if (addr_list.size() != size_list.size())
    return Status::InvalidArgument("addr_list has " + std::to_string(addr_list.size()) +
                                   " entries, size_list " + std::to_string(size_list.size()));
  MemoryOptions o;
  o.perm = permission;
  for (size_t i = 0; i < addr_list.size(); ++i) {
    Status st = impl_->memory().registerMemory(addr_list[i], size_list[i], o);
    if (!st.ok()) {
      for (size_t j = 0; j < i; ++j) impl_->memory().unregisterMemory(addr_list[j], size_list[j]).IgnoreError();
      return Status(st.code(), "entry " + std::to_string(i) + ": " + st.message());
    }
  }
  return Status::OK();
}

Status TransferEngine::registerLocalMemory(void* addr, size_t size, MemoryOptions& options) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->memory().registerMemory(addr, size, options);
}

Status TransferEngine::unregisterLocalMemory(void* addr, size_t size) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->memory().unregisterMemory(addr, size);
}

Status TransferEngine::unregisterLocalMemory(std::vector<void*> addr_list,
                                             std::vector<size_t> size_list) {
  FERRY_REQUIRE_AVAILABLE();
  if (!size_list.empty() && size_list.size() != addr_list.size())
    return Status::InvalidArgument("size_list must be empty or match addr_list");
  Status first;
  for (size_t i = 0; i < addr_list.size(); ++i) {
    Status st = impl_->memory().unregisterMemory(addr_list[i], size_list.empty() ? 0 : size_list[i]);
    if (!st.ok() && first.ok()) first = Status(st.code(), "entry " + std::to_string(i) + ": " + st.message());
  }
  return first;
}

Status TransferEngine::exposeFile(const std::string& name, const std::string& path,
                                  Permission permission, uint64_t size) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->fileSegments().expose(name, path, permission, size);
}
Status TransferEngine::unexposeFile(const std::string& name) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->fileSegments().unexpose(name);
}
Status TransferEngine::openSegment(SegmentID& handle, const std::string& segment_name) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->openSegment(handle, segment_name);
}
Status TransferEngine::closeSegment(SegmentID handle) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->closeSegment(handle);
}
Status TransferEngine::getSegmentInfo(SegmentID handle, SegmentInfo& info) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->getSegmentInfo(handle, info);
}
Status TransferEngine::exportLocalSegment(std::string& shared_handle) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->exportLocalSegment(shared_handle);
}
Status TransferEngine::importRemoteSegment(SegmentID& handle, const std::string& shared_handle) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->importRemoteSegment(handle, shared_handle);
}

BatchID TransferEngine::allocateBatch(size_t batch_size) {
  if (!available()) return 0;
  return impl_->batches().allocate(batch_size);
}
Status TransferEngine::freeBatch(BatchID batch_id) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->batches().free(batch_id);
}
Status TransferEngine::submitTransfer(BatchID batch_id, const std::vector<Request>& request_list) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->submitter().submit(batch_id, request_list, nullptr);
}
Status TransferEngine::submitTransfer(BatchID batch_id, const std::vector<Request>& request_list,
                                      const Notification& notifi) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->submitter().submit(batch_id, request_list, &notifi);
}
Status TransferEngine::submitPagedTransfer(BatchID batch_id, const PagedRequest& request) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->submitter().submitPaged(batch_id, request);
}
Status TransferEngine::getTransferStatus(BatchID batch_id, size_t task_id, TransferStatus& status) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->batches().status(batch_id, task_id, status);
}
Status TransferEngine::getTransferStatus(BatchID batch_id, std::vector<TransferStatus>& status_list) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->batches().status(batch_id, status_list);
}
Status TransferEngine::getTransferStatus(BatchID batch_id, TransferStatus& overall_status) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->batches().status(batch_id, overall_status);
}
Status TransferEngine::waitTransfer(BatchID batch_id, TransferStatus& overall_status,
                                    std::chrono::milliseconds timeout) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->batches().wait(batch_id, overall_status, timeout);
}
Status TransferEngine::cancelTransfer(BatchID batch_id) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->batches().cancel(batch_id, nullptr);
}
Status TransferEngine::cancelTransfer(BatchID batch_id, size_t task_id) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->batches().cancel(batch_id, &task_id);
}
Status TransferEngine::digest(SegmentID target_id, uint64_t target_offset, size_t length, uint64_t& checksum) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->digest(target_id, target_offset, length, checksum);
}
Status TransferEngine::sendNotification(SegmentID target_id, const Notification& notifi) {
  FERRY_REQUIRE_AVAILABLE();
  return impl_->sendNotification(target_id, notifi);
}
Status TransferEngine::receiveNotification(std::vector<Notification>& notifi_list) {
  FERRY_REQUIRE_AVAILABLE();
  impl_->notifications().receive(notifi_list);
  return Status::OK();
}

}  // namespace ferry
