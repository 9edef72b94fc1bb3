// SPDX-License-Identifier: Apache-2.0
// megaring_bench: producer scaling (scaling.p*, scaling.r*, scaling.t*):
// 1..16 producers' throughput and sampled per-slot latency, on the shared
// ring 0, on a ring each, and through a tenant each (tenant_scaling.cpp).
#include <megaring/producer.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "arms.hpp"

namespace mrbench {

using namespace megaring;

namespace {

// P producers share `slots` NOPs (publish_batch of `batch`, fire and forget).
// Every `sample_every`-th slot of each producer is a kept NOP: its latency runs
// from the publish until the producer sees its completion, polled between the
// producer's next publishes with wait(timeout 0), so sampling does not stall
// the producer (one sample in flight per producer).
// With `rings` (one Producer a thread), each producer publishes on a ring
// of its own; without, they all share ring 0 (Runtime::publish).
bool megaring_scaling(Runtime& rt, const std::vector<std::unique_ptr<Producer>>* rings,
                      int producers, uint64_t slots, int batch, int sample_every, double* rate,
                      std::vector<double>* latency, std::string* error) {
  const std::vector<uint64_t> share = split_evenly(slots, producers);
  std::vector<std::vector<double>> samples(static_cast<size_t>(producers));
  std::vector<std::string> errors(static_cast<size_t>(producers));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      const size_t me = static_cast<size_t>(p);
      Producer* ring = rings != nullptr ? (*rings)[me].get() : nullptr;
      const auto publish = [&](const SlotRequest* r, uint32_t n, Ticket* t, const PublishOptions& o) {
        return ring != nullptr ? ring->publish_batch(r, n, t, o) : rt.publish_batch(r, n, t, o);
      };
      const auto wait = [&](const Ticket& t, Completion* c, Nanoseconds timeout) {
        return ring != nullptr ? ring->wait(t, c, timeout) : rt.wait(t, c, timeout);
      };
      const auto wait_done = [&](const Ticket& t) {
        return ring != nullptr ? ring->wait_done(t) : rt.wait_done(t);
      };
      std::vector<SlotRequest> requests(static_cast<size_t>(batch), ops::nop(p));
      samples[me].reserve(share[me] / static_cast<uint64_t>(sample_every) + 1);
      Ticket first, last, probe;
      bool have_last = false, probing = false;
      uint64_t probe_echo = 0;
      Clock::time_point probe_t0;
      uint64_t since_sample = 0;
      PublishOptions keep, block, fail_fast;
      keep.keep_result = true;
      keep.on_full = OnFull::kFail;  // see below: read the probe rather than wait for room
      fail_fast.on_full = OnFull::kFail;
      // Reads the probe's completion if it is there (or waits for it).
      auto poll_probe = [&](Nanoseconds timeout) -> bool {
        Completion c;
        const Status st = wait(probe, &c, timeout);
        if (st.code() == Result::kTimeout) return true;
        const auto t1 = Clock::now();
        if (!st || !c.ok() || c.result != probe_echo) {
          errors[me] = st ? "kept NOP returned a wrong completion" : "wait: " + st.to_string();
          return false;
        }
        samples[me].push_back(elapsed_ns(probe_t0, t1));
        probing = false;
        return true;
      };
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (uint64_t done = 0; done < share[me];) {
        if (probing && !poll_probe(Nanoseconds(0))) return;
        if (!probing && since_sample + 1 >= static_cast<uint64_t>(sample_every)) {
          since_sample = 0;
          probe_echo = (uint64_t(p) << 40) | done;
          probe_t0 = Clock::now();
          const SlotRequest probe_slot = ops::nop(probe_echo);
          const Status st = publish(&probe_slot, 1, &probe, keep);
          if (st.code() == Result::kRingFull) {
            since_sample = static_cast<uint64_t>(sample_every);  // try again next round
            std::this_thread::yield();
            continue;
          }
          if (!st) {
            errors[me] = "publish(keep): " + st.to_string();
            return;
          }
          probing = true;
          ++done;
          continue;
        }
        const uint64_t room = std::min<uint64_t>(static_cast<uint64_t>(batch), share[me] - done);
        const uint32_t n = static_cast<uint32_t>(room);
        // With a probe out, a full ring means "go read it": the probe's
        // latency is measured until this producer sees it, so it is read as
        // soon as the producer would otherwise wait. (Waiting would also be
        // safe: the runtime parks an unread kept result rather than let it
        // block the ring.)
        const Status st = publish(requests.data(), n, &first, probing ? fail_fast : block);
        if (st.code() == Result::kRingFull) {
          std::this_thread::yield();
          continue;  // polls the probe at the loop top
        }
        if (!st) {
          errors[me] = "publish_batch: " + st.to_string();
          return;
        }
        last = Ticket{first.value + n - 1, false};
        have_last = true;
        done += n;
        since_sample += n;
      }
      if (probing && !poll_probe(kForever)) return;
      if (have_last) {
        const Status st = wait_done(last);
        if (!st) errors[me] = "wait_done: " + st.to_string();
      }
    });
  }
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  *rate = double(slots) / (elapsed_ns(t0, Clock::now()) * 1e-9);
  for (int p = 0; p < producers; ++p) {
    if (!errors[static_cast<size_t>(p)].empty()) {
      *error = errors[static_cast<size_t>(p)];
      return false;
    }
    latency->insert(latency->end(), samples[static_cast<size_t>(p)].begin(),
                    samples[static_cast<size_t>(p)].end());
  }
  return true;
}

}  // namespace

void producer_scaling_arms(BenchRun& run) {
  const Options& opt = run.options;
  const Sizes& sz = run.sizes;
  // Every producer on ring 0 (scaling.p*), each on a ring of its own
  // (scaling.r*: a Producer a thread, in a runtime of their own, since
  // idle rings beside ring 0 would change what the other arms measure),
  // then through tenants, one a producer (scaling.t*).
  enum class Via { kRingZero, kOwnRings, kTenants };
  std::unique_ptr<Runtime> rings_rt;
  std::string rings_error;
  int most_rings = 0;
  for (int p : sz.scaling_producers)
    if (p <= static_cast<int>(MR_MAX_RINGS - 1)) most_rings = std::max(most_rings, p);
  if (run.runtime && most_rings > 0) {
    Config config = bench_config(run);
    config.timeline_capacity = 0;  // timeline mode is ring 0's alone
    config.producer_rings = static_cast<uint32_t>(most_rings);
    const Status st = Runtime::create(config, &rings_rt);
    if (!st) rings_error = "Runtime::create (producer rings): " + st.to_string();
  }
  for (const Via via : {Via::kRingZero, Via::kOwnRings, Via::kTenants}) {
    const bool tenants = via == Via::kTenants;
    const bool own_rings = via == Via::kOwnRings;
    for (int p : sz.scaling_producers) {
      if (own_rings && p > most_rings) continue;
      const std::string name =
          (tenants ? "scaling.t" : own_rings ? "scaling.r" : "scaling.p") + std::to_string(p);
      const std::string label = "megaring " + std::to_string(p) +
                                (tenants ? " tenant(s)" : own_rings ? " producer(s), a ring each"
                                                                    : " producer(s)") +
                                ", batch " + std::to_string(opt.scaling_batch) + " [" + run.backend_tag + "]";
      if (!run.runtime || (own_rings && !rings_rt)) {
        run.add(skipped(name.c_str(), "scaling", label,
                        !run.runtime ? run.runtime_error : rings_error));
        continue;
      }
      Arm a = make_arm(name.c_str(), "scaling", label);
      a.params["producers"] = p;
      if (tenants) a.params["tenants"] = true;
      if (own_rings) a.params["own_rings"] = true;
      a.params["batch"] = opt.scaling_batch;
      a.params["slots"] = static_cast<unsigned long long>(sz.scaling_slots);
      if (!tenants) a.params["sample_every"] = sz.scaling_sample_every;
      a.params["backend"] = run.backend_tag;
      std::vector<double> rates, lat;
      std::string err;
      double r = 0;
      std::vector<std::unique_ptr<Producer>> producers(own_rings ? static_cast<size_t>(p) : 0);
      bool ok = true;
      for (auto& producer : producers) {
        const Status st = rings_rt->open_producer(&producer);
        if (!st) {
          err = "open_producer: " + st.to_string();
          ok = false;
          break;
        }
      }
      Runtime& rt = *run.runtime;
      // Tenant runs measure throughput only (megaring_tenant_scaling).
      const auto trial = [&](uint64_t slots) {
        if (tenants) return megaring_tenant_scaling(rt, p, slots, opt.scaling_batch, &r, &err);
        return megaring_scaling(own_rings ? *rings_rt : rt, own_rings ? &producers : nullptr, p,
                                slots, opt.scaling_batch, sz.scaling_sample_every, &r, &lat, &err);
      };
      ok = ok && trial(sz.scaling_slots / 10);  // warm-up
      lat.clear();
      for (int t = 0; ok && t < sz.scaling_trials; ++t) {
        ok = trial(sz.scaling_slots);
        if (ok) rates.push_back(r);
      }
      set_rate_result(a, ok, rates, "slots/s", err);
      if (ok && !tenants) {
        a.has_latency = true;
        a.latency = summarize(lat);
        a.extra["latency_is"] =
            "kept NOP every Nth slot: publish until its producer sees the completion "
            "(polled between its publishes), under the load";
      }
      run.add(a);
    }
  }
}

}  // namespace mrbench
