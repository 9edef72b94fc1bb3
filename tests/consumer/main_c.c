/* SPDX-License-Identifier: Apache-2.0 */
/* The installed C API from a C99 program: megaring/megaring.h alone, linked
 * to the installed library through megaring::megaring. */
#include <megaring/megaring.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  mr_runtime_config_t config;
  mr_runtime_t* runtime = NULL;
  mr_slot_request_t nop;
  mr_completion_t completion;
  int ok;
  if (mr_version() != MEGARING_VERSION) {
    fprintf(stderr, "consumer_c: headers %d, library %d\n", MEGARING_VERSION, mr_version());
    return 1;
  }
  if (mr_runtime_config_init(&config) != MR_RESULT_SUCCESS) return 1;
  config.backend = MR_BACKEND_CPU;
  if (mr_runtime_create(&config, &runtime) != MR_RESULT_SUCCESS) {
    fprintf(stderr, "consumer_c: %s\n", mr_last_error());
    return 1;
  }
  memset(&nop, 0, sizeof nop);
  nop.opcode = MR_OP_NOP;
  nop.args[0] = 1234;
  ok = mr_runtime_call(runtime, &nop, MR_FOREVER, &completion) == MR_RESULT_SUCCESS &&
       completion.status == MR_STATUS_OK && completion.result == 1234 &&
       mr_runtime_finalize(runtime, MR_FOREVER) == MR_RESULT_SUCCESS;
  if (!ok) fprintf(stderr, "consumer_c: %s\n", mr_last_error());
  (void)mr_runtime_destroy(runtime);
  if (ok) printf("consumer_c: OK\n");
  return ok ? 0 : 1;
}
