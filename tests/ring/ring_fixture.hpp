// SPDX-License-Identifier: Apache-2.0
// Shared scaffolding of the ring tests (megaring_test_ring, one file per
// concern under tests/ring/): the RingTest fixture, run on every backend
// (Cpu/..., Gpu/...), and the publish-and-wait and conservation helpers the
// files share.
//
// Every wait has a finite timeout (scaled for sanitizer builds) and every
// test runs under the fixture's watchdog, so a hang is reported as a failure.
#pragma once

#include <chrono>
#include <cstdint>

#include <megaring/runtime.hpp>

#include "backend_fixture.hpp"

namespace megaring_test {

// The names every ring test uses, spelled once here.
using megaring::BufferHandle;
using megaring::Completion;
using megaring::OnFull;
using megaring::PublishOptions;
using megaring::RuntimeStats;
using megaring::SlotRequest;
using megaring::Ticket;
namespace ops = megaring::ops;
using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

inline constexpr uint64_t kTwo32 = 1ull << 32;

inline uint64_t ms_since(Clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<milliseconds>(Clock::now() - start).count());
}

inline PublishOptions kept_options(Nanoseconds timeout = scaled(seconds(10))) {
  PublishOptions o;
  o.keep_result = true;
  o.timeout = timeout;
  return o;
}
inline PublishOptions plain_options(Nanoseconds timeout = scaled(seconds(10))) {
  PublishOptions o;
  o.timeout = timeout;
  return o;
}

// ---------------------------------------------------------------------------
// Publish and wait.
// ---------------------------------------------------------------------------
// Publishes one kept slot and waits for it (finite timeouts).
inline void call_ok(Runtime& rt, const SlotRequest& r, Completion* c) {
  Ticket t;
  MR_ASSERT_OK(rt.publish(r, &t, kept_options()));
  MR_ASSERT_OK(rt.wait(t, c, scaled(seconds(10))));
  ASSERT_EQ(c->ticket, t.value);
}

// Waits until DONE_COUNT passes everything published so far, so that a
// following stats() reaps every completion.
inline void quiesce(Runtime& rt) {
  Ticket t;
  MR_ASSERT_OK(rt.publish(ops::nop(), &t, plain_options()));
  MR_ASSERT_OK(rt.wait_done(t, scaled(seconds(10))));
}

// Publishes `count` plain NOPs (results 0, 1, ...) one by one and waits until
// DONE_COUNT has passed the last.
inline void publish_nops_and_wait_done(Runtime& rt, uint32_t count) {
  Ticket last;
  for (uint32_t i = 0; i < count; ++i)
    MR_ASSERT_OK(rt.publish(ops::nop(i), &last, plain_options()));
  MR_ASSERT_OK(rt.wait_done(last, scaled(seconds(10))));
}

// ---------------------------------------------------------------------------
// Conservation: every published slot completes exactly once.
// ---------------------------------------------------------------------------
// Every published slot is counted once as OK, faulted or aborted, and reaped;
// the faults add up by code; the consumer saw no protocol error.
inline void expect_conserved(const RuntimeStats& s) {
  EXPECT_EQ(s.completed_ok + s.faulted + s.aborted, s.published)
      << "ok " << s.completed_ok << " faulted " << s.faulted << " aborted " << s.aborted;
  EXPECT_EQ(s.reaped, s.published);
  EXPECT_EQ(s.protocol_errors, 0u);
  uint64_t by_code = 0;
  for (uint64_t n : s.faults_by_code) by_code += n;
  EXPECT_EQ(by_code, s.faulted);
}

// quiesce(), then expect_conserved() on the stats that reap everything; those
// stats go to *stats for the caller's own checks.
inline void expect_conserved_once_quiet(Runtime& rt, RuntimeStats* stats = nullptr) {
  ASSERT_NO_FATAL_FAILURE(quiesce(rt));
  const RuntimeStats s = rt.stats();
  expect_conserved(s);
  if (stats != nullptr) *stats = s;
}

// `published` slots were published and every one of them completed OK.
inline void expect_every_slot_ok(const RuntimeStats& s, uint64_t published) {
  EXPECT_EQ(s.published, published);
  EXPECT_EQ(s.completed_ok, published);
  expect_conserved(s);
}

// ---------------------------------------------------------------------------
// The fixture.
// ---------------------------------------------------------------------------
class RingTest : public BackendTest {
 protected:
  // base_config() with the ring capacity a test needs and its number of
  // consumer units (Config::workers; 0, the default: the backend's own).
  Config ring_config(uint32_t ring_capacity, uint32_t workers = 0) const {
    Config c = base_config();
    c.ring_capacity = ring_capacity;
    c.workers = workers;
    return c;
  }
  // base_config() with `workers` consumer units and the default ring.
  Config workers_config(uint32_t workers) const {
    Config c = base_config();
    c.workers = workers;
    return c;
  }
};

// Shutdown, abort, destruction and the consumer's life around them: one
// suite in four files (lifecycle_shutdown.cpp, which instantiates it,
// lifecycle_abort.cpp, lifecycle_cuda.cpp, lifecycle_progress.cpp).
class RingLifecycleTest : public RingTest {};

}  // namespace megaring_test
