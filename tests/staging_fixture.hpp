// SPDX-License-Identifier: Apache-2.0
// Shared scaffolding of the staging tests (test_staging*.cpp): a runtime with
// a staging arena on each backend, and slot helpers that check results.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "backend_fixture.hpp"
#include "megaring/tenant.hpp"

namespace megaring_test {

inline constexpr uint64_t kArenaBytes = 1u << 20;

// `n` bytes of a pattern that differs per seed and per position.
inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 131u + seed * 29u + 7u) & 0xFF);
  return v;
}

inline std::vector<uint8_t> f32_bytes(const std::vector<float>& f) {
  std::vector<uint8_t> b(f.size() * 4);
  std::memcpy(b.data(), f.data(), b.size());
  return b;
}

// y[i] = fmaf(alpha, x[i], y[i]): what AXPY_F32 computes, on either backend.
inline std::vector<float> axpy_reference(float alpha, const std::vector<float>& x,
                                         std::vector<float> y) {
  for (size_t i = 0; i < y.size(); ++i) y[i] = std::fmaf(alpha, x[i], y[i]);
  return y;
}

class StagingTest : public BackendTest {
 protected:
  void start(uint64_t arena = kArenaBytes, uint32_t max_regions = 64) {
    Config c = base_config();
    c.staging_arena_bytes = arena;
    c.max_regions = max_regions;
    ASSERT_NO_FATAL_FAILURE(create_runtime(c, &rt_));
  }
  void TearDown() override {
    rt_.reset();
    BackendTest::TearDown();
  }

  megaring::Completion call(const megaring::SlotRequest& r) {
    megaring::Completion c;
    const Status st = rt_->call(r, &c, scaled(std::chrono::seconds(30)));
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return c;
  }
  // The fault a slot completed with (MR_FAULT_NONE when it ran).
  uint16_t fault_of(const megaring::SlotRequest& r) {
    const megaring::Completion c = call(r);
    if (c.status != MR_STATUS_OK && c.status != MR_STATUS_FAULT) ADD_FAILURE() << "status " << c.status;
    return c.fault;
  }
  std::vector<uint8_t> read_buffer(megaring::BufferHandle b, size_t n) {
    std::vector<uint8_t> out(n);
    EXPECT_TRUE(rt_->read_buffer(b, 0, out.data(), n).is_ok());
    return out;
  }
  std::vector<uint8_t> read_region(megaring::RegionHandle r, size_t n) {
    std::vector<uint8_t> out(n);
    EXPECT_TRUE(rt_->read_region(r, 0, out.data(), n).is_ok());
    return out;
  }
  // An immutable region holding `bytes`, sealed.
  megaring::RegionHandle sealed_region(const std::vector<uint8_t>& bytes) {
    megaring::RegionHandle r = 0;
    EXPECT_TRUE(rt_->create_region(megaring::RegionPolicy::kImmutable, bytes.size(), &r).is_ok());
    EXPECT_TRUE(rt_->write_region(r, 0, bytes.data(), bytes.size()).is_ok());
    EXPECT_TRUE(rt_->seal_region(r).is_ok());
    return r;
  }

  std::unique_ptr<Runtime> rt_;
};

}  // namespace megaring_test
