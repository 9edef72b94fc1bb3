// SPDX-License-Identifier: Apache-2.0
// C API: producers, a ring of one's own (megaring/megaring_tenants.h), each
// call the Producer call it names.
#include "capi/capi_internal.hpp"

using megaring::Status;
using megaring::capi::entry;

extern "C" {

namespace {

// Both opens: Runtime::open_producer refuses a class that is not a Priority.
Status open_producer(mr_runtime_t* runtime, uint32_t ring_class, mr_producer_t** out) {
  MR_CAPI_REQUIRE(runtime);
  MR_CAPI_REQUIRE(out);
  auto handle = std::make_unique<mr_producer_s>();
  handle->capacity = runtime->runtime->capacity();
  Status st = runtime->runtime->open_producer(&handle->producer, static_cast<megaring::Priority>(ring_class));
  if (!st) return st;
  *out = handle.release();
  return Status::ok();
}

}  // namespace

mr_result_t mr_producer_open(mr_runtime_t* runtime, mr_producer_t** out) {
  return entry("mr_producer_open",
               [&]() -> Status { return open_producer(runtime, MR_RING_CLASS_NORMAL, out); });
}

mr_result_t mr_producer_open_class(mr_runtime_t* runtime, uint32_t ring_class, mr_producer_t** out) {
  return entry("mr_producer_open_class",
               [&]() -> Status { return open_producer(runtime, ring_class, out); });
}

mr_result_t mr_producer_class(mr_producer_t* producer, uint32_t* ring_class) {
  return entry("mr_producer_class", [&]() -> Status {
    MR_CAPI_REQUIRE(producer);
    MR_CAPI_REQUIRE(ring_class);
    *ring_class = static_cast<uint32_t>(producer->producer->priority());
    return Status::ok();
  });
}

mr_result_t mr_producer_set_class(mr_producer_t* producer, uint32_t ring_class) {
  return entry("mr_producer_set_class", [&]() -> Status {
    MR_CAPI_REQUIRE(producer);
    return producer->producer->set_priority(static_cast<megaring::Priority>(ring_class));
  });
}

mr_result_t mr_producer_close(mr_producer_t* producer) {
  return entry("mr_producer_close", [&]() -> Status {
    MR_CAPI_REQUIRE(producer);
    delete producer;  // ~Producer gives the ring back
    return Status::ok();
  });
}

mr_result_t mr_producer_ring(mr_producer_t* producer, uint32_t* ring) {
  return entry("mr_producer_ring", [&]() -> Status {
    MR_CAPI_REQUIRE(producer);
    MR_CAPI_REQUIRE(ring);
    *ring = producer->producer->ring();
    return Status::ok();
  });
}

mr_result_t mr_producer_publish(mr_producer_t* producer, const mr_slot_request_t* request,
                                uint32_t flags, int64_t timeout_ns, mr_ticket_t* ticket) {
  return entry("mr_producer_publish", [&]() -> Status {
    MR_CAPI_REQUIRE(producer);
    MR_CAPI_REQUIRE(request);
    MR_CAPI_REQUIRE(ticket);
    return megaring::capi::publish_on(*producer->producer, *request, flags, timeout_ns, ticket);
  });
}

mr_result_t mr_producer_publish_batch(mr_producer_t* producer, const mr_slot_request_t* requests,
                                      uint32_t count, uint32_t flags, int64_t timeout_ns,
                                      mr_ticket_t* first) {
  return entry("mr_producer_publish_batch", [&]() -> Status {
    MR_CAPI_REQUIRE(producer);
    MR_CAPI_REQUIRE(requests);
    MR_CAPI_REQUIRE(first);
    return megaring::capi::publish_batch_on(*producer->producer, producer->capacity, requests, count,
                                            flags, timeout_ns, first);
  });
}

mr_result_t mr_producer_wait(mr_producer_t* producer, const mr_ticket_t* ticket,
                             int64_t timeout_ns, mr_completion_t* completion) {
  return entry("mr_producer_wait", [&]() -> Status {
    MR_CAPI_REQUIRE(producer);
    MR_CAPI_REQUIRE(ticket);
    MR_CAPI_REQUIRE(completion);
    return megaring::capi::wait_on(*producer->producer, *ticket, timeout_ns, completion);
  });
}

mr_result_t mr_producer_wait_done(mr_producer_t* producer, const mr_ticket_t* ticket,
                                  int64_t timeout_ns) {
  return entry("mr_producer_wait_done", [&]() -> Status {
    MR_CAPI_REQUIRE(producer);
    MR_CAPI_REQUIRE(ticket);
    return megaring::capi::wait_done_on(*producer->producer, *ticket, timeout_ns);
  });
}

mr_result_t mr_producer_release(mr_producer_t* producer, const mr_ticket_t* ticket) {
  return entry("mr_producer_release", [&]() -> Status {
    MR_CAPI_REQUIRE(producer);
    MR_CAPI_REQUIRE(ticket);
    return megaring::capi::release_on(*producer->producer, *ticket);
  });
}

}  // extern "C"
