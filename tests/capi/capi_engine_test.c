/* The C API's engine calls: memory, files, segments, transfers (plain, with notification,
 * paged, checksummed, canceled, stream-ordered), notifications and introspection, between
 * two engines of this process. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capi_check.h"

static void test_memory(ferry_engine* e, uint8_t* local) {
  /* Caller memory: single, with options, as a list; overlaps refused. */
  CHECK_OK(ferry_register_local_memory(e, local, kBuffer, FERRY_PERM_GLOBAL_READ_WRITE));
  CHECK(ferry_register_local_memory(e, local + kPage, kPage, FERRY_PERM_GLOBAL_READ_WRITE) == FERRY_E_ALREADY_EXISTS);
  CHECK(ferry_register_local_memory(e, local, kBuffer, 7) == FERRY_E_INVALID_ARGUMENT);
  CHECK_OK(ferry_check_registered(e, local + 100, 200));
  CHECK(ferry_check_registered(e, local + kBuffer - 1, 2) != FERRY_OK);
  CHECK(ferry_overlaps_registered(e, local + kBuffer - 1, 2) == 1);
  CHECK(ferry_overlaps_registered(e, local + kBuffer, 2) == 0);
  CHECK(ferry_overlaps_registered(NULL, local, 1) == FERRY_E_INVALID_ARGUMENT);

  uint8_t* extra = aligned_alloc(kPage, 4 * kPage);
  void* addrs[2] = {extra, extra + 2 * kPage};
  size_t sizes[2] = {kPage, kPage};
  CHECK_OK(ferry_register_local_memory_batch(e, addrs, sizes, 2, FERRY_PERM_GLOBAL_READ_ONLY));
  CHECK_OK(ferry_check_registered(e, extra + 2 * kPage, kPage));
  CHECK_OK(ferry_unregister_local_memory_batch(e, addrs, sizes, 2));
  CHECK(ferry_check_registered(e, extra, 1) != FERRY_OK);
  CHECK(ferry_register_local_memory_batch(e, NULL, sizes, 2, 0) == FERRY_E_INVALID_ARGUMENT);
  ferry_memory_options options = {0};
  options.location = "cpu:0";
  options.permission = FERRY_PERM_LOCAL_READ_WRITE;
  CHECK_OK(ferry_register_local_memory_opts(e, extra, 4 * kPage, &options));
  CHECK_OK(ferry_unregister_local_memory_batch(e, addrs, NULL, 1));
  options.transport = 99;
  CHECK(ferry_register_local_memory_opts(e, extra, kPage, &options) == FERRY_E_INVALID_ARGUMENT);
  CHECK(ferry_register_local_memory_opts(e, extra, kPage, NULL) == FERRY_E_INVALID_ARGUMENT);
  free(extra);

  /* Engine-allocated memory, by location and with options. */
  void* a = NULL;
  void* b = NULL;
  CHECK_OK(ferry_allocate_local_memory(e, &a, 1 << 20, NULL));
  CHECK(a != NULL && ((uintptr_t)a % kPage) == 0);
  ferry_memory_options defaults = {0};
  CHECK_OK(ferry_allocate_local_memory_opts(e, &b, 1 << 20, &defaults));
  void* gpu = NULL;
  if (!ferry_cuda_driver_present()) {
    CHECK(ferry_allocate_local_memory(e, &gpu, 1 << 20, "cuda:0") == FERRY_E_NOT_SUPPORTED);
    CHECK(gpu == NULL);
  }
  memset(a, 0x5a, 1 << 20);
  CHECK_OK(ferry_copy_local(e, b, a, 1 << 20));
  CHECK(memcmp(a, b, 1 << 20) == 0);
  CHECK(ferry_copy_local(e, NULL, a, 1) == FERRY_E_INVALID_ARGUMENT);
  CHECK_OK(ferry_free_local_memory(e, a));
  CHECK_OK(ferry_free_local_memory(e, b));
  CHECK(ferry_free_local_memory(e, a) != FERRY_OK);
  CHECK(ferry_allocate_local_memory(e, NULL, 1, NULL) == FERRY_E_INVALID_ARGUMENT);
  if (!ferry_cuda_driver_present()) {
    CHECK(ferry_cuda_status(e) != FERRY_OK);
    CHECK(strstr(ferry_last_error(), "ferry_cuda_status") != NULL);
  }
}

static void test_segments(ferry_engine* e, ferry_engine* peer, uint64_t target, uint64_t remote, const char* dir) {
  ferry_segment_info* info = NULL;
  CHECK_OK(ferry_get_segment_info(e, target, &info));
  int found = 0;
  for (size_t i = 0; info && i < info->num_buffers; ++i) {
    found |= info->buffers[i].base == remote && info->buffers[i].length == kBuffer &&
             info->buffers[i].location != NULL;
  }
  CHECK(info && info->type == FERRY_SEGMENT_MEMORY && found);
  ferry_free(info);
  CHECK(ferry_get_segment_info(e, 9999, &info) != FERRY_OK);

  char* shared = NULL;
  uint64_t imported = 0;
  CHECK_OK(ferry_export_local_segment(peer, &shared));
  CHECK_OK(ferry_import_remote_segment(e, shared, &imported));
  ferry_free(shared);
  CHECK_OK(ferry_close_segment(e, imported));
  CHECK(ferry_import_remote_segment(e, "not a handle", &imported) != FERRY_OK);

  char* name = NULL;
  CHECK_OK(ferry_engine_segment_name(peer, &name));
  CHECK_OK(ferry_probe(e, name));
  CHECK(ferry_probe(e, "127.0.0.1:1") != FERRY_OK);
  ferry_free(name);
  char* text = NULL;
  CHECK_OK(ferry_transport_name(e, target, &text));
  CHECK(text && text[0] != '\0');
  ferry_free(text);
  CHECK_OK(ferry_describe_selection(e, target, &text));
  CHECK(text && strstr(text, "tcp") != NULL);
  ferry_free(text);
  CHECK_OK(ferry_local_descriptor_json(peer, &text));
  CHECK(text && text[0] == '{');
  ferry_free(text);
  CHECK_OK(ferry_inspect_transports(e, &text));
  CHECK(text && strstr(text, "rdma") != NULL);
  ferry_free(text);

  /* A file the peer exposes, listed by its segment and readable as "<peer>#<name>". */
  char path[512];
  snprintf(path, sizeof path, "%s/exposed.bin", dir);
  CHECK_OK(ferry_expose_file(peer, "kv", path, FERRY_PERM_GLOBAL_READ_WRITE, 1 << 20));
  CHECK(ferry_expose_file(peer, "bad", path, 5, 0) == FERRY_E_INVALID_ARGUMENT);
  ferry_exposed_file* files = NULL;
  size_t count = 0;
  CHECK_OK(ferry_get_segment_info(e, target, &info)); /* re-reads the peer's descriptor */
  ferry_free(info);
  CHECK_OK(ferry_exposed_files(e, target, &files, &count));
  CHECK(count == 1 && files && strcmp(files[0].name, "kv") == 0 && files[0].length == (1 << 20) &&
        strcmp(files[0].path, path) == 0 && files[0].read_only == 0);
  ferry_free(files);
  CHECK_OK(ferry_unexpose_file(peer, "kv"));
  CHECK(ferry_unexpose_file(peer, "kv") != FERRY_OK);
  CHECK_OK(ferry_get_segment_info(e, target, &info));
  ferry_free(info);
  CHECK_OK(ferry_exposed_files(e, target, &files, &count));
  CHECK(count == 0 && files == NULL);
  unlink(path);
}

static void test_transfers(ferry_engine* e, ferry_engine* peer, uint64_t target, uint64_t remote, uint8_t* local) {
  uint8_t* back = local + kBuffer / 2;
  const char* hints[2] = {NULL, "tcp"};
  for (int h = 0; h < 2; ++h) {
    fill(local, 1 << 20, (unsigned)h + 1);
    memset(back, 0, 1 << 20);
    ferry_request w[2];
    for (int i = 0; i < 2; ++i) {
      w[i] = request(FERRY_WRITE, local + i * (512 << 10), target, remote + i * (512 << 10), 512 << 10);
      w[i].transport_hint = hints[h];
      w[i].checksum = h;
    }
    run_batch(e, w, 2);
    ferry_request r = request(FERRY_READ, back, target, remote, 1 << 20);
    r.transport_hint = hints[h];
    run_batch(e, &r, 1);
    CHECK(memcmp(local, back, 1 << 20) == 0);
  }

  /* Per-task and whole-batch status; a notification after the data. */
  uint64_t batch = 0;
  ferry_request w = request(FERRY_WRITE, local, target, remote, 64 << 10);
  CHECK_OK(ferry_allocate_batch(e, 4, &batch));
  CHECK_OK(ferry_submit_transfer_with_notification(e, batch, &w, 1, "layer", "done-0"));
  ferry_transfer_status st;
  CHECK_OK(ferry_wait_transfer(e, batch, 10000, &st));
  CHECK(st.state == FERRY_TRANSFER_COMPLETED && st.transferred_bytes == (64 << 10));
  CHECK_OK(ferry_get_transfer_status(e, batch, 0, &st));
  CHECK(st.state == FERRY_TRANSFER_COMPLETED);
  CHECK_OK(ferry_get_overall_status(e, batch, &st));
  CHECK(st.state == FERRY_TRANSFER_COMPLETED);
  CHECK(ferry_get_transfer_status(e, batch, 7, &st) != FERRY_OK);
  ferry_transfer_status* list = NULL;
  size_t count = 0;
  CHECK_OK(ferry_get_transfer_status_list(e, batch, &list, &count));
  CHECK(count == 1 && list && list[0].state == FERRY_TRANSFER_COMPLETED);
  ferry_free(list);
  CHECK_OK(ferry_cancel_transfer(e, batch)); /* nothing left to stop */
  CHECK_OK(ferry_cancel_task(e, batch, 0));
  CHECK_OK(ferry_get_transfer_status(e, batch, 0, &st));
  CHECK(st.state == FERRY_TRANSFER_COMPLETED);
  CHECK(ferry_wait_transfer(e, batch, -1, &st) == FERRY_E_INVALID_ARGUMENT);
  CHECK_OK(ferry_free_batch(e, batch));
  CHECK(ferry_free_batch(e, batch) != FERRY_OK);
  CHECK(ferry_allocate_batch(e, 0, &batch) != FERRY_OK);

  /* Notifications: with the batch above, and one holding a NUL byte. */
  char* my_name = NULL;
  CHECK_OK(ferry_engine_segment_name(e, &my_name));
  uint64_t back_to_me = 0;
  CHECK_OK(ferry_open_segment(peer, my_name, &back_to_me));
  ferry_free(my_name);
  CHECK_OK(ferry_send_notification(e, target, "bin", "a\0b", 3));
  CHECK(ferry_send_notification(e, target, NULL, "x", 1) == FERRY_E_INVALID_ARGUMENT);
  size_t got = 0;
  int saw_layer = 0, saw_binary = 0;
  for (int tries = 0; tries < 500 && got < 2; ++tries) {
    ferry_notification* notes = NULL;
    size_t n = 0;
    CHECK_OK(ferry_receive_notifications(peer, &notes, &n));
    for (size_t i = 0; i < n; ++i) {
      saw_layer |= strcmp(notes[i].name, "layer") == 0 && strcmp(notes[i].msg, "done-0") == 0;
      saw_binary |= strcmp(notes[i].name, "bin") == 0 && notes[i].msg_length == 3 && memcmp(notes[i].msg, "a\0b", 3) == 0;
    }
    got += n;
    ferry_free(notes);
    if (got < 2) usleep(10000);
  }
  CHECK(saw_layer && saw_binary);
  CHECK_OK(ferry_close_segment(peer, back_to_me));

  /* Paged: pages 0..7 land reversed at the target, 32-bit indices, two layers. */
  const size_t stride = 8 * kPage;
  fill(local, 2 * stride, 9);
  int32_t lp[8], rp[8];
  for (int i = 0; i < 8; ++i) lp[i] = i, rp[i] = 7 - i;
  ferry_paged_request pr = {0};
  pr.opcode = FERRY_WRITE;
  pr.local_base = local;
  pr.target_id = target;
  pr.remote_base = remote + (1 << 20);
  pr.page_size = kPage;
  pr.local_pages = lp;
  pr.remote_pages = rp;
  pr.num_pages = 8;
  pr.index_type = FERRY_PAGES_INT32;
  pr.num_layers = 2;
  pr.local_layer_stride = stride;
  pr.remote_layer_stride = stride;
  CHECK_OK(ferry_allocate_batch(e, 1, &batch));
  CHECK_OK(ferry_submit_paged_transfer(e, batch, &pr));
  CHECK_OK(ferry_wait_transfer(e, batch, 10000, &st));
  CHECK(st.state == FERRY_TRANSFER_COMPLETED);
  pr.index_type = 5;
  CHECK(ferry_submit_paged_transfer(e, batch, &pr) == FERRY_E_INVALID_ARGUMENT);
  CHECK_OK(ferry_free_batch(e, batch));
  ferry_request r = request(FERRY_READ, back, target, remote + (1 << 20), 2 * stride);
  run_batch(e, &r, 1);
  int paged_ok = 1;
  for (size_t l = 0; l < 2; ++l)
    for (int i = 0; i < 8; ++i)
      paged_ok &= memcmp(back + l * stride + (size_t)(7 - i) * kPage, local + l * stride + (size_t)i * kPage, kPage) == 0;
  CHECK(paged_ok);

  /* Digest: the same bytes at two places of the target hash alike, other bytes do not. */
  uint64_t d1 = 0, d2 = 0, d3 = 0;
  fill(local, 64 << 10, 3);
  ferry_request twice[2];
  for (int i = 0; i < 2; ++i) twice[i] = request(FERRY_WRITE, local, target, remote + (2 << 20) + (size_t)i * (64 << 10), 64 << 10);
  run_batch(e, twice, 2);
  CHECK_OK(ferry_digest(e, target, remote + (2 << 20), 64 << 10, &d1));
  CHECK_OK(ferry_digest(e, target, remote + (2 << 20) + (64 << 10), 64 << 10, &d2));
  CHECK_OK(ferry_digest(e, target, remote, 64 << 10, &d3));
  CHECK(d1 == d2 && d1 != d3);
  CHECK(ferry_digest(e, target, remote + kBuffer - 1, 2, &d1) != FERRY_OK);

  /* Refusals: bad opcode, NULL requests, a batch that does not exist. */
  ferry_request bad = w;
  bad.opcode = 3;
  CHECK_OK(ferry_allocate_batch(e, 1, &batch));
  CHECK(ferry_submit_transfer(e, batch, &bad, 1) == FERRY_E_INVALID_ARGUMENT);
  CHECK(strstr(ferry_last_error(), "opcode 3") != NULL);
  CHECK(ferry_submit_transfer(e, batch, NULL, 1) == FERRY_E_INVALID_ARGUMENT);
  CHECK_OK(ferry_free_batch(e, batch));
  CHECK(ferry_submit_transfer(e, 123456789, &w, 1) != FERRY_OK);
  CHECK(ferry_submit_transfer(NULL, 1, &w, 1) == FERRY_E_INVALID_ARGUMENT);

  /* Stream-ordered calls need a GPU; without one they say so and nothing failed later. */
  if (!ferry_cuda_driver_present()) {
    CHECK(ferry_submit_on_stream(e, &w, 1, NULL) != FERRY_OK);
    CHECK_OK(ferry_last_stream_error(e));
  }
}

static void test_introspection(ferry_engine* e, ferry_engine* peer) {
  char* text = NULL;
  CHECK_OK(ferry_engine_rpc_address(peer, &text));
  uint16_t port = 0;
  CHECK_OK(ferry_engine_rpc_port(peer, &port));
  CHECK(port != 0 && text && strcmp(text, "127.0.0.1") == 0);
  ferry_free(text);
  CHECK_OK(ferry_engine_config_dump(e, &text));
  CHECK(text && strstr(text, "10000") != NULL);
  ferry_free(text);
  size_t peers = 0;
  CHECK_OK(ferry_peer_state_count(e, &peers));
  CHECK(peers >= 1);
  uint64_t mismatches = 1;
  CHECK_OK(ferry_checksum_mismatches(e, &mismatches));
  CHECK(mismatches == 0);
  uint16_t metrics = 1;
  CHECK_OK(ferry_metrics_port(e, &metrics));
  CHECK(metrics == 0);
  CHECK(ferry_metrics_port(e, NULL) == FERRY_E_INVALID_ARGUMENT);
}

void test_engines(void) {
  ferry_engine* peer = start_engine();
  ferry_engine* e = start_engine();
  if (!peer || !e) return;
  char dir[] = "/tmp/ferry-capi-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);

  uint8_t* local = aligned_alloc(kPage, kBuffer);
  void* remote_ptr = NULL;
  CHECK_OK(ferry_allocate_local_memory(peer, &remote_ptr, kBuffer, "cpu:0"));
  uint64_t remote = (uint64_t)(uintptr_t)remote_ptr;
  test_memory(e, local);

  char* peer_name = NULL;
  uint64_t target = 0;
  CHECK_OK(ferry_engine_segment_name(peer, &peer_name));
  CHECK_OK(ferry_open_segment(e, peer_name, &target));
  CHECK(ferry_open_segment(e, NULL, &target) == FERRY_E_INVALID_ARGUMENT);
  ferry_free(peer_name);

  test_segments(e, peer, target, remote, dir);
  test_transfers(e, peer, target, remote, local);
  test_threads(e, target, remote, local);
  test_introspection(e, peer);

  CHECK_OK(ferry_close_segment(e, target));
  CHECK_OK(ferry_unregister_local_memory(e, local, 0));
  CHECK(ferry_unregister_local_memory(e, local, 0) != FERRY_OK);
  CHECK_OK(ferry_free_local_memory(peer, remote_ptr));
  ferry_engine_free(e);
  ferry_engine_free(peer);
  free(local);
  rmdir(dir);
}
