// Shared scaffolding of the ring tests (megaring_test_ring, one file per
// concern under tests/ring/): RingLifecycleTest, the one suite several files
// share, and the publish-and-wait and conservation helpers.
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

// Shutdown, abort, destruction and the consumer's life around them: one
// suite in four files (lifecycle_shutdown.cpp, which instantiates it,
// lifecycle_abort.cpp, lifecycle_cuda.cpp, lifecycle_progress.cpp).
class RingLifecycleTest : public BackendTest {};

}  // namespace megaring_test
