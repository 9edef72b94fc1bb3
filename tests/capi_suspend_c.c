/* SPDX-License-Identifier: Apache-2.0 */
/* mr_runtime_suspend / mr_runtime_resume from strict C99 (megaring.h
 * alone): resume refused while live; suspend, twice; a slot published while
 * suspended waits (its wait times out, DONE_COUNT stays), and completes
 * with its result after resume; the phase through mr_runtime_consumer_phase;
 * after finalize both answer SHUTDOWN. Exits 0 when every check holds. */
#include <megaring/megaring.h>

#include <stdio.h>
#include <string.h>

static int failed(const char* what) {
  fprintf(stderr, "capi_suspend_c: %s: %s\n", what, mr_last_error());
  return 1;
}

static int phase_is(mr_runtime_t* rt, mr_consumer_phase_t want) {
  mr_consumer_phase_t phase = MR_CONSUMER_SUSPENDING;
  return mr_runtime_consumer_phase(rt, &phase) == MR_RESULT_SUCCESS && phase == want;
}

int main(void) {
  mr_runtime_config_t config;
  mr_runtime_t* rt = NULL;
  mr_slot_request_t r;
  mr_ticket_t t;
  mr_completion_t c;
  uint64_t done = 0, frozen = 0;
  int ok = 1;

  if (mr_runtime_config_init(&config) != MR_RESULT_SUCCESS) return failed("init");
  config.backend = MR_BACKEND_CPU;
  config.workers = 2;
  if (mr_runtime_create(&config, &rt) != MR_RESULT_SUCCESS) return failed("create");
  memset(&r, 0, sizeof r);
  r.opcode = MR_OP_NOP;
  r.args[0] = 0x5EED;
  if (!phase_is(rt, MR_CONSUMER_LIVE) || mr_runtime_resume(rt) != MR_RESULT_INVALID_ARGUMENT ||
      mr_runtime_suspend(rt, -1) != MR_RESULT_INVALID_ARGUMENT)
    ok = !failed("resume while live");
  if (ok && (mr_runtime_suspend(rt, MR_FOREVER) != MR_RESULT_SUCCESS ||
             mr_runtime_suspend(rt, MR_FOREVER) != MR_RESULT_SUCCESS ||
             !phase_is(rt, MR_CONSUMER_SUSPENDED)))
    ok = !failed("suspend");
  if (ok && (mr_runtime_done_count(rt, &frozen) != MR_RESULT_SUCCESS ||
             mr_runtime_publish(rt, &r, MR_PUBLISH_KEEP_RESULT, MR_FOREVER, &t) != MR_RESULT_SUCCESS ||
             mr_runtime_wait_done(rt, &t, 20 * 1000 * 1000) != MR_RESULT_TIMEOUT ||
             mr_runtime_done_count(rt, &done) != MR_RESULT_SUCCESS || done != frozen))
    ok = !failed("a slot published while suspended");
  memset(&c, 0, sizeof c);
  if (ok && (mr_runtime_resume(rt) != MR_RESULT_SUCCESS || !phase_is(rt, MR_CONSUMER_LIVE) ||
             mr_runtime_wait(rt, &t, MR_FOREVER, &c) != MR_RESULT_SUCCESS ||
             c.status != MR_STATUS_OK || c.result != 0x5EED))
    ok = !failed("resume");
  if (mr_runtime_finalize(rt, MR_FOREVER) != MR_RESULT_SUCCESS) ok = !failed("finalize");
  if (ok && (mr_runtime_suspend(rt, MR_FOREVER) != MR_RESULT_SHUTDOWN ||
             mr_runtime_resume(rt) != MR_RESULT_SHUTDOWN || !phase_is(rt, MR_CONSUMER_LIVE)))
    ok = !failed("after finalize");
  if (mr_runtime_suspend(NULL, 0) != MR_RESULT_INVALID_ARGUMENT ||
      mr_runtime_consumer_phase(rt, NULL) != MR_RESULT_INVALID_ARGUMENT)
    ok = !failed("null arguments");
  (void)mr_runtime_destroy(rt);
  if (ok) printf("capi_suspend_c: OK\n");
  return ok ? 0 : 1;
}
