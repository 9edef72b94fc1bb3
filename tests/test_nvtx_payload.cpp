// SPDX-License-Identifier: Apache-2.0
// The NVTX payloads megaring's ranges carry (support/nvtx_payload.hpp), read
// back through the recorder (tests/nvtx_injection/payload_ext.cpp), which
// takes the NVTX payload extension the way a tool does. Part of
// megaring_test_nvtx (see tests/test_nvtx.cpp for how the recorder loads).
// Every payload is decoded through the schema the recorder was handed, by
// field name, as a tool would.
//
//   Nvtx.TicketsSchemaRegisteredOnce: one static schema in the megaring
//     domain, named fields at their offsets; every payload names it, after it
//     was registered, with its static size.
//   Nvtx.RuntimePublishCarriesTickets: megaring::publish_slots (nested in
//     megaring::publish) carries the returned first ticket and the batch's
//     count; wait and wait_done carry their ticket; reap the tickets it covers.
//   Nvtx.TenantPublishCarriesTenant: a tenant's publish carries its id.
//   Nvtx.ProducerCarriesItsRing: a Producer's ranges carry its ring.
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <megaring/producer.hpp>

#include "megaring/tenant.hpp"
#include "nvtx_injection/recorder_client.hpp"

#ifndef MEGARING_TEST_NVTX_ENABLED
#error "tests/CMakeLists.txt passes MEGARING_TEST_NVTX_ENABLED (the MEGARING_NVTX option)"
#endif

namespace {

using megaring::Completion;
using megaring::PublishOptions;
using megaring::SlotRequest;
using megaring::Ticket;
using megaring_test::Config;
using megaring_test::Runtime;
using nvtx_test::kDomain;
using nvtx_test::Nvtx;
using nvtx_test::Recorder;
using nvtx_test::summary;

constexpr const char* kSchemaName = "megaring tickets";
constexpr uint64_t kStaticSchemaStart = uint64_t{1} << 24;  // NVTX_PAYLOAD_SCHEMA_ID_STATIC_START
constexpr uint64_t kTypeUint32 = 16;                         // NVTX_PAYLOAD_ENTRY_TYPE_UINT32
constexpr uint64_t kTypeUint64 = 18;                         // NVTX_PAYLOAD_ENTRY_TYPE_UINT64
constexpr uint64_t kSchemaStatic = 1;                        // NVTX_PAYLOAD_SCHEMA_TYPE_STATIC

auto long_wait() { return megaring_test::scaled(std::chrono::seconds(30)); }

// The megaring domain's registrations of the tickets schema.
std::vector<Recorder::Schema> tickets_schemas(const Recorder& rec) {
  std::vector<Recorder::Schema> out;
  for (auto& s : rec.schemas())
    if (s.domain == kDomain && s.name == kSchemaName) out.push_back(s);
  return out;
}

// A payload's fields by name, read at the schema's offsets as its types say.
// Fails the test (and returns what it could read) on a field that does not fit.
std::map<std::string, uint64_t> decode(const Recorder::Schema& schema,
                                       const Recorder::Payload& payload) {
  std::map<std::string, uint64_t> fields;
  EXPECT_EQ(payload.schema_id, schema.id);
  for (const auto& e : schema.entries) {
    const size_t width = e.type == kTypeUint64 ? 8 : e.type == kTypeUint32 ? 4 : 0;
    if (width == 0 || e.offset + width > payload.bytes.size()) {
      ADD_FAILURE() << "field " << e.name << " (type " << e.type << ") at " << e.offset
                    << " does not fit a " << payload.bytes.size() << "-byte payload";
      continue;
    }
    uint64_t v = 0;  // little-endian host: the low bytes
    std::memcpy(&v, payload.bytes.data() + e.offset, width);
    fields[e.name] = v;
  }
  return fields;
}

// What the pushes of range `name` in the megaring domain carried, in order.
std::vector<std::map<std::string, uint64_t>> carried(const Recorder& rec, const char* name) {
  const auto schemas = tickets_schemas(rec);
  std::vector<std::map<std::string, uint64_t>> out;
  if (schemas.empty()) {
    ADD_FAILURE() << "no '" << kSchemaName << "' schema registered";
    return out;
  }
  for (const auto& e : rec.events()) {
    if (e.domain != kDomain || e.message != name || e.kind != MR_NVTX_PUSH) continue;
    if (e.payloads.size() != 1) {
      ADD_FAILURE() << name << " push carries " << e.payloads.size() << " payloads, not 1";
      out.emplace_back();
      continue;
    }
    out.push_back(decode(schemas.front(), e.payloads.front()));
  }
  return out;
}

std::map<std::string, uint64_t> tickets(uint64_t first, uint64_t count, uint64_t tenant,
                                        uint64_t ring) {
  return {{"first_ticket", first}, {"count", count}, {"tenant", tenant}, {"ring", ring}};
}

#define MR_SKIP_IF_NVTX_OFF()                                                    \
  if (!MEGARING_TEST_NVTX_ENABLED) {                                             \
    EXPECT_TRUE(tickets_schemas(rec_).empty()) << "schema registered while OFF"; \
    GTEST_SKIP() << "megaring was built with MEGARING_NVTX=OFF";                 \
  }

TEST_F(Nvtx, TicketsSchemaRegisteredOnce) {
  Config config;
  config.backend = megaring::Backend::kCpu;
  std::unique_ptr<Runtime> rt;
  MR_ASSERT_OK(Runtime::create(config, &rt));
  MR_SKIP_IF_NVTX_OFF();
  Ticket t;
  for (int i = 0; i < 20; ++i) MR_ASSERT_OK(rt->publish(megaring::ops::nop(i), &t));
  MR_ASSERT_OK(rt->wait_done(t, long_wait()));
  MR_ASSERT_OK(rt->shutdown(long_wait()));

  EXPECT_GE(rec_.payload_init_count(), 1) << "NVTX never initialised the payload extension";
  const auto schemas = tickets_schemas(rec_);
  ASSERT_EQ(schemas.size(), 1u) << "registered once per domain, not per call";
  const auto& s = schemas.front();
  EXPECT_EQ(s.type, kSchemaStatic);
  EXPECT_GE(s.id, kStaticSchemaStart);
  EXPECT_EQ(s.static_size, 24u);
  ASSERT_EQ(s.entries.size(), 4u);
  const struct {
    const char* name;
    uint64_t type, offset;
  } want[] = {{"first_ticket", kTypeUint64, 0}, {"count", kTypeUint32, 8},
              {"tenant", kTypeUint32, 12}, {"ring", kTypeUint32, 16}};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(s.entries[i].name, want[i].name) << "entry " << i;
    EXPECT_EQ(s.entries[i].type, want[i].type) << want[i].name;
    EXPECT_EQ(s.entries[i].offset, want[i].offset) << want[i].name;
  }

  // Every payload in the domain: that schema, registered before it, whole.
  size_t with_payload = 0;
  for (const auto& e : rec_.events()) {
    if (e.domain != kDomain) continue;
    for (const auto& p : e.payloads) {
      ++with_payload;
      EXPECT_EQ(p.schema_id, s.id) << e.message;
      EXPECT_TRUE(p.schema_registered) << e.message << ": payload before its schema";
      EXPECT_EQ(p.size, s.static_size) << e.message;
    }
  }
  EXPECT_GE(with_payload, 21u) << summary(rec_.events());  // 20 publish_slots + wait_done
}

TEST_F(Nvtx, RuntimePublishCarriesTickets) {
  MR_SKIP_IF_NVTX_OFF();
  Config config;
  config.backend = megaring::Backend::kCpu;
  config.ring_capacity = 64;
  std::unique_ptr<Runtime> rt;
  MR_ASSERT_OK(Runtime::create(config, &rt));
  rec_.reset();

  Ticket single;
  MR_ASSERT_OK(rt->publish(megaring::ops::nop(1), &single));
  constexpr uint32_t kBatch = 7;
  std::vector<SlotRequest> batch(kBatch, megaring::ops::nop(2));
  Ticket first;
  MR_ASSERT_OK(rt->publish_batch(batch.data(), kBatch, &first));
  PublishOptions keep;
  keep.keep_result = true;
  Ticket kept;
  MR_ASSERT_OK(rt->publish(megaring::ops::nop(3), &kept, keep));
  // Refused before any ticket is taken: a publish range, no publish_slots.
  std::vector<SlotRequest> too_big(config.ring_capacity + 1, megaring::ops::nop(4));
  Ticket refused;
  MR_EXPECT_RESULT(
      rt->publish_batch(too_big.data(), static_cast<uint32_t>(too_big.size()), &refused),
      megaring::Result::kInvalidArgument);
  Completion c;
  MR_ASSERT_OK(rt->wait(kept, &c, long_wait()));
  const Ticket last_of_batch{first.value + kBatch - 1, false};
  MR_ASSERT_OK(rt->wait_done(last_of_batch, long_wait()));
  MR_ASSERT_OK(rt->shutdown(long_wait()));
  rt.reset();

  const std::string recorded = summary(rec_.events());
  const auto slots = carried(rec_, "megaring::publish_slots");
  ASSERT_EQ(slots.size(), 3u) << recorded;
  EXPECT_EQ(slots[0], tickets(single.value, 1, 0, 0));
  EXPECT_EQ(slots[1], tickets(first.value, kBatch, 0, 0));
  EXPECT_EQ(slots[2], tickets(kept.value, 1, 0, 0));
  // The outer range opens before the tickets are known, so it carries none.
  EXPECT_EQ(rec_.opened(kDomain, "megaring::publish"), 4u) << recorded;
  for (const auto& e : rec_.events())
    if (e.message == "megaring::publish") EXPECT_TRUE(e.payloads.empty());
  // Nested: publish_slots opens and closes inside its publish, on one thread.
  const auto events = rec_.events();
  std::vector<std::string> stack;
  for (const auto& e : events) {
    if (e.domain != kDomain || (e.message != "megaring::publish" &&
                                e.message != "megaring::publish_slots"))
      continue;
    if (e.kind == MR_NVTX_PUSH) {
      if (e.message == "megaring::publish_slots")
        EXPECT_TRUE(!stack.empty() && stack.back() == "megaring::publish") << recorded;
      stack.push_back(e.message);
    } else if (e.kind == MR_NVTX_POP) {
      ASSERT_FALSE(stack.empty());
      EXPECT_EQ(stack.back(), e.message);
      stack.pop_back();
    }
  }
  EXPECT_TRUE(stack.empty());

  const auto waits = carried(rec_, "megaring::wait");
  ASSERT_EQ(waits.size(), 1u) << recorded;
  EXPECT_EQ(waits[0], tickets(kept.value, 1, 0, 0));
  const auto dones = carried(rec_, "megaring::wait_done");
  ASSERT_EQ(dones.size(), 1u) << recorded;
  EXPECT_EQ(dones[0], tickets(last_of_batch.value, 1, 0, 0));

  // Reap passes (serialised by the reap lock) cover published tickets, in
  // order; a pass may stop short of its count (at a kept result not yet
  // read), and the next one starts there.
  const auto reaps = carried(rec_, "megaring::reap");
  EXPECT_FALSE(reaps.empty()) << recorded;
  uint64_t previous = single.value;
  for (const auto& r : reaps) {
    EXPECT_GE(r.at("first_ticket"), previous) << "reap passes go forward";
    EXPECT_GE(r.at("count"), 1u);
    EXPECT_LE(r.at("first_ticket") + r.at("count"), kept.value + 1) << "past the last publish";
    EXPECT_EQ(r.at("tenant"), 0u);
    EXPECT_EQ(r.at("ring"), 0u);
    previous = r.at("first_ticket");
  }
}

TEST_F(Nvtx, TenantPublishCarriesTenant) {
  MR_SKIP_IF_NVTX_OFF();
  Config config;
  config.backend = megaring::Backend::kCpu;
  config.ring_capacity = 64;
  std::unique_ptr<Runtime> rt;
  MR_ASSERT_OK(Runtime::create(config, &rt));
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt, megaring::RegistryConfig{}, &registry));
  megaring::TenantConfig tc;
  tc.label = "a";
  megaring::TenantHandle a, b;
  MR_ASSERT_OK(registry->register_tenant(tc, &a));
  tc.label = "b";
  MR_ASSERT_OK(registry->register_tenant(tc, &b));
  ASSERT_NE(a.id(), b.id());
  rec_.reset();

  Ticket ta, tb;
  std::vector<SlotRequest> batch(3, megaring::ops::nop(1));
  MR_ASSERT_OK(a.publish_batch(batch.data(), 3, &ta));
  MR_ASSERT_OK(b.publish_slot(megaring::ops::nop(2), &tb));
  MR_ASSERT_OK(a.quiesce(long_wait()));
  MR_ASSERT_OK(b.quiesce(long_wait()));
  const auto slots = carried(rec_, "megaring::publish_slots");
  registry.reset();
  MR_ASSERT_OK(rt->shutdown(long_wait()));

  ASSERT_EQ(slots.size(), 2u) << summary(rec_.events());
  EXPECT_EQ(slots[0], tickets(ta.value, 3, a.id(), 0));
  EXPECT_EQ(slots[1], tickets(tb.value, 1, b.id(), 0));
}

TEST_F(Nvtx, ProducerCarriesItsRing) {
  MR_SKIP_IF_NVTX_OFF();
  Config config;
  config.backend = megaring::Backend::kCpu;
  config.ring_capacity = 64;
  config.producer_rings = 2;
  std::unique_ptr<Runtime> rt;
  MR_ASSERT_OK(Runtime::create(config, &rt));
  std::unique_ptr<megaring::Producer> p1, p2;
  MR_ASSERT_OK(rt->open_producer(&p1));
  MR_ASSERT_OK(rt->open_producer(&p2));
  ASSERT_NE(p1->ring(), p2->ring());
  ASSERT_NE(p1->ring(), 0u);
  ASSERT_NE(p2->ring(), 0u);
  const uint32_t r1 = p1->ring(), r2 = p2->ring();
  rec_.reset();

  constexpr uint32_t kBatch = 5;
  std::vector<SlotRequest> batch(kBatch, megaring::ops::nop(1));
  Ticket f1, f2;
  MR_ASSERT_OK(p1->publish_batch(batch.data(), kBatch, &f1));
  MR_ASSERT_OK(p2->publish_batch(batch.data(), kBatch, &f2));
  Completion c;
  MR_ASSERT_OK(p2->call(megaring::ops::nop(9), &c, long_wait()));  // publish + wait
  const Ticket last1{f1.value + kBatch - 1, false};
  MR_ASSERT_OK(p1->wait_done(last1, long_wait()));
  p1.reset();
  p2.reset();
  MR_ASSERT_OK(rt->shutdown(long_wait()));

  const std::string recorded = summary(rec_.events());
  const auto publishes = carried(rec_, "megaring::producer_publish");
  ASSERT_EQ(publishes.size(), 3u) << recorded;
  EXPECT_EQ(publishes[0], tickets(f1.value, kBatch, 0, r1));
  EXPECT_EQ(publishes[1], tickets(f2.value, kBatch, 0, r2));
  EXPECT_EQ(publishes[2], tickets(f2.value + kBatch, 1, 0, r2));  // call's publish
  const auto waits = carried(rec_, "megaring::producer_wait");
  ASSERT_EQ(waits.size(), 1u) << recorded;
  EXPECT_EQ(waits[0], tickets(f2.value + kBatch, 1, 0, r2));
  const auto dones = carried(rec_, "megaring::producer_wait_done");
  ASSERT_EQ(dones.size(), 1u) << recorded;
  EXPECT_EQ(dones[0], tickets(last1.value, 1, 0, r1));
  // A producer's publish takes no shared-ring tickets.
  EXPECT_EQ(rec_.opened(kDomain, "megaring::publish_slots"), 0u) << recorded;
}

}  // namespace
