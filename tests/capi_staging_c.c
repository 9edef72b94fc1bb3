/* SPDX-License-Identifier: Apache-2.0 */
/* The staging and control-plane C API from strict C99 (megaring.h alone):
 * a version-2 config with a staging arena, a job end to end (stage x and y,
 * copy them to buffers by descriptor, axpy, copy back, read and compare bit
 * for bit with fmaf), control statistics and a refused in-use unregister.
 * Exits 0 when every check holds. */
#include <megaring/megaring.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N 256

static int failed(const char* what) {
  fprintf(stderr, "capi_staging_c: %s: %s\n", what, mr_last_error());
  return 1;
}

static int run(mr_runtime_t* rt, const mr_slot_request_t* r) {
  mr_completion_t c;
  if (mr_runtime_call(rt, r, MR_FOREVER, &c) != MR_RESULT_SUCCESS) return 0;
  return c.status == MR_STATUS_OK;
}

int main(void) {
  mr_runtime_config_t config;
  mr_runtime_t* rt = NULL;
  mr_staging_descriptor_t d;
  mr_slot_request_t steps[4], hold;
  mr_control_stats_t control;
  mr_ticket_t held;
  float x[N], y[N], got[N];
  const float alpha = 0.75f;
  static uint32_t memory[16];
  uint32_t inputs = 0, results = 0, bx = 0, by = 0, reg = 0, i;
  const uint64_t bytes = sizeof x;
  int ok = 1;

  if (mr_runtime_config_init(&config) != MR_RESULT_SUCCESS) return failed("init");
  if (config.struct_version != 2 || config.control_timeout_ns <= 0) return failed("version 2");
  config.backend = MR_BACKEND_CPU;
  config.workers = 1;
  config.staging_arena_bytes = 16384;
  if (mr_runtime_create(&config, &rt) != MR_RESULT_SUCCESS) return failed("create");
  for (i = 0; i < N; ++i) {
    x[i] = 0.5f * (float)i - 7.0f;
    y[i] = 1.0f / (float)(i + 1);
  }
  if (mr_region_create(rt, MR_REGION_IMMUTABLE, 2 * bytes, &inputs) != MR_RESULT_SUCCESS ||
      mr_region_write(rt, inputs, 0, x, bytes) != MR_RESULT_SUCCESS ||
      mr_region_write(rt, inputs, bytes, y, bytes) != MR_RESULT_SUCCESS ||
      mr_region_seal(rt, inputs) != MR_RESULT_SUCCESS ||
      mr_region_create(rt, MR_REGION_MUTABLE, bytes, &results) != MR_RESULT_SUCCESS ||
      mr_buffer_alloc(rt, bytes, &bx) != MR_RESULT_SUCCESS ||
      mr_buffer_alloc(rt, bytes, &by) != MR_RESULT_SUCCESS)
    ok = !failed("set-up");
  memset(&d, 0, sizeof d);
  d.region = inputs;
  d.bytes = bytes;
  ok = ok && mr_op_stage_to_buffer(&d, bx, 0, &steps[0]) == MR_RESULT_SUCCESS;
  d.offset = bytes;
  ok = ok && mr_op_stage_to_buffer(&d, by, 0, &steps[1]) == MR_RESULT_SUCCESS;
  ok = ok && mr_op_axpy_f32(by, 0, bx, 0, N, alpha, &steps[2]) == MR_RESULT_SUCCESS;
  ok = ok && mr_op_buffer_to_staging(by, 0, results, 0, bytes, &steps[3]) == MR_RESULT_SUCCESS;
  for (i = 0; ok && i < 4; ++i)
    if (!run(rt, &steps[i])) ok = !failed("a staging step");
  if (ok && mr_region_read(rt, results, 0, got, bytes) != MR_RESULT_SUCCESS) ok = !failed("read");
  for (i = 0; ok && i < N; ++i) {
    const float want = fmaf(alpha, x[i], y[i]);
    if (memcmp(&got[i], &want, sizeof want) != 0) {
      fprintf(stderr, "capi_staging_c: element %u: %g != %g\n", (unsigned)i, got[i], want);
      ok = 0;
    }
  }
  /* A one-second DELAY holds the only worker: unregistering refuses, then,
   * with nothing outstanding, succeeds at once. */
  if (ok && mr_buffer_register(rt, memory, sizeof memory, &reg) != MR_RESULT_SUCCESS)
    ok = !failed("register");
  memset(&hold, 0, sizeof hold);
  hold.opcode = MR_OP_DELAY_NS;
  hold.args[0] = MR_DELAY_MAX_NS;
  if (ok && (mr_runtime_publish(rt, &hold, 0, MR_FOREVER, &held) != MR_RESULT_SUCCESS ||
             mr_buffer_unregister_ex(rt, reg, MR_FOREVER, MR_UNREGISTER_FAIL_IF_IN_USE) !=
                 MR_RESULT_IN_USE ||
             mr_runtime_wait_done(rt, &held, MR_FOREVER) != MR_RESULT_SUCCESS ||
             mr_buffer_unregister_ex(rt, reg, MR_FOREVER, MR_UNREGISTER_FAIL_IF_IN_USE) !=
                 MR_RESULT_SUCCESS))
    ok = !failed("in-use unregister");
  memset(&control, 0, sizeof control);
  control.struct_size = sizeof control;
  if (ok && (mr_runtime_control_stats(rt, &control) != MR_RESULT_SUCCESS || control.cancelled != 0))
    ok = !failed("control stats");
  if (mr_runtime_finalize(rt, MR_FOREVER) != MR_RESULT_SUCCESS) ok = !failed("finalize");
  (void)mr_runtime_destroy(rt);
  if (ok) printf("capi_staging_c: OK\n");
  return ok ? 0 : 1;
}
