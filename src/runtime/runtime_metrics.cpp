// SPDX-License-Identifier: Apache-2.0
// Runtime::metrics_text: stats(), the consumer's counters, the rings'
// cursors and health() as Prometheus text exposition (support/
// prometheus_text.hpp). Counters end in _total; everything since create().
#include <string>

#include "runtime/runtime_impl.hpp"
#include "support/prometheus_text.hpp"

namespace megaring {

Status Runtime::Impl::metrics_text(std::string* out) {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  using detail::PrometheusText;
  Health h;
  Status st = health(&h);
  if (!st) return st;
  ConsumerCounters cc;
  st = backend_->read_consumer_counters(&cc);
  if (!st) return st;
  const RuntimeStats s = stats();
  PrometheusText m;
  m.family("megaring_slots_published_total", "counter", "Ring-0 tickets handed out.");
  m.sample("megaring_slots_published_total", "", s.published);
  m.family("megaring_slots_reaped_total", "counter", "Ring-0 completions the host accounted for, by status.");
  m.sample("megaring_slots_reaped_total", PrometheusText::labels({{"status", "ok"}}), s.completed_ok);
  m.sample("megaring_slots_reaped_total", PrometheusText::labels({{"status", "fault"}}), s.faulted);
  m.sample("megaring_slots_reaped_total", PrometheusText::labels({{"status", "aborted"}}), s.aborted);
  m.sample("megaring_slots_reaped_total", PrometheusText::labels({{"status", "revoked"}}), s.revoked);
  m.family("megaring_slot_faults_total", "counter", "Ring-0 FAULT completions by fault code (slot_abi.h).");
  for (uint32_t code = 1; code < MR_FAULT_CODE_COUNT; ++code)
    m.sample("megaring_slot_faults_total", PrometheusText::labels({{"code", std::to_string(code)}}),
             s.faults_by_code[code]);
  m.family("megaring_ring_full_events_total", "counter", "Publishes that found ring 0 full.");
  m.sample("megaring_ring_full_events_total", "", s.ring_full_events);
  m.family("megaring_protocol_errors_total", "counter", "Completion records that broke the protocol (a bug if not 0).");
  m.sample("megaring_protocol_errors_total", "", s.protocol_errors);
  m.family("megaring_parked_results_total", "counter", "Unread kept completions moved off the ring.");
  m.sample("megaring_parked_results_total", "", s.parked_results);

  const struct {
    const char* name;
    const char* help;
    uint64_t value;
  } consumer[] = {
      {"megaring_consumer_fetch_rounds_total", "Fetcher rounds that staged slots.", cc.fetch_rounds},
      {"megaring_consumer_tickets_fetched_total", "Tickets the fetcher staged.", cc.tickets_fetched},
      {"megaring_consumer_header_rounds_total", "Fetcher rounds that only found headers.", cc.header_rounds},
      {"megaring_consumer_idle_polls_total", "Fetcher polls that found nothing (updated every 64th).", cc.idle_polls},
      {"megaring_consumer_flushes_total", "DONE_COUNT stores by the completer.", cc.flushes},
      {"megaring_consumer_records_written_total", "Completion records written to host memory.", cc.records_written},
  };
  for (const auto& c : consumer) {
    m.family(c.name, "counter", c.help);
    m.sample(c.name, "", c.value);
  }

  m.family("megaring_ring_published_end", "gauge", "Every ticket of the ring below this is reserved.");
  m.sample("megaring_ring_published_end", PrometheusText::labels({{"ring", "0"}}), ring_->published_end());
  for (const auto& ring : producer_rings_)  // relaxed: a look at the tail
    m.sample("megaring_ring_published_end", PrometheusText::labels({{"ring", std::to_string(ring->ring)}}),
             ring->tail.load(std::memory_order_relaxed));
  m.family("megaring_ring_done_count", "gauge", "Every ticket of the ring below this completed (DONE_COUNT).");
  m.sample("megaring_ring_done_count", PrometheusText::labels({{"ring", "0"}}), ring_->done_count());
  for (const auto& ring : producer_rings_)
    m.sample("megaring_ring_done_count", PrometheusText::labels({{"ring", std::to_string(ring->ring)}}),
             ring_done_count(ring->ring));

  m.family("megaring_consumer_alive", "gauge", "1 while the consumer runs and its health check passes.");
  m.sample("megaring_consumer_alive", "", h.consumer_alive ? 1 : 0);
  m.family("megaring_runtime_state", "gauge", "1 for the runtime's state, 0 for the others.");
  for (RuntimeState state : {RuntimeState::kRunning, RuntimeState::kDraining, RuntimeState::kStopped,
                             RuntimeState::kAborted, RuntimeState::kFailed, RuntimeState::kWedged})
    m.sample("megaring_runtime_state", PrometheusText::labels({{"state", runtime_state_name(state)}}),
             h.state == state ? 1 : 0);
  m.family("megaring_consumer_phase", "gauge",
           "1 for the consumer's phase (suspend/resume), 0 for the others; live unless running.");
  for (ConsumerPhase phase : {ConsumerPhase::kLive, ConsumerPhase::kSuspending, ConsumerPhase::kSuspended})
    m.sample("megaring_consumer_phase", PrometheusText::labels({{"phase", consumer_phase_name(phase)}}),
             h.consumer_phase == phase ? 1 : 0);
  if (h.heartbeat_age_source != AgeSource::kNone) {
    m.family("megaring_heartbeat_age_seconds", "gauge",
             "Host seconds since the consumer's last heartbeat (a lower bound where source=\"observed\").");
    m.sample_double("megaring_heartbeat_age_seconds",
                    PrometheusText::labels({{"source", age_source_name(h.heartbeat_age_source)}}),
                    static_cast<double>(h.heartbeat_age_ns) * 1e-9);
  }
  *out = std::move(m.text());
  return Status::ok();
}

}  // namespace megaring
