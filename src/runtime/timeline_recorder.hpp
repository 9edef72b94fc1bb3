// SPDX-License-Identifier: Apache-2.0
// Timeline mode (Config::timeline_capacity): the host ring's publish times
// and reap passes, the consumer clock calibrated against the host's, and
// the snapshot that pairs them with the consumer's per-ticket records.
#pragma once

#include <cstdint>

#include "backends/backend.hpp"
#include "megaring/runtime.hpp"
#include "ring/ring_timeline.hpp"
#include "ring/shared_ring.hpp"

namespace megaring::detail {

class TimelineRecorder {
 public:
  // `capacity` 0: timeline mode is off.
  Status init(uint32_t capacity) {
    if (capacity == 0) return Status::ok();
    on_ = true;
    return events_.init(capacity);
  }
  bool on() const { return on_; }
  // The calibrated consumer clock - host clock (0 until calibrate()).
  int64_t clock_offset_ns() const { return clock_offset_ns_; }
  // Ticket `ticket`'s publish time (host steady clock), 0 if not recorded;
  // meaningful while the ticket is outstanding (its entry is not reused
  // before it completes: the capacity is at least twice the ring's).
  int64_t publish_ns(uint64_t ticket) const {
    return on_ ? events_.publish_ns(ticket & events_.mask()) : 0;
  }
  // What the shared ring records into, or null when off.
  RingTimeline* ring_timeline() { return on_ ? &events_ : nullptr; }

  // The consumer clock (GPU globaltimer) against the host's steady clock,
  // NTP-style: of 32 READ_CLOCK round trips on `ring`, the one with the
  // smallest RTT bounds the offset to +-RTT/2.
  Status calibrate(SharedRing& ring);
  // The completed tickets still in the consumer's record ring, with their
  // publish times, and the recent reap passes.
  Status snapshot(ConsumerBackend& backend, const SharedRing& ring, uint64_t initial_ticket,
                  Timeline* out) const;

 private:
  bool on_ = false;
  RingTimeline events_;
  int64_t clock_offset_ns_ = 0;
  int64_t clock_uncertainty_ns_ = 0;
};

}  // namespace megaring::detail
