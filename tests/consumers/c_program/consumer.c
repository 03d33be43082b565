/* Two processes through Ferry's installed C API, built with `pkg-config --cflags --libs ferry`:
 * the child is the target, the parent writes a pattern into its buffer and reads it back, the
 * child checks its own memory and the parent compares the remote digest with the local one.
 * Exit status 0 only if it all held. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ferry/ferry.h>

#define BYTES ((size_t)8 << 20)

static uint8_t pattern_byte(size_t i) { return (uint8_t)(i * 29 + (i >> 16)); }

static int fail(const char* what) {
  fprintf(stderr, "consumer: %s: %s\n", what, ferry_last_error());
  return 1;
}

static ferry_engine* loopback_engine(void) {
  ferry_engine* engine = NULL;
  return ferry_engine_new_from_json("{\"rpc\": {\"bind_address\": \"127.0.0.1\"}}", &engine) == FERRY_OK ? engine : NULL;
}

static int target(int out, int in) {
  ferry_engine* engine = loopback_engine();
  if (!engine) return fail("target engine");
  void* buffer = NULL;
  char* name = NULL;
  if (ferry_allocate_local_memory(engine, &buffer, BYTES, NULL) != FERRY_OK) return fail("allocate");
  if (ferry_engine_segment_name(engine, &name) != FERRY_OK) return fail("segment name");
  memset(buffer, 0, BYTES);
  char hello[256];
  int n = snprintf(hello, sizeof hello, "%s %llu\n", name, (unsigned long long)(uintptr_t)buffer);
  ferry_free(name);
  if (write(out, hello, (size_t)n) != n) return 1;
  char go = 0;
  if (read(in, &go, 1) != 1) return 1;
  const uint8_t* bytes = buffer;
  for (size_t i = 0; i < BYTES; ++i) {
    if (bytes[i] != pattern_byte(i)) {
      fprintf(stderr, "consumer: target byte %zu is %u, not %u\n", i, bytes[i], pattern_byte(i));
      return 1;
    }
  }
  int rc = ferry_free_local_memory(engine, buffer) == FERRY_OK ? 0 : fail("free");
  ferry_engine_free(engine);
  return rc;
}

static int move(ferry_engine* engine, int opcode, void* local, uint64_t target_id, uint64_t remote) {
  uint64_t batch = 0;
  ferry_request request = {0};
  request.opcode = opcode;
  request.source = local;
  request.target_id = target_id;
  request.target_offset = remote;
  request.length = BYTES;
  ferry_transfer_status status;
  if (ferry_allocate_batch(engine, 1, &batch) != FERRY_OK) return fail("allocate batch");
  if (ferry_submit_transfer(engine, batch, &request, 1) != FERRY_OK) return fail("submit");
  if (ferry_wait_transfer(engine, batch, 20000, &status) != FERRY_OK) return fail("wait");
  if (status.state != FERRY_TRANSFER_COMPLETED) return fail(ferry_transfer_state_name(status.state));
  return ferry_free_batch(engine, batch) == FERRY_OK ? 0 : fail("free batch");
}

static int initiator(const char* segment, uint64_t remote) {
  ferry_engine* engine = loopback_engine();
  if (!engine) return fail("initiator engine");
  uint8_t* data = malloc(BYTES);
  uint8_t* back = calloc(1, BYTES);
  for (size_t i = 0; i < BYTES; ++i) data[i] = pattern_byte(i);
  uint64_t target_id = 0, remote_digest = 0, local_digest = 1;
  int rc = 0;
  if (ferry_register_local_memory(engine, data, BYTES, FERRY_PERM_GLOBAL_READ_WRITE) != FERRY_OK ||
      ferry_register_local_memory(engine, back, BYTES, FERRY_PERM_GLOBAL_READ_WRITE) != FERRY_OK) {
    rc = fail("register");
  } else if (ferry_open_segment(engine, segment, &target_id) != FERRY_OK) {
    rc = fail("open segment");
  } else {
    rc = move(engine, FERRY_WRITE, data, target_id, remote) || move(engine, FERRY_READ, back, target_id, remote);
    if (rc == 0 && memcmp(data, back, BYTES) != 0) rc = fail("read back differs");
    /* The digest of the bytes where they landed equals that of what was sent. */
    char* self = NULL;
    uint64_t self_id = 0;
    if (rc == 0 && (ferry_digest(engine, target_id, remote, BYTES, &remote_digest) != FERRY_OK ||
                    ferry_engine_segment_name(engine, &self) != FERRY_OK ||
                    ferry_open_segment(engine, self, &self_id) != FERRY_OK ||
                    ferry_digest(engine, self_id, (uint64_t)(uintptr_t)data, BYTES, &local_digest) != FERRY_OK)) {
      rc = fail("digest");
    }
    ferry_free(self);
    if (rc == 0 && remote_digest != local_digest) rc = fail("digests differ");
  }
  ferry_engine_free(engine);
  free(data);
  free(back);
  return rc;
}

int main(void) {
  if (strcmp(ferry_version(), FERRY_VERSION_STRING) != 0) {
    fprintf(stderr, "consumer: headers %s, library %s\n", FERRY_VERSION_STRING, ferry_version());
    return 1;
  }
  int to_parent[2], to_child[2];
  if (pipe(to_parent) != 0 || pipe(to_child) != 0) return 1;
  pid_t child = fork();
  if (child == 0) _exit(target(to_parent[1], to_child[0]));
  char line[256] = {0};
  size_t got = 0;
  while (got < sizeof line - 1 && (got == 0 || line[got - 1] != '\n')) {
    ssize_t n = read(to_parent[0], line + got, sizeof line - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  char segment[200] = {0};
  unsigned long long remote = 0;
  int rc = sscanf(line, "%199s %llu", segment, &remote) == 2 ? initiator(segment, remote) : 1;
  if (write(to_child[1], "g", 1) != 1) rc = 1;
  int status = 0;
  waitpid(child, &status, 0);
  int ok = rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  printf("consumer (C API, %s): %s\n", FERRY_VERSION_STRING, ok ? "verified" : "FAILED");
  return ok ? 0 : 1;
}
