// SPDX-License-Identifier: Apache-2.0
// What the C API tests (test_capi*.cpp) share: result assertions that print
// mr_last_error(), a CPU-backend config, slot builders, an owning runtime
// handle, and a struct grown by a tail (a newer caller's struct).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "megaring/megaring.h"

namespace megaring_test {

#define EXPECT_MR(expr, expected) \
  EXPECT_EQ((expr), (expected)) << #expr << " -> " << mr_last_error()
#define ASSERT_MR(expr, expected) \
  ASSERT_EQ((expr), (expected)) << #expr << " -> " << mr_last_error()

// Bounded waits: generous, so a loaded machine never trips them; a hang
// fails instead of stalling the run.
inline constexpr int64_t kLong = 120'000'000'000;  // 120 s

inline mr_runtime_config_t cpu_config(uint32_t capacity = 256) {
  mr_runtime_config_t c;
  (void)mr_runtime_config_init(&c);
  c.backend = MR_BACKEND_CPU;
  c.ring_capacity = capacity;
  return c;
}

inline mr_slot_request_t slot(uint32_t opcode, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
                              uint64_t a3 = 0, uint64_t a4 = 0) {
  mr_slot_request_t r{};
  r.opcode = opcode;
  r.args[0] = a0;
  r.args[1] = a1;
  r.args[2] = a2;
  r.args[3] = a3;
  r.args[4] = a4;
  return r;
}
inline mr_slot_request_t nop(uint64_t echo) { return slot(MR_OP_NOP, echo); }

// A runtime handle destroyed at scope exit.
class CRuntime {
 public:
  CRuntime() = default;
  CRuntime(const CRuntime&) = delete;
  CRuntime& operator=(const CRuntime&) = delete;
  ~CRuntime() {
    if (rt_ != nullptr) (void)mr_runtime_destroy(rt_);
  }
  mr_result_t create(const mr_runtime_config_t& config) { return mr_runtime_create(&config, &rt_); }
  mr_runtime_t* get() const { return rt_; }
  mr_result_t destroy() {
    mr_runtime_t* rt = rt_;
    rt_ = nullptr;
    return mr_runtime_destroy(rt);
  }

 private:
  mr_runtime_t* rt_ = nullptr;
};

// A struct as a newer header would declare it: the known fields, then more.
template <class T>
struct Grown {
  T known;
  unsigned char tail[24];
};

}  // namespace megaring_test
