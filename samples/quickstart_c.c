/* SPDX-License-Identifier: Apache-2.0 */
/*
 * quickstart_c: megaring from C (C99, megaring/megaring.h only). Starts a
 * runtime (the persistent megakernel on a GPU, or the CPU backend), calls a
 * NOP, publishes a batch of NOPs, FILLs a buffer and reads it back, prints
 * the counters and shuts down. Every result is checked.
 *
 *   quickstart_c [--backend auto|cuda|gpu|cpu]
 *
 * Exit status: 0 on success, 1 on a failed check, 2 on a bad command line,
 * 77 when --backend cuda finds no GPU (ctest's "skipped").
 */
#include <megaring/megaring.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define USAGE "[--backend auto|cuda|gpu|cpu]"

/* Every megaring call returns an mr_result_t; on failure, mr_last_error()
 * says which call failed and why. */
#define CHECK(call)                                                            \
  do {                                                                         \
    mr_result_t check_result_ = (call);                                        \
    if (check_result_ != MR_RESULT_SUCCESS) {                                  \
      fprintf(stderr, "quickstart_c: %s\n", mr_last_error());                  \
      status = check_result_ == MR_RESULT_NO_DEVICE ? 77 : 1;                  \
      goto done;                                                               \
    }                                                                          \
  } while (0)

static int parse_backend(const char* name, int32_t* backend) {
  if (strcmp(name, "auto") == 0) *backend = MR_BACKEND_AUTO;
  else if (strcmp(name, "cuda") == 0 || strcmp(name, "gpu") == 0) *backend = MR_BACKEND_CUDA;
  else if (strcmp(name, "cpu") == 0) *backend = MR_BACKEND_CPU;
  else return 0;
  return 1;
}

static mr_slot_request_t make_slot(uint32_t opcode, uint64_t a0, uint64_t a1, uint64_t a2,
                                   uint64_t a3) {
  mr_slot_request_t slot;
  memset(&slot, 0, sizeof slot); /* reserved fields must be 0 */
  slot.opcode = opcode;
  slot.args[0] = a0;
  slot.args[1] = a1;
  slot.args[2] = a2;
  slot.args[3] = a3;
  return slot;
}

int main(int argc, char** argv) {
  enum { kBatch = 64, kBufferBytes = 4096 };
  mr_runtime_config_t config;
  mr_runtime_t* runtime = NULL;
  mr_runtime_info_t info;
  mr_runtime_stats_t stats;
  mr_consumer_counters_t counters;
  mr_slot_request_t batch[kBatch];
  mr_slot_request_t request;
  mr_completion_t completion;
  mr_ticket_t ticket, last;
  unsigned char host[kBufferBytes];
  uint32_t buffer = 0;
  int status = 0;
  int i;

  /* Defaults first (this also sets struct_size and struct_version), then
   * the fields we want. */
  if (mr_runtime_config_init(&config) != MR_RESULT_SUCCESS) {
    fprintf(stderr, "quickstart_c: %s\n", mr_last_error());
    return 1;
  }
  for (i = 1; i < argc; ++i) {
    const char* value = NULL;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      printf("usage: %s %s\n", argv[0], USAGE);
      return 0;
    }
    if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) value = argv[++i];
    else if (strncmp(argv[i], "--backend=", 10) == 0) value = argv[i] + 10;
    if (value == NULL || !parse_backend(value, &config.backend)) {
      fprintf(stderr, "quickstart_c: cannot parse '%s'\nusage: %s %s\n", argv[i], argv[0], USAGE);
      return 2;
    }
  }
  if (mr_version() != MEGARING_VERSION)
    printf("note: built with megaring %s headers, running library %s\n", MEGARING_VERSION_STRING,
           mr_version_string());

  CHECK(mr_runtime_create(&config, &runtime));
  info.struct_size = sizeof info; /* output structs: say how large yours is */
  CHECK(mr_runtime_get_info(runtime, &info));
  printf("megaring %s from C: backend=%s device=\"%s\" consumer units=%u ring=%u\n",
         mr_version_string(), info.backend == MR_BACKEND_CUDA ? "cuda" : "cpu", info.device_name,
         info.consumer_units, info.capacity);

  /* 1. A call: publish one NOP, keep its result, wait. NOP echoes args[0]. */
  request = make_slot(MR_OP_NOP, 42, 0, 0, 0);
  CHECK(mr_runtime_call(runtime, &request, MR_FOREVER, &completion));
  if (completion.status != MR_STATUS_OK || completion.result != 42) {
    fprintf(stderr, "quickstart_c: NOP returned %" PRIu64 " (status %u)\n", completion.result,
            (unsigned)completion.status);
    status = 1;
    goto done;
  }

  /* 2. A batch: consecutive tickets; wait_done(last) covers every one. */
  for (i = 0; i < kBatch; ++i) batch[i] = make_slot(MR_OP_NOP, (uint64_t)i, 0, 0, 0);
  CHECK(mr_runtime_publish_batch(runtime, batch, kBatch, 0, MR_FOREVER, &ticket));
  last = ticket;
  last.value += kBatch - 1;
  CHECK(mr_runtime_wait_done(runtime, &last, MR_FOREVER));

  /* 3. A buffer in consumer memory: FILL bytes [256, 3256) with 0x5A, then
   * read the whole buffer back and check every byte. */
  CHECK(mr_buffer_alloc(runtime, kBufferBytes, &buffer));
  request = make_slot(MR_OP_FILL, buffer, 256, 3000, 0x5A);
  CHECK(mr_runtime_publish(runtime, &request, MR_PUBLISH_KEEP_RESULT, MR_FOREVER, &ticket));
  CHECK(mr_runtime_wait(runtime, &ticket, MR_FOREVER, &completion));
  if (completion.status != MR_STATUS_OK) {
    fprintf(stderr, "quickstart_c: FILL faulted (fault %u)\n", (unsigned)completion.fault);
    status = 1;
    goto done;
  }
  CHECK(mr_buffer_read(runtime, buffer, 0, host, kBufferBytes));
  for (i = 0; i < kBufferBytes; ++i) {
    const unsigned char want = (i >= 256 && i < 3256) ? 0x5A : 0;
    if (host[i] != want) {
      fprintf(stderr, "quickstart_c: byte %d is 0x%02x, expected 0x%02x\n", i, host[i], want);
      status = 1;
      goto done;
    }
  }
  CHECK(mr_buffer_free(runtime, buffer));

  /* 4. Counters, then a graceful stop (drain, then the consumer exits). */
  stats.struct_size = sizeof stats;
  CHECK(mr_runtime_stats(runtime, &stats));
  counters.struct_size = sizeof counters;
  CHECK(mr_runtime_consumer_counters(runtime, &counters));
  printf("published=%" PRIu64 " completed_ok=%" PRIu64 " faulted=%" PRIu64
         " fetch_rounds=%" PRIu64 " flushes=%" PRIu64 "\n",
         stats.published, stats.completed_ok, stats.faulted, counters.fetch_rounds,
         counters.flushes);
  if (stats.published != kBatch + 2 || stats.faulted != 0 || stats.protocol_errors != 0) {
    fprintf(stderr, "quickstart_c: unexpected counters\n");
    status = 1;
    goto done;
  }
  CHECK(mr_runtime_finalize(runtime, 30LL * 1000 * 1000 * 1000));
  printf("quickstart_c: OK\n");

done:
  if (runtime != NULL) (void)mr_runtime_destroy(runtime); /* aborts if still running */
  return status;
}
