/* Every call of the C API (ferry/ferry.h), from C: two engines of this process move bytes
 * over tcp and the automatic choice, and each call's refusals are checked along with its
 * results. tests/capi/check_coverage.sh fails when a call of the header is missing here.
 * Exit status 0 only when every check passed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capi_check.h"

int g_failures = 0;
int g_checks = 0;

ferry_engine* start_engine(void) {
  ferry_config* config = ferry_config_new();
  CHECK(config != NULL);
  CHECK_OK(ferry_config_set_string(config, "rpc/bind_address", "127.0.0.1"));
  CHECK_OK(ferry_config_set_int(config, "transfer_timeout_ms", 10000));
  CHECK_OK(ferry_config_set_int(config, "connect_timeout_ms", 2000));
  ferry_engine* engine = NULL;
  CHECK_OK(ferry_engine_new(config, &engine));
  CHECK(engine != NULL);
  ferry_config_free(config);
  return engine;
}

void fill(uint8_t* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 12));
}

/* One batch: submit, wait, check each task and the whole. */
ferry_request request(int opcode, void* source, uint64_t target, uint64_t offset, uint64_t length) {
  ferry_request r = {0};
  r.opcode = opcode;
  r.source = source;
  r.target_id = target;
  r.target_offset = offset;
  r.length = length;
  return r;
}

void run_batch(ferry_engine* e, const ferry_request* reqs, size_t n) {
  uint64_t batch = 0;
  CHECK_OK(ferry_allocate_batch(e, n, &batch));
  CHECK_OK(ferry_submit_transfer(e, batch, reqs, n));
  ferry_transfer_status overall;
  CHECK_OK(ferry_wait_transfer(e, batch, 10000, &overall));
  CHECK(overall.state == FERRY_TRANSFER_COMPLETED);
  CHECK_OK(ferry_free_batch(e, batch));
}

/* ---- library-wide calls ---- */
static atomic_int g_sink_lines;
static char g_sink_seen[256];

static void sink(void* user, int level, const char* file, size_t file_length, int line, int64_t unix_time_us,
                 const char* message, size_t message_length) {
  (void)file;
  (void)file_length;
  (void)line;
  if (user != &g_sink_lines || level < FERRY_LOG_DEBUG || level > FERRY_LOG_ERROR || unix_time_us <= 0) return;
  if (atomic_fetch_add(&g_sink_lines, 1) == 0) {
    size_t n = message_length < sizeof g_sink_seen - 1 ? message_length : sizeof g_sink_seen - 1;
    memcpy(g_sink_seen, message, n);
    g_sink_seen[n] = '\0';
  }
}

static void test_library(void) {
  CHECK(strcmp(ferry_version(), FERRY_VERSION_STRING) == 0);
  CHECK(FERRY_VERSION_NUMBER == FERRY_VERSION_MAJOR * 10000 + FERRY_VERSION_MINOR * 100 + FERRY_VERSION_PATCH);
  CHECK(strcmp(ferry_status_name(FERRY_OK), "OK") == 0);
  CHECK(strcmp(ferry_status_name(FERRY_E_NOT_FOUND), "NotFound") == 0);
  CHECK(strcmp(ferry_status_name(FERRY_E_INTERNAL), "InternalError") == 0);
  CHECK(strcmp(ferry_status_name(3), "Unknown") == 0);
  CHECK(strcmp(ferry_status_name(-99), "Unknown") == 0);
  CHECK(strcmp(ferry_transfer_state_name(FERRY_TRANSFER_COMPLETED), "COMPLETED") == 0);
  CHECK(strcmp(ferry_transfer_state_name(42), "UNKNOWN") == 0);
  ferry_free(NULL);

  int before = ferry_log_level();
  CHECK_OK(ferry_set_log_level(FERRY_LOG_WARN));
  CHECK(ferry_log_level() == FERRY_LOG_WARN);
  CHECK(ferry_set_log_level(17) == FERRY_E_INVALID_ARGUMENT);
  CHECK(strstr(ferry_last_error(), "ferry_set_log_level") != NULL);
  /* A refused call logs a WARN line: the sink gets it, with the reason. */
  ferry_set_log_sink(sink, &g_sink_lines);
  CHECK(ferry_register_local_memory(NULL, NULL, 0, 0) == FERRY_E_INVALID_ARGUMENT);
  ferry_set_log_sink(NULL, NULL);
  CHECK(atomic_load(&g_sink_lines) >= 1);
  CHECK(strstr(g_sink_seen, "engine is NULL") != NULL);
  CHECK_OK(ferry_set_log_level(before));

  char* table = NULL;
  CHECK_OK(ferry_options_table(&table));
  CHECK(table && strstr(table, "transfer_timeout_ms") != NULL);
  ferry_free(table);
  CHECK(ferry_options_table(NULL) == FERRY_E_INVALID_ARGUMENT);
  int cuda = ferry_cuda_driver_present();
  CHECK(cuda == 0 || cuda == 1);
}

/* ---- configuration ---- */
static void test_config(void) {
  ferry_config* c = ferry_config_new();
  CHECK(c != NULL);
  CHECK_OK(ferry_config_set_int(c, "transfer_timeout_ms", 5000));
  CHECK_OK(ferry_config_set_bool(c, "checksum", 1));
  CHECK_OK(ferry_config_set_double(c, "x/ratio", 0.25));
  CHECK_OK(ferry_config_set_string(c, "x/name", "seven"));
  int64_t i = 0;
  int b = 0;
  double d = 0;
  char* s = NULL;
  CHECK_OK(ferry_config_get_int(c, "transfer_timeout_ms", &i));
  CHECK(i == 5000);
  CHECK_OK(ferry_config_get_bool(c, "checksum", &b));
  CHECK(b == 1);
  CHECK_OK(ferry_config_get_double(c, "x/ratio", &d));
  CHECK(d == 0.25);
  CHECK_OK(ferry_config_get_string(c, "x/name", &s));
  CHECK(s && strcmp(s, "seven") == 0);
  ferry_free(s);
  CHECK(ferry_config_get_int(c, "x/name", &i) == FERRY_E_INVALID_ARGUMENT);
  CHECK(ferry_config_get_int(c, "no/such/key", &i) == FERRY_E_NOT_FOUND);
  CHECK(ferry_config_get_string(c, "no/such/key", &s) == FERRY_E_NOT_FOUND);
  CHECK(ferry_config_set_string(c, "x/name", NULL) == FERRY_E_INVALID_ARGUMENT);
  CHECK(ferry_config_set_int(NULL, "k", 1) == FERRY_E_INVALID_ARGUMENT);
  CHECK(ferry_config_get_bool(c, NULL, &b) == FERRY_E_INVALID_ARGUMENT);
  CHECK_OK(ferry_config_validate(c));

  CHECK_OK(ferry_config_load(c, "{\"log_level\": \"warn\", \"transfer_timeout_ms\": 7000}"));
  CHECK_OK(ferry_config_get_int(c, "transfer_timeout_ms", &i));
  CHECK(i == 7000);
  CHECK(ferry_config_load(c, "{not json") != FERRY_OK);
  CHECK(ferry_config_load(c, "/no/such/ferry/config.json") != FERRY_OK);
  CHECK_OK(ferry_config_load_env(c));

  char* dump = NULL;
  CHECK_OK(ferry_config_dump(c, &dump));
  CHECK(dump && strstr(dump, "7000") != NULL);
  ferry_free(dump);

  /* A bad value is refused by validate and by an engine's start, which says why. */
  CHECK_OK(ferry_config_set_int(c, "transfer_timeout_ms", -1));
  CHECK(ferry_config_validate(c) == FERRY_E_INVALID_ARGUMENT);
  ferry_engine* e = (ferry_engine*)&g_checks; /* must be overwritten with NULL */
  CHECK(ferry_engine_new(c, &e) == FERRY_E_INVALID_ARGUMENT);
  CHECK(e == NULL);
  CHECK(strstr(ferry_last_error(), "transfer_timeout_ms") != NULL);
  ferry_config_free(c);
  ferry_config_free(NULL);

  char* defaults = NULL;
  CHECK_OK(ferry_config_defaults_json(&defaults));
  CHECK(defaults && strstr(defaults, "\"transfer_timeout_ms\": 30000") != NULL);
  ferry_free(defaults);

  /* No config: from the environment, as the C++ default constructor. */
  setenv("FERRY_CONF", "{\"rpc\": {\"bind_address\": \"127.0.0.1\"}, \"transfer_timeout_ms\": 4321}", 1);
  CHECK_OK(ferry_engine_new(NULL, &e));
  CHECK_OK(ferry_engine_config_dump(e, &dump));
  CHECK(dump && strstr(dump, "4321") != NULL);
  ferry_free(dump);
  ferry_engine_free(e);
  setenv("FERRY_CONF", "{\"transfer_timeout_ms\": \"soon\"}", 1);
  CHECK(ferry_engine_new(NULL, &e) == FERRY_E_INVALID_ARGUMENT && e == NULL);
  unsetenv("FERRY_CONF");

  CHECK(ferry_engine_new_from_json(NULL, &e) == FERRY_E_INVALID_ARGUMENT);
  CHECK_OK(ferry_engine_new_from_json("{\"rpc\": {\"bind_address\": \"127.0.0.1\"}}", &e));
  CHECK(e != NULL);
  ferry_engine_free(e);
  ferry_engine_free(NULL);
}

/* ---- several threads on one engine; each keeps its own last error ---- */
typedef struct {
  ferry_engine* engine;
  uint64_t target;
  uint64_t remote;
  uint8_t* local;
  size_t slot;
  int failures;
} worker_args;

static void* worker(void* p) {
  worker_args* a = (worker_args*)p;
  const size_t n = 64 << 10;
  for (int round = 0; round < 20; ++round) {
    uint8_t* mine = a->local + a->slot * n;
    fill(mine, n, (unsigned)(a->slot * 100 + round));
    ferry_request w = request(FERRY_WRITE, mine, a->target, a->remote + a->slot * n, n);
    ferry_request r = w;
    r.opcode = FERRY_READ;
    r.source = mine + (kBuffer / 2);
    uint64_t batch = 0;
    ferry_transfer_status st;
    if (ferry_allocate_batch(a->engine, 2, &batch) != FERRY_OK ||
        ferry_submit_transfer(a->engine, batch, &w, 1) != FERRY_OK ||
        ferry_wait_transfer(a->engine, batch, 10000, &st) != FERRY_OK ||
        ferry_submit_transfer(a->engine, batch, &r, 1) != FERRY_OK ||
        ferry_wait_transfer(a->engine, batch, 10000, &st) != FERRY_OK || st.state != FERRY_TRANSFER_COMPLETED ||
        memcmp(mine, mine + (kBuffer / 2), n) != 0 || ferry_free_batch(a->engine, batch) != FERRY_OK) {
      ++a->failures;
    }
  }
  /* This thread's failure is its own: another thread's message does not replace it. */
  if (ferry_free_batch(a->engine, 0xdead0000u + a->slot) == FERRY_OK) ++a->failures;
  char expect[64];
  snprintf(expect, sizeof expect, "%llu", (unsigned long long)(0xdead0000u + a->slot));
  if (!strstr(ferry_last_error(), expect)) ++a->failures;
  return NULL;
}

void test_threads(ferry_engine* e, uint64_t target, uint64_t remote, uint8_t* local) {
  enum { kThreads = 4 };
  pthread_t threads[kThreads];
  worker_args args[kThreads];
  for (size_t t = 0; t < kThreads; ++t) {
    args[t] = (worker_args){e, target, remote, local, t, 0};
    CHECK(pthread_create(&threads[t], NULL, worker, &args[t]) == 0);
  }
  for (size_t t = 0; t < kThreads; ++t) {
    pthread_join(threads[t], NULL);
    CHECK(args[t].failures == 0);
  }
}

int main(void) {
  test_library();
  test_config();
  test_engines();
  printf("capi: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
