/* Checks and helpers shared by the C API tests (capi_test.c, capi_engine_test.c). */
#ifndef FERRY_TESTS_CAPI_CHECK_H
#define FERRY_TESTS_CAPI_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "ferry/ferry.h"

extern int g_failures;
extern int g_checks;

#define CHECK(cond)                                                                          \
  do {                                                                                       \
    ++g_checks;                                                                              \
    if (!(cond)) {                                                                           \
      ++g_failures;                                                                          \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
              ferry_last_error());                                                           \
    }                                                                                        \
  } while (0)
#define CHECK_OK(call) CHECK((call) == FERRY_OK)

enum { kBuffer = 4 << 20, kPage = 4096 };

/** An engine on 127.0.0.1 (p2p metadata), built through a ferry_config. */
ferry_engine* start_engine(void);
/** A pattern that differs per seed and per page. */
void fill(uint8_t* p, size_t n, unsigned seed);
/** A request with every other field at its zero value (the defaults). */
ferry_request request(int opcode, void* source, uint64_t target, uint64_t offset, uint64_t length);
/** Allocates a batch, submits, waits for COMPLETED, frees it. */
void run_batch(ferry_engine* e, const ferry_request* reqs, size_t n);
/** Four threads moving their own slots of `local` to/from the target at once. */
void test_threads(ferry_engine* e, uint64_t target, uint64_t remote, uint8_t* local);
void test_engines(void);

#endif
