// SPDX-License-Identifier: Apache-2.0
// Review finding 2 (slot_abi.h, "Priorities"): a Producer's release hands
// its ring back as normal, through the runtime's one class-writing entry
// (RingHost::set_ring_class), before the next owner can take the ring. On a
// ring whose host is a recording fake, so that the write itself is checked.
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "megaring/producer.hpp"
#include "ring/host_ring.hpp"

namespace megaring_test {
namespace {

using megaring::Priority;
using megaring::Producer;
using megaring::Result;
using megaring::Status;
namespace d = megaring::detail;

class RecordingHost final : public d::RingHost {
 public:
  explicit RecordingHost(std::shared_ptr<d::ProducerRing> ring) : ring_(std::move(ring)) {}
  const d::HostRegions& regions() const override { return regions_; }
  uint32_t ring_capacity() const override { return 8; }
  Status publish_allowed() const override { return Status::ok(); }
  Status closed_status() const override { return Status(Result::kShutdown, "fake"); }
  bool consumer_finalized() const override { return false; }
  Status check_consumer() override { return Status::ok(); }
  Status change_ring_class(uint32_t ring, uint32_t from, uint32_t to) override {
    (void)from;
    return set_ring_class(ring, to);
  }
  Status set_ring_class(uint32_t ring, uint32_t ring_class) override {
    // The ring is still held while its class is written: a next owner's
    // class cannot be overwritten by this reset.
    writes.push_back({ring, ring_class, ring_->owned.load()});
    return refuse ? Status(Result::kShutdown, "refused") : Status::ok();
  }

  struct Write {
    uint32_t ring, ring_class;
    bool held;
  };
  std::vector<Write> writes;
  bool refuse = false;

 private:
  std::shared_ptr<d::ProducerRing> ring_;
  d::HostRegions regions_{};
};

class PriorityRelease : public ::testing::Test {
 protected:
  // A Producer on ring 3, opened (as open_producer leaves it) with `cls`.
  std::unique_ptr<Producer> open(uint32_t cls) {
    ring_->owned.store(true);
    ring_->ring_class = cls;
    return d::make_producer(ring_);
  }
  std::shared_ptr<d::ProducerRing> ring_ = std::make_shared<d::ProducerRing>(3, 8, 0);
  RecordingHost host_{ring_};
  void SetUp() override { ring_->host.store(&host_); }
};

TEST_F(PriorityRelease, ACriticalRingIsNormalAgainOnceItsProducerIsGone) {
  auto p = open(MR_RING_CLASS_CRITICAL);
  EXPECT_EQ(p->priority(), Priority::kCritical);
  EXPECT_TRUE(host_.writes.empty()) << "opening is the runtime's write, not the Producer's";
  p.reset();
  ASSERT_EQ(host_.writes.size(), 1u);
  EXPECT_EQ(host_.writes[0].ring, 3u);
  EXPECT_EQ(host_.writes[0].ring_class, MR_RING_CLASS_NORMAL);
  EXPECT_TRUE(host_.writes[0].held) << "the reset must come before the ring is handed on";
  EXPECT_FALSE(ring_->owned.load());
  EXPECT_EQ(ring_->ring_class, MR_RING_CLASS_NORMAL);
}

TEST_F(PriorityRelease, ABulkRingToo) {
  open(MR_RING_CLASS_BULK).reset();
  ASSERT_EQ(host_.writes.size(), 1u);
  EXPECT_EQ(host_.writes[0].ring_class, MR_RING_CLASS_NORMAL);
}

TEST_F(PriorityRelease, ANormalRingNeedsNoWrite) {
  open(MR_RING_CLASS_NORMAL).reset();
  EXPECT_TRUE(host_.writes.empty());
  EXPECT_FALSE(ring_->owned.load());
}

// A refused write (the runtime stopped) still releases the ring.
TEST_F(PriorityRelease, ARefusedResetStillReleasesTheRing) {
  host_.refuse = true;
  open(MR_RING_CLASS_CRITICAL).reset();
  EXPECT_EQ(host_.writes.size(), 1u);
  EXPECT_FALSE(ring_->owned.load());
}

// A Producer that outlives its runtime (the ring's host is gone) writes
// nothing and still releases the ring.
TEST_F(PriorityRelease, AProducerThatOutlivesItsRuntimeWritesNothing) {
  auto p = open(MR_RING_CLASS_CRITICAL);
  ring_->host.store(nullptr);
  p.reset();
  EXPECT_TRUE(host_.writes.empty());
  EXPECT_FALSE(ring_->owned.load());
}

}  // namespace
}  // namespace megaring_test
