// The C API's calls on an engine: memory, files, segments, batches and transfers,
// notifications and introspection (ferry/ferry.h), each forwarding to the C++ API.
#include <chrono>
#include <string>
#include <vector>

#include "capi/capi_util.h"
#include "ferry/engine_ext.h"
#include "ferry/ferry.h"

using ferry::Status;
using ferry::TransferEngine;
using namespace ferry::capi;

extern "C" {

// ---- memory ----
int ferry_allocate_local_memory(ferry_engine* engine, void** addr, size_t size, const char* location) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(addr, "addr"));
    return e.allocateLocalMemory(addr, size, location ? location : ferry::kWildcardLocation);
  });
}

int ferry_allocate_local_memory_opts(ferry_engine* engine, void** addr, size_t size,
                                     const ferry_memory_options* options) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(addr, "addr"));
    ferry::MemoryOptions native;
    FERRY_RETURN_IF_ERROR(toMemoryOptions(options, native));
    return e.allocateLocalMemory(addr, size, native);
  });
}

int ferry_free_local_memory(ferry_engine* engine, void* addr) {
  return onEngine(__func__, engine,
                  [&](TransferEngine& e) { return e.freeLocalMemory(addr); });
}

int ferry_register_local_memory(ferry_engine* engine, void* addr, size_t size, int permission) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    ferry::Permission native;
    FERRY_RETURN_IF_ERROR(toPermission(permission, native));
    return e.registerLocalMemory(addr, size, native);
  });
}

int ferry_register_local_memory_opts(ferry_engine* engine, void* addr, size_t size,
                                     const ferry_memory_options* options) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    ferry::MemoryOptions native;
    FERRY_RETURN_IF_ERROR(toMemoryOptions(options, native));
    return e.registerLocalMemory(addr, size, native);
  });
}

int ferry_register_local_memory_batch(ferry_engine* engine, void* const* addrs, const size_t* sizes,
                                      size_t count, int permission) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    if (count > 0) {
      FERRY_RETURN_IF_ERROR(need(addrs, "addrs"));
      FERRY_RETURN_IF_ERROR(need(sizes, "sizes"));
    }
    ferry::Permission native;
    FERRY_RETURN_IF_ERROR(toPermission(permission, native));
    return e.registerLocalMemory(std::vector<void*>(addrs, addrs + count),
                                 std::vector<size_t>(sizes, sizes + count), native);
  });
}

int ferry_unregister_local_memory(ferry_engine* engine, void* addr, size_t size) {
  return onEngine(__func__, engine,
                  [&](TransferEngine& e) { return e.unregisterLocalMemory(addr, size); });
}

int ferry_unregister_local_memory_batch(ferry_engine* engine, void* const* addrs, const size_t* sizes,
                                        size_t count) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    if (count > 0) FERRY_RETURN_IF_ERROR(need(addrs, "addrs"));
    std::vector<size_t> size_list;
    if (sizes) size_list.assign(sizes, sizes + count);
    return e.unregisterLocalMemory(std::vector<void*>(addrs, addrs + count), size_list);
  });
}

int ferry_check_registered(ferry_engine* engine, const void* addr, size_t length) {
  return onEngine(__func__, engine,
                  [&](TransferEngine& e) { return ferry::ext::checkRegistered(e, addr, length); });
}

int ferry_overlaps_registered(ferry_engine* engine, const void* addr, size_t length) {
  bool overlaps = false;
  int rc = onEngine(__func__, engine, [&](TransferEngine& e) {
    overlaps = ferry::ext::overlapsRegistered(e, addr, length);
    return Status::OK();
  });
  return rc == FERRY_OK ? (overlaps ? 1 : 0) : rc;
}

int ferry_copy_local(ferry_engine* engine, void* dst, const void* src, size_t length) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    if (length > 0) {
      FERRY_RETURN_IF_ERROR(need(dst, "dst"));
      FERRY_RETURN_IF_ERROR(need(src, "src"));
    }
    return ferry::ext::copyLocal(e, dst, src, length);
  });
}

int ferry_cuda_status(ferry_engine* engine) {
  return onEngine(__func__, engine, [&](TransferEngine& e) { return ferry::ext::cudaStatus(e); });
}

// ---- files ----
int ferry_expose_file(ferry_engine* engine, const char* name, const char* path, int permission, uint64_t size) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(name, "name"));
    FERRY_RETURN_IF_ERROR(need(path, "path"));
    ferry::Permission native;
    FERRY_RETURN_IF_ERROR(toPermission(permission, native));
    return e.exposeFile(name, path, native, size);
  });
}

int ferry_unexpose_file(ferry_engine* engine, const char* name) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(name, "name"));
    return e.unexposeFile(name);
  });
}

// ---- segments ----
int ferry_open_segment(ferry_engine* engine, const char* segment_name, uint64_t* segment_id) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(segment_name, "segment_name"));
    FERRY_RETURN_IF_ERROR(need(segment_id, "segment_id"));
    return e.openSegment(*segment_id, segment_name);
  });
}

int ferry_close_segment(ferry_engine* engine, uint64_t segment_id) {
  return onEngine(__func__, engine, [&](TransferEngine& e) { return e.closeSegment(segment_id); });
}

int ferry_get_segment_info(ferry_engine* engine, uint64_t segment_id, ferry_segment_info** out) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    *out = nullptr;
    ferry::SegmentInfo info;
    FERRY_RETURN_IF_ERROR(e.getSegmentInfo(segment_id, info));
    *out = static_cast<ferry_segment_info*>(pack([&](Packer& p) {
      ferry_segment_info* head = p.take<ferry_segment_info>(1);
      ferry_buffer_info* buffers = p.take<ferry_buffer_info>(info.buffers.size());
      for (size_t i = 0; i < info.buffers.size(); ++i) {
        const char* location = p.text(info.buffers[i].location);
        if (buffers) buffers[i] = {info.buffers[i].base, info.buffers[i].length, location};
      }
      if (head) {
        *head = {info.type == ferry::SegmentInfo::File ? FERRY_SEGMENT_FILE : FERRY_SEGMENT_MEMORY,
                 info.buffers.size(), info.buffers.empty() ? nullptr : buffers};
      }
    }));
    return Status::OK();
  });
}

int ferry_export_local_segment(ferry_engine* engine, char** out) {
  return engineTextOut(__func__, engine, out, [&](TransferEngine& e, std::string& text) -> Status {
    return e.exportLocalSegment(text);
  });
}

int ferry_import_remote_segment(ferry_engine* engine, const char* shared_handle, uint64_t* segment_id) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(shared_handle, "shared_handle"));
    FERRY_RETURN_IF_ERROR(need(segment_id, "segment_id"));
    return e.importRemoteSegment(*segment_id, shared_handle);
  });
}

int ferry_probe(ferry_engine* engine, const char* segment_name) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(segment_name, "segment_name"));
    return ferry::ext::probe(e, segment_name);
  });
}

int ferry_transport_name(ferry_engine* engine, uint64_t segment_id, char** out) {
  return engineTextOut(__func__, engine, out, [&](TransferEngine& e, std::string& text) -> Status {
    text = ferry::ext::transportName(e, segment_id);
    return Status::OK();
  });
}

int ferry_describe_selection(ferry_engine* engine, uint64_t segment_id, char** out) {
  return engineTextOut(__func__, engine, out, [&](TransferEngine& e, std::string& text) -> Status {
    return ferry::ext::describeSelection(e, segment_id, text);
  });
}

int ferry_exposed_files(ferry_engine* engine, uint64_t segment_id, ferry_exposed_file** out, size_t* count) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    FERRY_RETURN_IF_ERROR(need(count, "count"));
    *out = nullptr;
    *count = 0;
    std::vector<ferry::ext::ExposedFile> files;
    FERRY_RETURN_IF_ERROR(ferry::ext::exposedFiles(e, segment_id, files));
    if (files.empty()) return Status::OK();
    *out = static_cast<ferry_exposed_file*>(pack([&](Packer& p) {
      ferry_exposed_file* entries = p.take<ferry_exposed_file>(files.size());
      for (size_t i = 0; i < files.size(); ++i) {
        const char* name = p.text(files[i].name);
        const char* path = p.text(files[i].path);
        if (entries) entries[i] = {files[i].id, name, path, files[i].length, files[i].read_only ? 1 : 0};
      }
    }));
    *count = files.size();
    return Status::OK();
  });
}

int ferry_local_descriptor_json(ferry_engine* engine, char** out) {
  return engineTextOut(__func__, engine, out, [&](TransferEngine& e, std::string& text) -> Status {
    text = ferry::ext::localDescriptorJson(e);
    return Status::OK();
  });
}

int ferry_inspect_transports(ferry_engine* engine, char** out) {
  return engineTextOut(__func__, engine, out, [&](TransferEngine& e, std::string& text) -> Status {
    text = ferry::ext::inspectTransports(e);
    return Status::OK();
  });
}

// ---- batches and transfers ----
int ferry_allocate_batch(ferry_engine* engine, size_t batch_size, uint64_t* batch_id) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(batch_id, "batch_id"));
    *batch_id = e.allocateBatch(batch_size);
    if (*batch_id == 0) return Status::InvalidArgument("no batch of " + std::to_string(batch_size) + " requests");
    return Status::OK();
  });
}

int ferry_free_batch(ferry_engine* engine, uint64_t batch_id) {
  return onEngine(__func__, engine, [&](TransferEngine& e) { return e.freeBatch(batch_id); });
}

int ferry_submit_transfer(ferry_engine* engine, uint64_t batch_id, const ferry_request* requests, size_t count) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    std::vector<ferry::Request> native;
    FERRY_RETURN_IF_ERROR(toRequests(requests, count, native));
    return e.submitTransfer(batch_id, native);
  });
}

int ferry_submit_transfer_with_notification(ferry_engine* engine, uint64_t batch_id,
                                            const ferry_request* requests, size_t count,
                                            const char* name, const char* msg) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(name, "name"));
    FERRY_RETURN_IF_ERROR(need(msg, "msg"));
    std::vector<ferry::Request> native;
    FERRY_RETURN_IF_ERROR(toRequests(requests, count, native));
    return e.submitTransfer(batch_id, native, ferry::Notification{name, msg});
  });
}

int ferry_submit_paged_transfer(ferry_engine* engine, uint64_t batch_id, const ferry_paged_request* request) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(request, "request"));
    const ferry_paged_request& c = *request;
    if (c.index_type != FERRY_PAGES_INT64 && c.index_type != FERRY_PAGES_INT32) {
      return Status::InvalidArgument("index_type " + std::to_string(c.index_type) + " is not a FERRY_PAGES_*");
    }
    ferry::PagedRequest r;
    FERRY_RETURN_IF_ERROR(toOpcode(c.opcode, r.opcode));
    r.local_base = c.local_base;
    r.target_id = c.target_id;
    r.remote_base = c.remote_base;
    r.page_size = c.page_size;
    r.local_pages = c.local_pages;
    r.remote_pages = c.remote_pages;
    r.num_pages = c.num_pages;
    r.index_type = c.index_type == FERRY_PAGES_INT32 ? ferry::PagedRequest::INT32 : ferry::PagedRequest::INT64;
    r.num_layers = c.num_layers == 0 ? 1 : c.num_layers;
    r.local_layer_stride = c.local_layer_stride;
    r.remote_layer_stride = c.remote_layer_stride;
    copyCallFields(c, r);
    return e.submitPagedTransfer(batch_id, r);
  });
}

int ferry_submit_on_stream(ferry_engine* engine, const ferry_request* requests, size_t count, void* stream) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    std::vector<ferry::Request> native;
    FERRY_RETURN_IF_ERROR(toRequests(requests, count, native));
    return ferry::ext::submitOnStream(e, native, stream);
  });
}

int ferry_last_stream_error(ferry_engine* engine) {
  return onEngine(__func__, engine,
                  [&](TransferEngine& e) { return ferry::ext::lastStreamError(e); });
}

int ferry_get_transfer_status(ferry_engine* engine, uint64_t batch_id, size_t task_id, ferry_transfer_status* out) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    ferry::TransferStatus status;
    FERRY_RETURN_IF_ERROR(e.getTransferStatus(batch_id, task_id, status));
    fromStatus(status, out);
    return Status::OK();
  });
}

int ferry_get_transfer_status_list(ferry_engine* engine, uint64_t batch_id, ferry_transfer_status** out,
                                   size_t* count) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    FERRY_RETURN_IF_ERROR(need(count, "count"));
    *out = nullptr;
    *count = 0;
    std::vector<ferry::TransferStatus> list;
    FERRY_RETURN_IF_ERROR(e.getTransferStatus(batch_id, list));
    if (list.empty()) return Status::OK();
    *out = static_cast<ferry_transfer_status*>(pack([&](Packer& p) {
      ferry_transfer_status* entries = p.take<ferry_transfer_status>(list.size());
      for (size_t i = 0; entries && i < list.size(); ++i) fromStatus(list[i], &entries[i]);
    }));
    *count = list.size();
    return Status::OK();
  });
}

int ferry_get_overall_status(ferry_engine* engine, uint64_t batch_id, ferry_transfer_status* out) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    ferry::TransferStatus status;
    FERRY_RETURN_IF_ERROR(e.getTransferStatus(batch_id, status));
    fromStatus(status, out);
    return Status::OK();
  });
}

int ferry_wait_transfer(ferry_engine* engine, uint64_t batch_id, int64_t timeout_ms, ferry_transfer_status* out) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    if (timeout_ms < 0) return Status::InvalidArgument("timeout_ms is negative");
    ferry::TransferStatus status;
    Status st = e.waitTransfer(batch_id, status, std::chrono::milliseconds(timeout_ms));
    fromStatus(status, out);
    return st;
  });
}

int ferry_cancel_transfer(ferry_engine* engine, uint64_t batch_id) {
  return onEngine(__func__, engine, [&](TransferEngine& e) { return e.cancelTransfer(batch_id); });
}

int ferry_cancel_task(ferry_engine* engine, uint64_t batch_id, size_t task_id) {
  return onEngine(__func__, engine,
                  [&](TransferEngine& e) { return e.cancelTransfer(batch_id, task_id); });
}

int ferry_digest(ferry_engine* engine, uint64_t segment_id, uint64_t target_offset, size_t length,
                 uint64_t* checksum) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(checksum, "checksum"));
    return e.digest(segment_id, target_offset, length, *checksum);
  });
}

// ---- notifications ----
int ferry_send_notification(ferry_engine* engine, uint64_t segment_id, const char* name, const char* msg,
                            size_t msg_length) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(name, "name"));
    if (msg_length > 0) FERRY_RETURN_IF_ERROR(need(msg, "msg"));
    return e.sendNotification(segment_id, ferry::Notification{name, std::string(msg ? msg : "", msg_length)});
  });
}

int ferry_receive_notifications(ferry_engine* engine, ferry_notification** out, size_t* count) {
  return onEngine(__func__, engine, [&](TransferEngine& e) -> Status {
    FERRY_RETURN_IF_ERROR(need(out, "out"));
    FERRY_RETURN_IF_ERROR(need(count, "count"));
    *out = nullptr;
    *count = 0;
    std::vector<ferry::Notification> list;
    FERRY_RETURN_IF_ERROR(e.receiveNotification(list));
    if (list.empty()) return Status::OK();
    *out = static_cast<ferry_notification*>(pack([&](Packer& p) {
      ferry_notification* entries = p.take<ferry_notification>(list.size());
      for (size_t i = 0; i < list.size(); ++i) {
        const char* name = p.text(list[i].name);
        const char* msg = p.text(list[i].msg);
        if (entries) entries[i] = {name, msg, list[i].msg.size()};
      }
    }));
    *count = list.size();
    return Status::OK();
  });
}

// ---- introspection ----
int ferry_peer_state_count(ferry_engine* engine, size_t* out) {
  return engineValueOut(__func__, engine, out, [](TransferEngine& e) { return ferry::ext::peerStateCount(e); });
}

int ferry_checksum_mismatches(ferry_engine* engine, uint64_t* out) {
  return engineValueOut(__func__, engine, out, [](TransferEngine& e) { return ferry::ext::checksumMismatches(e); });
}

int ferry_metrics_port(ferry_engine* engine, uint16_t* out) {
  return engineValueOut(__func__, engine, out, [](TransferEngine& e) { return ferry::ext::metricsPort(e); });
}

}  // extern "C"
