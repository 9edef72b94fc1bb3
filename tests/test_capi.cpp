// SPDX-License-Identifier: Apache-2.0
// The C API (megaring/megaring.h): every entry point on the CPU backend,
// with results checked (NOP echoes, FILL read back), hostile input (NULL
// pointers and handles, bad struct sizes and versions, stale tickets and
// tenants, ranges out of bounds) and a conservation check (slots published
// through the C API from several threads all complete exactly once with the
// right result). Runtime, producers and buffers here; tenants in
// test_capi_tenants.cpp.
#include "capi_test_util.hpp"

#include <cstddef>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "megaring/runtime.hpp"
#include "megaring/version.h"

namespace megaring_test {
namespace {

TEST(CApiResults, NumbersAndStringsAreTheCppOnes) {
  for (int r = 0; r <= MR_RESULT_IN_USE; ++r)
    EXPECT_STREQ(mr_result_string(static_cast<mr_result_t>(r)),
                 megaring::result_string(static_cast<megaring::Result>(r)));
  EXPECT_STREQ(mr_result_string(static_cast<mr_result_t>(MR_RESULT_IN_USE + 1)),
               "unknown result");
  EXPECT_STREQ(mr_result_string(static_cast<mr_result_t>(1000)), "unknown result");
}

TEST(CApiResults, LastErrorIsPerThreadAndNamesTheCall) {
  std::string fresh = "unset";
  std::thread([&] { fresh = mr_last_error(); }).join();
  EXPECT_EQ(fresh, "");  // a thread without a failed call
  uint64_t v = 1, l = 1;
  EXPECT_MR(mr_runtime_create(nullptr, nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mr_last_error()).find("mr_runtime_create: invalid argument: config is NULL"),
            std::string::npos)
      << mr_last_error();
  mr_last_error_values(&v, &l);
  EXPECT_EQ(v, 0u);
  EXPECT_EQ(l, 0u);
  mr_last_error_values(nullptr, nullptr);  // either may be NULL
  std::string other = "unset";
  std::thread([&] { other = mr_last_error(); }).join();
  EXPECT_EQ(other, "");  // another thread's failure is not this one's
}

TEST(CApiVersion, SameNumbersAsVersionH) {
  EXPECT_EQ(mr_version(), MEGARING_VERSION);
  EXPECT_STREQ(mr_version_string(), MEGARING_VERSION_STRING);
  int major = -1, minor = -1, patch = -1;
  mr_version_numbers(&major, &minor, &patch);
  EXPECT_EQ(major, MEGARING_VERSION_MAJOR);
  EXPECT_EQ(minor, MEGARING_VERSION_MINOR);
  EXPECT_EQ(patch, MEGARING_VERSION_PATCH);
  mr_version_numbers(nullptr, nullptr, nullptr);
}

TEST(CApiConfig, InitFillsTheCppDefaults) {
  mr_runtime_config_t c;
  std::memset(&c, 0xA5, sizeof c);
  ASSERT_MR(mr_runtime_config_init(&c), MR_RESULT_SUCCESS);
  const megaring::Config d;
  EXPECT_EQ(c.struct_size, sizeof c);
  EXPECT_EQ(c.struct_version, MR_RUNTIME_CONFIG_VERSION);
  EXPECT_EQ(c.backend, MR_BACKEND_AUTO);
  EXPECT_EQ(c.device, d.device);
  EXPECT_EQ(c.ring_capacity, d.ring_capacity);
  EXPECT_EQ(c.workers, d.workers);
  EXPECT_EQ(c.max_buffers, d.max_buffers);
  EXPECT_EQ(c.max_tenants, d.max_tenants);
  EXPECT_EQ(c.initial_ticket, d.initial_ticket);
  EXPECT_EQ(c.poll_backoff_min_ns, d.poll_backoff_min_ns);
  EXPECT_EQ(c.poll_backoff_max_ns, d.poll_backoff_max_ns);
  EXPECT_EQ(c.fetch_warps, d.fetch_warps);
  EXPECT_EQ(c.producer_rings, d.producer_rings);
  EXPECT_EQ(c.heartbeat_interval_ns, d.heartbeat_interval_ns);
  EXPECT_EQ(c.force_eager_module_loading, 1u);
  EXPECT_EQ(c.abort_timeout_ns, d.abort_timeout.count());
  EXPECT_EQ(c.timeline_capacity, d.timeline_capacity);
  EXPECT_EQ(c.count_costs, 0u);
  EXPECT_MR(mr_runtime_config_init(nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_config_init_sized(&c, 8), MR_RESULT_INVALID_ARGUMENT);
}

TEST(CApiConfig, InitOfALargerStructZeroesWhatItDoesNotKnow) {
  Grown<mr_runtime_config_t> g;
  std::memset(&g, 0xA5, sizeof g);
  ASSERT_MR(mr_runtime_config_init_sized(&g.known, sizeof g), MR_RESULT_SUCCESS);
  EXPECT_EQ(g.known.struct_size, sizeof g);
  EXPECT_EQ(g.known.ring_capacity, megaring::Config{}.ring_capacity);
  for (unsigned char b : g.tail) EXPECT_EQ(b, 0);
  // ... and create accepts it: a newer caller's fields, all off.
  g.known.backend = MR_BACKEND_CPU;
  mr_runtime_t* rt = nullptr;
  ASSERT_MR(mr_runtime_create(&g.known, &rt), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_runtime_destroy(rt), MR_RESULT_SUCCESS);
}

TEST(CApiConfig, CreateRefusesBadStructsAndValues) {
  mr_runtime_t* const sentinel = reinterpret_cast<mr_runtime_t*>(uintptr_t{0x1234});
  mr_runtime_t* rt = sentinel;
  const mr_runtime_config_t good = cpu_config();
  mr_runtime_config_t c = good;
  EXPECT_MR(mr_runtime_create(&c, nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_create(nullptr, &rt), MR_RESULT_INVALID_ARGUMENT);
  c.struct_size = sizeof c - 8;  // too small
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mr_last_error()).find("struct_size"), std::string::npos);
  c.struct_size = 0;  // never initialised
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c.struct_size = 0xA5A5A5A5u;  // never initialised: refused before a byte past the struct is read
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mr_last_error()).find("past any version"), std::string::npos)
      << mr_last_error();
  EXPECT_MR(mr_runtime_config_init_sized(&c, 0xA5A5A5A5u), MR_RESULT_INVALID_ARGUMENT);
  c = good;
  c.struct_version = 0;
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c.struct_version = MR_RUNTIME_CONFIG_VERSION + 1;  // a version this library does not know
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  Grown<mr_runtime_config_t> g{};
  g.known = good;
  g.known.struct_size = sizeof g;
  g.tail[5] = 1;  // a field this library does not know is set
  EXPECT_MR(mr_runtime_create(&g.known, &rt), MR_RESULT_INVALID_ARGUMENT);
  const std::string byte = "byte " + std::to_string(offsetof(Grown<mr_runtime_config_t>, tail) + 5);
  EXPECT_NE(std::string(mr_last_error()).find(byte), std::string::npos) << mr_last_error();
  c = good;
  c.backend = 7;
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c = good;
  c.count_costs = 2;
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c = good;
  c.ring_capacity = 3;  // the C++ checks still apply
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c = good;
  c.abort_timeout_ns = -1;
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(rt, sentinel);  // untouched on every failure
}

TEST(CApiRuntime, NullHandlesAndPointersAreErrors) {
  mr_slot_request_t req = nop(1);
  mr_ticket_t t{};
  mr_completion_t c{};
  uint64_t u64 = 0;
  uint32_t u32 = 0;
  char byte = 0;
  mr_runtime_info_t info{};
  info.struct_size = sizeof info;
  mr_runtime_stats_t stats{};
  stats.struct_size = sizeof stats;
  mr_consumer_counters_t cc{};
  cc.struct_size = sizeof cc;
  mr_producer_t* producer = nullptr;
  const mr_result_t kBad = MR_RESULT_INVALID_ARGUMENT;
  EXPECT_MR(mr_runtime_finalize(nullptr, 0), kBad);
  EXPECT_MR(mr_runtime_abort(nullptr), kBad);
  EXPECT_MR(mr_runtime_destroy(nullptr), kBad);
  EXPECT_MR(mr_runtime_get_info(nullptr, &info), kBad);
  EXPECT_MR(mr_runtime_publish(nullptr, &req, 0, 0, &t), kBad);
  EXPECT_MR(mr_runtime_publish_batch(nullptr, &req, 1, 0, 0, &t), kBad);
  EXPECT_MR(mr_runtime_wait(nullptr, &t, 0, &c), kBad);
  EXPECT_MR(mr_runtime_wait_done(nullptr, &t, 0), kBad);
  EXPECT_MR(mr_runtime_release(nullptr, &t), kBad);
  EXPECT_MR(mr_runtime_call(nullptr, &req, 0, &c), kBad);
  EXPECT_MR(mr_runtime_done_count(nullptr, &u64), kBad);
  EXPECT_MR(mr_runtime_heartbeat_ns(nullptr, &u64), kBad);
  EXPECT_MR(mr_runtime_stats(nullptr, &stats), kBad);
  EXPECT_MR(mr_runtime_consumer_counters(nullptr, &cc), kBad);
  EXPECT_MR(mr_runtime_write_timeline_trace(nullptr, "x.json"), kBad);
  EXPECT_MR(mr_buffer_alloc(nullptr, 8, &u32), kBad);
  EXPECT_MR(mr_buffer_free(nullptr, 1), kBad);
  EXPECT_MR(mr_buffer_write(nullptr, 1, 0, &byte, 1), kBad);
  EXPECT_MR(mr_buffer_read(nullptr, 1, 0, &byte, 1), kBad);
  EXPECT_MR(mr_buffer_register(nullptr, &byte, 1, &u32), kBad);
  EXPECT_MR(mr_buffer_unregister(nullptr, 1, 0), kBad);
  EXPECT_MR(mr_producer_open(nullptr, &producer), kBad);
  EXPECT_MR(mr_producer_close(nullptr), kBad);
  EXPECT_MR(mr_producer_ring(nullptr, &u32), kBad);
  EXPECT_MR(mr_producer_publish(nullptr, &req, 0, 0, &t), kBad);
  EXPECT_MR(mr_producer_publish_batch(nullptr, &req, 1, 0, 0, &t), kBad);
  EXPECT_MR(mr_producer_wait(nullptr, &t, 0, &c), kBad);
  EXPECT_MR(mr_producer_wait_done(nullptr, &t, 0), kBad);
  EXPECT_MR(mr_producer_release(nullptr, &t), kBad);

  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config()), MR_RESULT_SUCCESS);
  mr_runtime_t* r = rt.get();
  EXPECT_MR(mr_runtime_get_info(r, nullptr), kBad);
  EXPECT_MR(mr_runtime_publish(r, nullptr, 0, 0, &t), kBad);
  EXPECT_MR(mr_runtime_publish(r, &req, 0, 0, nullptr), kBad);
  EXPECT_MR(mr_runtime_publish_batch(r, nullptr, 1, 0, 0, &t), kBad);
  EXPECT_MR(mr_runtime_publish_batch(r, &req, 1, 0, 0, nullptr), kBad);
  EXPECT_MR(mr_runtime_wait(r, nullptr, 0, &c), kBad);
  EXPECT_MR(mr_runtime_wait(r, &t, 0, nullptr), kBad);
  EXPECT_MR(mr_runtime_wait_done(r, nullptr, 0), kBad);
  EXPECT_MR(mr_runtime_release(r, nullptr), kBad);
  EXPECT_MR(mr_runtime_call(r, nullptr, 0, &c), kBad);
  EXPECT_MR(mr_runtime_call(r, &req, 0, nullptr), kBad);
  EXPECT_MR(mr_runtime_done_count(r, nullptr), kBad);
  EXPECT_MR(mr_runtime_heartbeat_ns(r, nullptr), kBad);
  EXPECT_MR(mr_runtime_stats(r, nullptr), kBad);
  EXPECT_MR(mr_runtime_consumer_counters(r, nullptr), kBad);
  EXPECT_MR(mr_runtime_write_timeline_trace(r, nullptr), kBad);
  EXPECT_MR(mr_buffer_alloc(r, 8, nullptr), kBad);
  uint32_t live = 0;  // a live handle: only the NULL pointer is wrong
  ASSERT_MR(mr_buffer_alloc(r, 8, &live), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_buffer_write(r, live, 0, nullptr, 1), kBad);
  EXPECT_NE(std::string(mr_last_error()).find("src is NULL"), std::string::npos);
  EXPECT_MR(mr_buffer_read(r, live, 0, nullptr, 1), kBad);
  EXPECT_NE(std::string(mr_last_error()).find("dst is NULL"), std::string::npos);
  EXPECT_MR(mr_buffer_register(r, nullptr, 1, &u32), kBad);
  EXPECT_MR(mr_buffer_register(r, &byte, 1, nullptr), kBad);
  EXPECT_MR(mr_producer_open(r, nullptr), kBad);
  EXPECT_NE(std::string(mr_last_error()).find("out is NULL"), std::string::npos);
}

TEST(CApiRuntime, InfoAndSizedOutputs) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_runtime_info_t info{};
  info.struct_size = sizeof info;
  ASSERT_MR(mr_runtime_get_info(rt.get(), &info), MR_RESULT_SUCCESS);
  EXPECT_EQ(info.backend, MR_BACKEND_CPU);
  EXPECT_EQ(info.capacity, 64u);
  EXPECT_EQ(info.consumer_units, 2u);
  EXPECT_STREQ(info.device_name, "cpu");
  EXPECT_EQ(info.struct_size, sizeof info);

  mr_runtime_stats_t small{};
  small.struct_size = 8;  // below the first version's size
  EXPECT_MR(mr_runtime_stats(rt.get(), &small), MR_RESULT_INVALID_ARGUMENT);
  mr_consumer_counters_t none{};  // struct_size 0: not set
  EXPECT_MR(mr_runtime_consumer_counters(rt.get(), &none), MR_RESULT_INVALID_ARGUMENT);
  // Garbage in struct_size (never set): refused, and not a byte written.
  mr_runtime_stats_t garbage;
  std::memset(&garbage, 0xA5, sizeof garbage);
  EXPECT_MR(mr_runtime_stats(rt.get(), &garbage), MR_RESULT_INVALID_ARGUMENT);
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(&garbage);
  for (size_t i = 0; i < sizeof garbage; ++i) EXPECT_EQ(bytes[i], 0xA5) << "byte " << i;
  // A newer caller's larger struct: the known part filled, the rest zeroed.
  mr_completion_t c{};
  const mr_slot_request_t three = nop(3);
  ASSERT_MR(mr_runtime_call(rt.get(), &three, MR_FOREVER, &c), MR_RESULT_SUCCESS);
  Grown<mr_runtime_stats_t> g;
  std::memset(&g, 0xA5, sizeof g);
  g.known.struct_size = sizeof g;
  ASSERT_MR(mr_runtime_stats(rt.get(), &g.known), MR_RESULT_SUCCESS);
  EXPECT_EQ(g.known.struct_size, sizeof g);
  EXPECT_EQ(g.known.reserved, 0u);
  EXPECT_EQ(g.known.published, 1u);
  EXPECT_EQ(g.known.protocol_errors, 0u);
  for (unsigned char b : g.tail) EXPECT_EQ(b, 0);
}

TEST(CApiRuntime, PublishWaitCallEchoNop) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_runtime_t* r = rt.get();
  mr_ticket_t t{};
  mr_completion_t c{};
  mr_slot_request_t req = nop(42);
  ASSERT_MR(mr_runtime_publish(r, &req, MR_PUBLISH_KEEP_RESULT, MR_FOREVER, &t), MR_RESULT_SUCCESS);
  EXPECT_EQ(t.kept, 1u);
  ASSERT_MR(mr_runtime_wait(r, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.ticket, t.value);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 42u);
  // Read once: a second wait on the same ticket is refused.
  EXPECT_MR(mr_runtime_wait(r, &t, 0, &c), MR_RESULT_INVALID_ARGUMENT);

  req = nop(0xFEEDu);
  ASSERT_MR(mr_runtime_call(r, &req, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.result, 0xFEEDu);

  std::vector<mr_slot_request_t> batch;
  for (uint64_t i = 0; i < 16; ++i) batch.push_back(nop(1000 + i));
  mr_ticket_t first{};
  ASSERT_MR(mr_runtime_publish_batch(r, batch.data(), 16, MR_PUBLISH_KEEP_RESULT, MR_FOREVER,
                                     &first),
            MR_RESULT_SUCCESS);
  for (uint64_t i = 0; i < 16; ++i) {
    mr_ticket_t ti = first;
    ti.value = first.value + i;
    ASSERT_MR(mr_runtime_wait(r, &ti, kLong, &c), MR_RESULT_SUCCESS);
    EXPECT_EQ(c.result, 1000 + i);
  }
  // Not kept: wait_done only; waiting on it is refused.
  ASSERT_MR(mr_runtime_publish(r, &req, 0, MR_FOREVER, &t), MR_RESULT_SUCCESS);
  EXPECT_EQ(t.kept, 0u);
  ASSERT_MR(mr_runtime_wait_done(r, &t, kLong), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_runtime_wait(r, &t, 0, &c), MR_RESULT_INVALID_ARGUMENT);
  uint64_t done = 0;
  ASSERT_MR(mr_runtime_done_count(r, &done), MR_RESULT_SUCCESS);
  EXPECT_GT(done, t.value);
  uint64_t heartbeat = 0;
  EXPECT_MR(mr_runtime_heartbeat_ns(r, &heartbeat), MR_RESULT_SUCCESS);
  // Release drops a kept completion: a later wait is refused.
  ASSERT_MR(mr_runtime_publish(r, &req, MR_PUBLISH_KEEP_RESULT, MR_FOREVER, &t), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_runtime_release(r, &t), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_runtime_wait(r, &t, 0, &c), MR_RESULT_INVALID_ARGUMENT);
  // A FAULT completion is a successful wait.
  mr_slot_request_t bad{};
  bad.opcode = 200;  // no handler
  ASSERT_MR(mr_runtime_call(r, &bad, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_UNKNOWN_OPCODE);
}

TEST(CApiRuntime, PublishRefusesHostileInput) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_runtime_t* r = rt.get();
  mr_ticket_t t{};
  mr_ticket_t const sentinel{77, 1, 0};
  t = sentinel;
  mr_completion_t c{};
  mr_slot_request_t req = nop(1);
  EXPECT_MR(mr_runtime_publish(r, &req, 4, MR_FOREVER, &t), MR_RESULT_INVALID_ARGUMENT);  // flag
  EXPECT_MR(mr_runtime_publish(r, &req, 0, -1, &t), MR_RESULT_INVALID_ARGUMENT);  // timeout
  req.reserved = 1;
  EXPECT_MR(mr_runtime_publish(r, &req, 0, MR_FOREVER, &t), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_call(r, &req, MR_FOREVER, &c), MR_RESULT_INVALID_ARGUMENT);
  std::vector<mr_slot_request_t> batch(65, nop(1));
  EXPECT_MR(mr_runtime_publish_batch(r, batch.data(), 0, 0, MR_FOREVER, &t),
            MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_publish_batch(r, batch.data(), 65, 0, MR_FOREVER, &t),
            MR_RESULT_INVALID_ARGUMENT);  // above the capacity
  EXPECT_MR(mr_runtime_publish_batch(r, batch.data(), UINT32_MAX, 0, MR_FOREVER, &t),
            MR_RESULT_INVALID_ARGUMENT);  // refused before anything is allocated
  batch[3].reserved = 9;
  EXPECT_MR(mr_runtime_publish_batch(r, batch.data(), 8, 0, MR_FOREVER, &t),
            MR_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mr_last_error()).find("request 3"), std::string::npos) << mr_last_error();
  EXPECT_EQ(t.value, sentinel.value);  // untouched
  mr_runtime_stats_t s{};
  s.struct_size = sizeof s;
  ASSERT_MR(mr_runtime_stats(r, &s), MR_RESULT_SUCCESS);
  EXPECT_EQ(s.published, 0u);  // nothing refused was published
  req = nop(1);
  // A real kept ticket with a bad `kept` or `reserved` is refused, and
  // stays unread: the ticket as returned still waits.
  ASSERT_MR(mr_runtime_publish(r, &(req = nop(9)), MR_PUBLISH_KEEP_RESULT, MR_FOREVER, &t),
            MR_RESULT_SUCCESS);
  mr_ticket_t bent = t;
  bent.kept = 2;
  EXPECT_MR(mr_runtime_wait(r, &bent, kLong, &c), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_release(r, &bent), MR_RESULT_INVALID_ARGUMENT);
  bent = t;
  bent.reserved = 1;
  EXPECT_MR(mr_runtime_wait(r, &bent, kLong, &c), MR_RESULT_INVALID_ARGUMENT);
  ASSERT_MR(mr_runtime_wait(r, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.result, 9u);
  // Forged tickets: never published.
  mr_ticket_t forged{5, 2, 0};
  EXPECT_MR(mr_runtime_wait(r, &forged, 0, &c), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_wait_done(r, &forged, 0), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_release(r, &forged), MR_RESULT_INVALID_ARGUMENT);
  forged = {5, 1, 3};
  EXPECT_MR(mr_runtime_wait(r, &forged, 0, &c), MR_RESULT_INVALID_ARGUMENT);
  forged = {1000, 1, 0};
  EXPECT_MR(mr_runtime_wait(r, &forged, 0, &c), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_release(r, &forged), MR_RESULT_INVALID_ARGUMENT);
  forged = {0, 0, 0};
  EXPECT_MR(mr_runtime_wait_done(r, &forged, -5), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_write_timeline_trace(r, "never.json"), MR_RESULT_INVALID_ARGUMENT);  // off
}

}  // namespace
}  // namespace megaring_test
