// SPDX-License-Identifier: Apache-2.0
// A producer with a ring of its own (Config::producer_rings of them): what a
// server thread uses to publish at full rate. It publishes raw SlotRequests,
// as Runtime::publish does: the tenant layer's quotas and drain accounting
// do not see them (the consumer still admits each slot by its tenant id).
//
//   std::unique_ptr<megaring::Producer> producer;
//   Status st = runtime->open_producer(&producer);
//   Ticket t;
//   st = producer->publish(ops::nop(7), &t, {.keep_result = true});
//   Completion c;
//   st = producer->wait(t, &c);
//
// Compared with Runtime::publish, which every thread shares through one
// ticket counter: the producer's tail is a plain store (no read-modify-write
// and no line that other producers write), it reaps its own ring without a
// lock, and a producer that stalls (preempted, or dead, between or inside
// its publishes) holds up nobody else. The consumer serves the rings in
// turn (slot_abi.h, "Rings"), higher classes first (Priority: "Priorities"). A slot that runs long holds back its own
// ring's DONE_COUNT; the others are counted past it after 10 us, for the
// 256 slots staged after it (the completer's look-ahead), and once
// `capacity` slots are staged behind it the fetcher waits for it too.
//
// One thread at a time: a Producer's calls must not overlap (hand it to
// another thread with the usual synchronisation). Tickets count per ring:
// they are this producer's ring's, not comparable with ring 0's. Calls
// behave as the Runtime's of the same name, with these differences:
//   - a FENCE slot completes after every slot the consumer took before it,
//     from every ring (its own ring's earlier tickets among them);
//   - a slot that names a buffer that free_buffer() retires faults
//     BAD_HANDLE from that moment, if it has not run yet (ring 0's slots
//     published before the free still run);
//   - shutdown() completes what a producer published before it was called;
//     a publish racing with it runs, or completes ABORTED;
//   - RuntimeStats and timeline mode cover ring 0 only.
// Destroy every Producer before its Runtime. A Producer used after its
// runtime was destroyed answers kShutdown; one used while it is being
// destroyed is a data race.
#pragma once

#include <memory>

#include "megaring/runtime.hpp"

namespace megaring {

class Producer;
namespace detail {
struct ProducerRing;  // src/ring/host_ring.hpp
std::unique_ptr<Producer> make_producer(std::shared_ptr<ProducerRing> ring);
}  // namespace detail

class Producer {
 public:
  // Gives the ring back: unread kept results are dropped, slots in flight
  // still complete (the next owner of the ring reaps them).
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  uint32_t ring() const noexcept;        // 1 .. Config::producer_rings
  Priority priority() const noexcept;    // its class: open_producer's, or the last set_priority
  // Changes the ring's class while the runtime runs, as a control operation
  // (runtime.hpp, "Control operations"): the fetcher serves the ring by the
  // new class from its next poll of all rings. kInvalidArgument for a value
  // that is not a Priority; the class is unchanged on any error.
  Status set_priority(Priority priority) noexcept;
  uint64_t done_count() const noexcept;  // this ring's DONE_COUNT

  Status publish(const SlotRequest& request, Ticket* ticket,
                 const PublishOptions& options = {}) noexcept;
  Status publish_batch(const SlotRequest* requests, uint32_t count, Ticket* first_ticket,
                       const PublishOptions& options = {}) noexcept;
  Status wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout = kForever) noexcept;
  Status wait_done(const Ticket& ticket, Nanoseconds timeout = kForever) noexcept;
  Status release(const Ticket& ticket) noexcept;
  Status call(const SlotRequest& request, Completion* completion,
              Nanoseconds timeout = kForever) noexcept;

  class Impl;

 private:
  friend std::unique_ptr<Producer> detail::make_producer(std::shared_ptr<detail::ProducerRing>);
  explicit Producer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace megaring
