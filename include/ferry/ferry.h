/* Ferry's C API: the native engine (ferry/transfer_engine.h) and its extensions
 * (ferry/engine_ext.h) for C and for languages that bind to C.
 *
 * Conventions
 * - Every fallible call returns an int status: FERRY_OK (0), or a negative FERRY_E_* code.
 *   ferry_last_error() then gives the message of that failure, for the calling thread.
 * - Handles are opaque (ferry_engine, ferry_config). Segment, batch and task ids are integers.
 * - Ownership: a string or array a call hands back through an out pointer was allocated for
 *   the caller, in one block, and is released with ferry_free(). Strings returned as
 *   `const char*` (version, names, ferry_last_error) are owned by Ferry and never freed.
 *   Input strings and arrays are read during the call only.
 * - The zero value of every struct is its default: `ferry_request r = {0};` is a high-priority
 *   READ without deadline or checksum, `ferry_memory_options o = {0};` registers read-write
 *   for peers with the location detected.
 * - No C++ exception crosses this API. Calls on one engine may come from several threads at
 *   once, as with the C++ API; a config handle is not synchronised (one thread at a time).
 * Compile-time version: FERRY_VERSION_* (ferry/version.h); run-time: ferry_version().
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <stddef.h>
#include <stdint.h>

#include "ferry/version.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default) /* libferry.so exports the public API only */

/* ---- status codes (the negated ferry::Status::Code) ---- */
enum {
  FERRY_OK = 0,
  FERRY_E_INVALID_ARGUMENT = -1,
  FERRY_E_NOT_FOUND = -2,
  FERRY_E_ALREADY_EXISTS = -3,
  FERRY_E_PERMISSION_DENIED = -4,
  FERRY_E_OUT_OF_RANGE = -5,
  FERRY_E_NOT_SUPPORTED = -6,
  FERRY_E_NOT_IMPLEMENTED = -7,
  FERRY_E_UNAVAILABLE = -8,
  FERRY_E_TIMEOUT = -9,
  FERRY_E_BUSY = -10,
  FERRY_E_CANCELED = -11,
  FERRY_E_CORRUPTED = -12,
  FERRY_E_INTERNAL = -13
};

/* ---- constants (zero is the default of each) ---- */
enum { FERRY_READ = 0, FERRY_WRITE = 1 };
enum { FERRY_PRIO_HIGH = 0, FERRY_PRIO_MEDIUM = 1, FERRY_PRIO_LOW = 2 };
/** Who may touch a registered buffer. */
enum { FERRY_PERM_GLOBAL_READ_WRITE = 0, FERRY_PERM_GLOBAL_READ_ONLY = 1, FERRY_PERM_LOCAL_READ_WRITE = 2 };
enum {
  FERRY_TRANSPORT_UNSPEC = 0,
  FERRY_TRANSPORT_RDMA,
  FERRY_TRANSPORT_MNNVL,
  FERRY_TRANSPORT_SHM,
  FERRY_TRANSPORT_NVLINK,
  FERRY_TRANSPORT_GDS,
  FERRY_TRANSPORT_IOURING,
  FERRY_TRANSPORT_TCP,
  FERRY_TRANSPORT_ASCEND_DIRECT
};
/** Task states, as ferry::TransferStatusEnum. */
enum {
  FERRY_TRANSFER_INITIAL = 0,
  FERRY_TRANSFER_PENDING,
  FERRY_TRANSFER_INVALID,
  FERRY_TRANSFER_CANCELED,
  FERRY_TRANSFER_COMPLETED,
  FERRY_TRANSFER_TIMEOUT,
  FERRY_TRANSFER_FAILED
};
enum { FERRY_PAGES_INT64 = 0, FERRY_PAGES_INT32 = 1 };
enum { FERRY_SEGMENT_MEMORY = 0, FERRY_SEGMENT_FILE = 1 };
enum { FERRY_LOG_DEBUG = 0, FERRY_LOG_INFO, FERRY_LOG_WARN, FERRY_LOG_ERROR, FERRY_LOG_OFF };

typedef struct ferry_engine ferry_engine;
typedef struct ferry_config ferry_config;

/** One transfer (ferry::Request): READ copies <target_id, target_offset> into source, WRITE
 *  the reverse. For a memory segment target_offset is the peer's virtual address. */
typedef struct ferry_request {
  int opcode;                 /* FERRY_READ / FERRY_WRITE */
  void* source;
  uint64_t target_id;         /* from ferry_open_segment / ferry_import_remote_segment */
  uint64_t target_offset;
  size_t length;
  const char* transport_hint; /* NULL or "": the selector chooses; else "tcp", "shm", ... */
  int priority;               /* FERRY_PRIO_* */
  uint64_t deadline_ns;       /* absolute CLOCK_MONOTONIC ns; 0: none */
  int checksum;               /* non-zero: end-to-end XXH3 check of the moved bytes */
} ferry_request;

/** Layers x scattered pages in one task (ferry::PagedRequest): page local_pages[i] of each
 *  layer pairs with remote_pages[i]; page p of layer l lies at base + l * stride + p * page_size. */
typedef struct ferry_paged_request {
  int opcode;
  void* local_base;
  uint64_t target_id;
  uint64_t remote_base;
  size_t page_size;
  const void* local_pages;    /* num_pages indices of index_type */
  const void* remote_pages;
  size_t num_pages;
  int index_type;             /* FERRY_PAGES_INT64 (default) / FERRY_PAGES_INT32 */
  size_t num_layers;          /* 0 means 1 */
  uint64_t local_layer_stride;
  uint64_t remote_layer_stride;
  const char* transport_hint;
  int priority;
  uint64_t deadline_ns;
  int checksum;
} ferry_paged_request;

typedef struct ferry_transfer_status {
  int state;                  /* FERRY_TRANSFER_* */
  size_t transferred_bytes;
} ferry_transfer_status;

/** Options of ferry_allocate_local_memory_opts / ferry_register_local_memory_opts. */
typedef struct ferry_memory_options {
  const char* location;       /* NULL or "*": detected; "cpu:0", "cuda:1" */
  int permission;             /* FERRY_PERM_* */
  int transport;              /* FERRY_TRANSPORT_* */
  const char* shm_path;       /* NULL: none */
  size_t shm_offset;
  int internal;
} ferry_memory_options;

typedef struct ferry_buffer_info {
  uint64_t base;
  uint64_t length;
  const char* location;
} ferry_buffer_info;

/** One block: the buffers and their strings follow the struct; ferry_free releases it. */
typedef struct ferry_segment_info {
  int type;                   /* FERRY_SEGMENT_* */
  size_t num_buffers;
  ferry_buffer_info* buffers;
} ferry_segment_info;

typedef struct ferry_notification {
  const char* name;
  const char* msg;
  size_t msg_length;          /* msg may hold NUL bytes; it is also NUL-terminated */
} ferry_notification;

typedef struct ferry_exposed_file {
  uint32_t id;
  const char* name;
  const char* path;
  uint64_t length;
  int read_only;
} ferry_exposed_file;

/** A log line; `file` and `message` are valid during the call only and not NUL-terminated. */
typedef void (*ferry_log_sink)(void* user_data, int level, const char* file, size_t file_length, int line,
                               int64_t unix_time_us, const char* message, size_t message_length);

/* ---- library ---- */
/** "major.minor.patch" of the library loaded at run time. */
const char* ferry_version(void);
/** The message of this thread's last failed call ("" when none failed yet). */
const char* ferry_last_error(void);
/** "InvalidArgument", ... for a FERRY_E_* code; "OK" for 0; "Unknown" otherwise. */
const char* ferry_status_name(int status);
/** "COMPLETED", ... for a FERRY_TRANSFER_* state; "UNKNOWN" otherwise. */
const char* ferry_transfer_state_name(int state);
/** Releases a block a call handed back (NULL is fine). */
void ferry_free(void* block);
/** Lines below `level` (FERRY_LOG_*) are dropped, process-wide. */
int ferry_set_log_level(int level);
int ferry_log_level(void);
/** Sends every log line to `sink` (called on the logging thread, possibly under engine locks:
 *  return quickly, call no Ferry function); NULL restores stderr. */
void ferry_set_log_sink(ferry_log_sink sink, void* user_data);
/** Markdown tables of every configuration key and environment variable Ferry reads. */
int ferry_options_table(char** out);
/** Whether an NVIDIA GPU is listed and libcuda.so.1 loads (no CUDA call is made): 1 or 0. */
int ferry_cuda_driver_present(void);

/* ---- configuration ---- */
/** A config holding Ferry's defaults; NULL only when out of memory. */
ferry_config* ferry_config_new(void);
void ferry_config_free(ferry_config* config);
/** Merges a JSON file, or inline JSON when the text starts with '{'. */
int ferry_config_load(ferry_config* config, const char* path_or_json);
/** Merges FERRY_CONF / MC_TENT_CONF and the MC_* variables. */
int ferry_config_load_env(ferry_config* config);
/** Sets a '/'-separated key ("rpc/port"), creating intermediate objects. */
int ferry_config_set_string(ferry_config* config, const char* key, const char* value);
int ferry_config_set_int(ferry_config* config, const char* key, int64_t value);
int ferry_config_set_bool(ferry_config* config, const char* key, int value);
int ferry_config_set_double(ferry_config* config, const char* key, double value);
/** The value of a key, converted as ferry::Config::get converts it (a number from a numeric
 *  string; as a string, any non-string value's JSON text); FERRY_E_NOT_FOUND when the key is
 *  absent, FERRY_E_INVALID_ARGUMENT when it cannot be converted. */
int ferry_config_get_string(const ferry_config* config, const char* key, char** out);
int ferry_config_get_int(const ferry_config* config, const char* key, int64_t* out);
int ferry_config_get_bool(const ferry_config* config, const char* key, int* out);
int ferry_config_get_double(const ferry_config* config, const char* key, double* out);
/** Checks every declared key that is set (type, bounds). */
int ferry_config_validate(const ferry_config* config);
/** The whole tree as JSON, secrets redacted. */
int ferry_config_dump(const ferry_config* config, char** out);
/** Ferry's default settings as JSON (what `ferry-info --config` prints). */
int ferry_config_defaults_json(char** out);

/* ---- engine ---- */
/** Starts an engine. `config` NULL: from the environment (FERRY_CONF / MC_*); else a copy of
 *  it is taken. On failure *out is NULL and ferry_last_error() says why. */
int ferry_engine_new(const ferry_config* config, ferry_engine** out);
/** As above, from a JSON file or inline JSON text. */
int ferry_engine_new_from_json(const char* path_or_json, ferry_engine** out);
/** Stops the engine (its batches, connections and registrations go with it). NULL is fine.
 *  No other call on this engine may be running or made afterwards. */
void ferry_engine_free(ferry_engine* engine);
/** This engine's segment name (default "ip:port" of its RPC server). */
int ferry_engine_segment_name(ferry_engine* engine, char** out);
/** The address (host) its RPC server is reachable at, and the port it listens on. */
int ferry_engine_rpc_address(ferry_engine* engine, char** out);
int ferry_engine_rpc_port(ferry_engine* engine, uint16_t* out);
/** The engine's configuration as validated at start, as JSON (secrets redacted). */
int ferry_engine_config_dump(ferry_engine* engine, char** out);

/* ---- memory ---- */
/** Allocates page-aligned memory at `location` (NULL or "*": host) and registers it. */
int ferry_allocate_local_memory(ferry_engine* engine, void** addr, size_t size, const char* location);
int ferry_allocate_local_memory_opts(ferry_engine* engine, void** addr, size_t size,
                                     const ferry_memory_options* options);
/** Unregisters and frees memory from ferry_allocate_local_memory*. */
int ferry_free_local_memory(ferry_engine* engine, void* addr);
/** Registers caller-owned memory; ranges may not overlap a registered range. */
int ferry_register_local_memory(ferry_engine* engine, void* addr, size_t size, int permission);
int ferry_register_local_memory_opts(ferry_engine* engine, void* addr, size_t size,
                                     const ferry_memory_options* options);
/** Registers `count` ranges; on failure none of them stays registered. */
int ferry_register_local_memory_batch(ferry_engine* engine, void* const* addrs, const size_t* sizes,
                                      size_t count, int permission);
/** Unregisters the range at addr (size 0: whatever was registered there). */
int ferry_unregister_local_memory(ferry_engine* engine, void* addr, size_t size);
/** `sizes` may be NULL (each: whatever was registered there). */
int ferry_unregister_local_memory_batch(ferry_engine* engine, void* const* addrs, const size_t* sizes,
                                        size_t count);
/** FERRY_OK when [addr, addr+length) lies inside one registered buffer. */
int ferry_check_registered(ferry_engine* engine, const void* addr, size_t length);
/** 1 when [addr, addr+length) shares a byte with a registered buffer, else 0. */
int ferry_overlaps_registered(ferry_engine* engine, const void* addr, size_t length);
/** Copies within this process, host or GPU memory (the CUDA driver moves GPU bytes). */
int ferry_copy_local(ferry_engine* engine, void* dst, const void* src, size_t length);
/** FERRY_OK when this engine can use CUDA, else why not. */
int ferry_cuda_status(ferry_engine* engine);

/* ---- files ---- */
/** Exposes a local file as the segment "<our name>#<name>"; size > 0 creates/extends it. */
int ferry_expose_file(ferry_engine* engine, const char* name, const char* path, int permission, uint64_t size);
int ferry_unexpose_file(ferry_engine* engine, const char* name);

/* ---- segments ---- */
/** Opens a segment by name ("host:port" with p2p metadata, a registered name with a store,
 *  "SEGMENT#FILE", "file:///PATH"). */
int ferry_open_segment(ferry_engine* engine, const char* segment_name, uint64_t* segment_id);
int ferry_close_segment(ferry_engine* engine, uint64_t segment_id);
/** Kind and buffers of an opened segment (refreshed from the peer); one block to ferry_free. */
int ferry_get_segment_info(ferry_engine* engine, uint64_t segment_id, ferry_segment_info** out);
/** A self-contained string another engine passes to ferry_import_remote_segment. */
int ferry_export_local_segment(ferry_engine* engine, char** out);
int ferry_import_remote_segment(ferry_engine* engine, const char* shared_handle, uint64_t* segment_id);
/** Probes a segment's RPC server (a registered name, or host:port). */
int ferry_probe(ferry_engine* engine, const char* segment_name);
/** The transport first in line for an opened segment ("" if none). */
int ferry_transport_name(ferry_engine* engine, uint64_t segment_id, char** out);
/** The selector's view of an opened segment as JSON. */
int ferry_describe_selection(ferry_engine* engine, uint64_t segment_id, char** out);
/** Files an opened memory segment exposes: *out holds *count entries, one block. */
int ferry_exposed_files(ferry_engine* engine, uint64_t segment_id, ferry_exposed_file** out, size_t* count);
/** This engine's segment descriptor as peers read it (JSON). */
int ferry_local_descriptor_json(ferry_engine* engine, char** out);
/** What each transport runs on, or why it is inert (JSON). */
int ferry_inspect_transports(ferry_engine* engine, char** out);

/* ---- batches and transfers ---- */
/** A batch of up to batch_size requests. */
int ferry_allocate_batch(ferry_engine* engine, size_t batch_size, uint64_t* batch_id);
/** FERRY_E_BUSY while a task of the batch is still pending. */
int ferry_free_batch(ferry_engine* engine, uint64_t batch_id);
/** Submits asynchronously; all requests are validated first (none submitted if one is bad). */
int ferry_submit_transfer(ferry_engine* engine, uint64_t batch_id, const ferry_request* requests, size_t count);
/** As above; the notification reaches each target after all these requests' data is there. */
int ferry_submit_transfer_with_notification(ferry_engine* engine, uint64_t batch_id,
                                            const ferry_request* requests, size_t count,
                                            const char* name, const char* msg);
/** One task of the batch moving many pages (0 pages: nothing submitted). */
int ferry_submit_paged_transfer(ferry_engine* engine, uint64_t batch_id, const ferry_paged_request* request);
/** Submits ordered on a CUDA stream (CUstream; NULL: the legacy default stream). */
int ferry_submit_on_stream(ferry_engine* engine, const ferry_request* requests, size_t count, void* stream);
/** The first stream-ordered transfer that failed after its call returned, or FERRY_OK. */
int ferry_last_stream_error(ferry_engine* engine);
int ferry_get_transfer_status(ferry_engine* engine, uint64_t batch_id, size_t task_id, ferry_transfer_status* out);
/** Every task's status: *out holds *count entries, one block. */
int ferry_get_transfer_status_list(ferry_engine* engine, uint64_t batch_id, ferry_transfer_status** out,
                                   size_t* count);
/** FAILED/TIMEOUT/CANCELED if any task is, else PENDING if any is, else COMPLETED. */
int ferry_get_overall_status(ferry_engine* engine, uint64_t batch_id, ferry_transfer_status* out);
/** Waits (without polling) until every submitted task finished or timeout_ms passed
 *  (FERRY_E_TIMEOUT); fills the overall status. */
int ferry_wait_transfer(ferry_engine* engine, uint64_t batch_id, int64_t timeout_ms, ferry_transfer_status* out);
/** Fenced cancel: on FERRY_OK no byte of the batch lands any more and its buffers may be reused. */
int ferry_cancel_transfer(ferry_engine* engine, uint64_t batch_id);
int ferry_cancel_task(ferry_engine* engine, uint64_t batch_id, size_t task_id);
/** XXH3-64 (seed 0) of [target_offset, +length) of a segment, computed where the bytes are. */
int ferry_digest(ferry_engine* engine, uint64_t segment_id, uint64_t target_offset, size_t length,
                 uint64_t* checksum);

/* ---- notifications ---- */
/** `msg_length` bytes of `msg` (which may hold NUL bytes) under `name`. */
int ferry_send_notification(ferry_engine* engine, uint64_t segment_id, const char* name, const char* msg,
                            size_t msg_length);
/** Takes every pending notification: *out holds *count entries, one block (NULL when 0). */
int ferry_receive_notifications(ferry_engine* engine, ferry_notification** out, size_t* count);

/* ---- introspection ---- */
/** Per-peer states the transports hold now. */
int ferry_peer_state_count(ferry_engine* engine, size_t* out);
/** Slices that failed their end-to-end checksum since the engine started. */
int ferry_checksum_mismatches(ferry_engine* engine, uint64_t* out);
/** The port of this engine's Prometheus /metrics, 0 when off. */
int ferry_metrics_port(ferry_engine* engine, uint16_t* out);

#pragma GCC visibility pop

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* FERRY_FERRY_H */
