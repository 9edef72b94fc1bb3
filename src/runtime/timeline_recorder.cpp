// SPDX-License-Identifier: Apache-2.0
// Timeline mode (timeline_recorder.hpp).
#include "runtime/timeline_recorder.hpp"

#include <algorithm>
#include <climits>
#include <vector>

#include "support/nvtx.hpp"

namespace megaring::detail {

Status TimelineRecorder::calibrate(SharedRing& ring) {
  int64_t best_rtt = INT64_MAX;
  for (int i = 0; i < 32; ++i) {
    SlotRequest request;
    request.opcode = MR_OP_READ_CLOCK;
    PublishOptions options;
    options.keep_result = true;
    Ticket ticket;
    const int64_t before = RingTimeline::now_ns();
    Status st = ring.publish(&request, 1, &ticket, options);
    Completion c;
    if (st) st = ring.wait(ticket, &c, std::chrono::seconds(10));
    const int64_t after = RingTimeline::now_ns();
    if (!st) return Status(st.code(), "timeline clock calibration: " + st.message());
    if (after - before < best_rtt) {
      best_rtt = after - before;
      clock_offset_ns_ = static_cast<int64_t>(c.result) - (before + (after - before) / 2);
      clock_uncertainty_ns_ = best_rtt / 2;
    }
  }
  return Status::ok();
}

Status TimelineRecorder::snapshot(ConsumerBackend& backend, const SharedRing& ring,
                                  uint64_t initial_ticket, Timeline* out) const {
  MR_NVTX_RANGE("megaring::timeline");
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  if (!on_) return Status(Result::kInvalidArgument, "timeline mode is off (Config::timeline_capacity)");
  const uint64_t size = events_.size();
  const uint64_t mask = events_.mask();
  // Order matters: DONE_COUNT first (records below it are complete), then
  // the records and publish times, then the published end: a record whose
  // position no ticket up to that end has reused was stable throughout.
  const uint64_t done = ring.done_count();
  std::vector<mr_timeline_record> records(size);
  Status st = backend.read_timeline(records.data());
  if (!st) return st;
  std::vector<int64_t> publish_times(size);
  for (uint64_t i = 0; i < size; ++i) publish_times[i] = events_.publish_ns(i);
  const uint64_t end = ring.published_end();

  Timeline t;
  t.clock_offset_ns = clock_offset_ns_;
  t.clock_uncertainty_ns = clock_uncertainty_ns_;
  t.units = backend.units();
  t.backend = backend_name(backend.kind());
  for (uint64_t i = 0; i < size; ++i) {
    const mr_timeline_record& r = records[i];
    if ((r.ticket & mask) != i) continue;                            // never written (or foreign)
    if (r.ticket < initial_ticket || r.ticket >= done) continue;     // not complete at snapshot
    if (r.ticket + size < end) continue;  // its position may have been reused meanwhile
    TimelineSlot s;
    s.ticket = r.ticket;
    s.unit = r.unit;
    s.opcode = r.opcode;
    s.publish_ns = publish_times[i];
    s.claim_ns = static_cast<int64_t>(r.claim_ns) - clock_offset_ns_;
    s.complete_ns = static_cast<int64_t>(r.complete_ns) - clock_offset_ns_;
    t.slots.push_back(s);
  }
  std::sort(t.slots.begin(), t.slots.end(),
            [](const TimelineSlot& a, const TimelineSlot& b) { return a.ticket < b.ticket; });
  t.reaps = events_.recent_reaps();
  *out = std::move(t);
  return Status::ok();
}

}  // namespace megaring::detail
