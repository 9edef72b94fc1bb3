// SPDX-License-Identifier: Apache-2.0
// Host cost on the CPU backend: P producer threads each publish their share
// of N NOP slots (one per call, fire and forget), C consumer threads run them
// and signal completion, and every producer waits until its last slot has
// completed. The same workload runs on
//   * megaring's CPU backend: a Producer a thread (a ring of its own) and
//     Producer::publish + the CPU workers (C = workers) + wait_done on the
//     producer's last ticket;
//   * moodycamel::ConcurrentQueue: enqueue (producer token) + C consumer
//     threads (try_dequeue with a consumer token) that write a 16-byte
//     completion record and bump the producer's done counter (release), the
//     producer waiting on that counter.
// Both get the same in-flight window (ring/P outstanding items a producer:
// megaring's rings, and its staged queue, are ring/P slots), the same 64-byte item,
// the same idle policy for consumers (megaring's poll backoff: 64 ns doubling
// to 2048 ns, yield below 1 us, sleep above, with the CPU workers' 1 us timer
// slack) and for waiting producers (megaring's HostWaiter: 256 pauses, 256
// yields, then sleeps to 200 us).
#include "host_cost.hpp"

#include <time.h>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <megaring/detail/host_waiter.hpp>
#include <megaring/producer.hpp>
#include <megaring/runtime.hpp>

#include "arms.hpp"

#if defined(MEGARING_BENCH_MOODYCAMEL_HEADER)
#include MEGARING_BENCH_MOODYCAMEL_HEADER
#define MR_HAVE_MOODYCAMEL 1
#else
#define MR_HAVE_MOODYCAMEL 0
#endif

namespace mrbench {

bool have_moodycamel() { return MR_HAVE_MOODYCAMEL != 0; }

namespace {

double process_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

// megaring's own host wait policy, for the queue's producers too.
using megaring::detail::HostWaiter;

// megaring's consumer poll backoff (detail::Backoff + pause_ns, CPU side).
struct Backoff {
  uint32_t current = 64;
  void reset() { current = 64; }
  void pause() {
    if (current < 1000)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::nanoseconds(current));
    current = std::min<uint32_t>(current * 2, 2048);
  }
};

// Start line for producer threads: they spin until the main thread opens it.
struct StartLine {
  std::atomic<bool> go{false};
  void wait() const {
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  }
};

struct TrialResult {
  bool ok = true;
  std::string error;
  double seconds = 0;
  double cpu_ns = 0;
  std::vector<double> publish_ns;
};

// Opens the start line, joins the producers, and records the trial's wall and
// process CPU time from the opening to the last join.
void open_and_join(StartLine& start, std::vector<std::thread>& threads, TrialResult* res) {
  const double cpu0 = process_cpu_ns();
  const auto t0 = Clock::now();
  start.go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  res->seconds = elapsed_ns(t0, Clock::now()) * 1e-9;
  res->cpu_ns = process_cpu_ns() - cpu0;
}

std::vector<uint64_t> split(uint64_t total, int parts) {
  std::vector<uint64_t> v(static_cast<size_t>(parts), total / static_cast<uint64_t>(parts));
  v[0] += total % static_cast<uint64_t>(parts);
  return v;
}

// ---------------------------------------------------------------------------
// megaring CPU backend
// ---------------------------------------------------------------------------
// Each thread publishes on its own ring, `rings[p]`.
TrialResult megaring_trial(const std::vector<std::unique_ptr<megaring::Producer>>& rings,
                           uint64_t slots, int sample_every) {
  using namespace megaring;
  const int producers = static_cast<int>(rings.size());
  TrialResult res;
  const auto shares = split(slots, producers);
  std::vector<std::vector<double>> samples(static_cast<size_t>(producers));
  std::vector<std::string> errors(static_cast<size_t>(producers));
  StartLine start;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      auto& mine = samples[static_cast<size_t>(p)];
      mine.reserve(shares[static_cast<size_t>(p)] / static_cast<uint64_t>(sample_every) + 1);
      const SlotRequest nop = ops::nop(static_cast<uint64_t>(p));
      Producer& ring = *rings[static_cast<size_t>(p)];
      Ticket last;
      start.wait();
      for (uint64_t i = 0; i < shares[static_cast<size_t>(p)]; ++i) {
        Status st;
        if (i % static_cast<uint64_t>(sample_every) == 0) {
          const auto t0 = Clock::now();
          st = ring.publish(nop, &last);
          mine.push_back(elapsed_ns(t0, Clock::now()));
        } else {
          st = ring.publish(nop, &last);
        }
        if (!st) {
          errors[static_cast<size_t>(p)] = "publish: " + st.to_string();
          return;
        }
      }
      if (shares[static_cast<size_t>(p)] > 0) {
        const Status st = ring.wait_done(last);
        if (!st) errors[static_cast<size_t>(p)] = "wait_done: " + st.to_string();
        // Every slot completed once: the ring's DONE_COUNT is what it published.
        else if (ring.done_count() != last.value + 1)
          errors[static_cast<size_t>(p)] = "DONE_COUNT " + std::to_string(ring.done_count()) +
                                           " after ticket " + std::to_string(last.value);
      }
    });
  }
  open_and_join(start, threads, &res);
  for (int p = 0; p < producers; ++p) {
    if (!errors[static_cast<size_t>(p)].empty()) {
      res.ok = false;
      res.error = errors[static_cast<size_t>(p)];
    }
    res.publish_ns.insert(res.publish_ns.end(), samples[static_cast<size_t>(p)].begin(),
                          samples[static_cast<size_t>(p)].end());
  }
  return res;
}

#if MR_HAVE_MOODYCAMEL
// ---------------------------------------------------------------------------
// moodycamel::ConcurrentQueue
// ---------------------------------------------------------------------------
struct Item {  // 64 bytes, like a ring slot
  uint32_t opcode;
  uint32_t producer;
  uint64_t seq;
  uint64_t args[5];
  uint64_t pad;
};
static_assert(sizeof(Item) == 64, "item is a slot-sized 64 bytes");

struct alignas(64) Record {  // the completion record, as megaring's (16 bytes used)
  uint64_t result;
  uint16_t status;
  uint16_t fault;
  std::atomic<uint32_t> tag;
};

struct alignas(64) DoneCounter {
  std::atomic<uint64_t> value{0};
};

class QueueBench {
 public:
  QueueBench(int producers, int consumers, uint32_t ring)
      : producers_(producers),
        window_(std::max<uint64_t>(1, ring / static_cast<uint32_t>(producers))),
        done_(new DoneCounter[static_cast<size_t>(producers)]),
        records_(static_cast<size_t>(producers)) {
    for (auto& r : records_) r.reset(new Record[window_]);
    for (int c = 0; c < consumers; ++c) consumers_.emplace_back([this] { consume(); });
  }
  ~QueueBench() {
    stop_.store(true, std::memory_order_release);
    for (auto& t : consumers_) t.join();
  }

  TrialResult trial(uint64_t slots, int sample_every) {
    TrialResult res;
    const auto shares = split(slots, producers_);
    // Consumers are idle (every earlier item completed): reset the counters.
    for (int p = 0; p < producers_; ++p) done_[p].value.store(0, std::memory_order_relaxed);
    std::vector<std::vector<double>> samples(static_cast<size_t>(producers_));
    StartLine start;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers_; ++p) {
      threads.emplace_back([&, p] {
        auto& mine = samples[static_cast<size_t>(p)];
        const uint64_t share = shares[static_cast<size_t>(p)];
        mine.reserve(share / static_cast<uint64_t>(sample_every) + 1);
        moodycamel::ProducerToken token(queue_);
        std::atomic<uint64_t>& done = done_[p].value;
        Item item{};
        item.opcode = MR_OP_NOP;
        item.producer = static_cast<uint32_t>(p);
        item.args[0] = static_cast<uint64_t>(p);
        start.wait();
        for (uint64_t i = 0; i < share; ++i) {
          const bool timed = i % static_cast<uint64_t>(sample_every) == 0;
          const auto t0 = timed ? Clock::now() : Clock::time_point{};
          // Back-pressure, as megaring's reserve(): at most window_ in flight.
          if (i - done.load(std::memory_order_acquire) >= window_) {
            HostWaiter waiter;
            while (i - done.load(std::memory_order_acquire) >= window_) waiter.pause();
          }
          item.seq = i;
          while (!queue_.enqueue(token, item)) std::this_thread::yield();  // never with defaults
          if (timed) mine.push_back(elapsed_ns(t0, Clock::now()));
        }
        HostWaiter waiter;
        while (done.load(std::memory_order_acquire) < share) waiter.pause();
      });
    }
    open_and_join(start, threads, &res);
    for (auto& s : samples) res.publish_ns.insert(res.publish_ns.end(), s.begin(), s.end());
    return res;
  }

 private:
  void consume() {
#if defined(__linux__)
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);  // as megaring's CPU workers (cpu_backend.cpp)
#endif
    moodycamel::ConsumerToken token(queue_);
    Backoff backoff;
    Item item;
    while (!stop_.load(std::memory_order_acquire)) {
      if (!queue_.try_dequeue(token, item)) {
        backoff.pause();
        continue;
      }
      backoff.reset();
      // "Execute" the NOP, then signal completion: the record (release on its
      // tag, as megaring's C5) and the producer's done counter (release).
      Record& rec = records_[item.producer][item.seq % window_];
      rec.result = item.args[0];
      rec.status = MR_STATUS_OK;
      rec.fault = MR_FAULT_NONE;
      rec.tag.store(static_cast<uint32_t>(item.seq), std::memory_order_release);
      done_[item.producer].value.fetch_add(1, std::memory_order_release);
    }
  }

  int producers_;
  uint64_t window_;
  moodycamel::ConcurrentQueue<Item> queue_;
  std::unique_ptr<DoneCounter[]> done_;
  std::vector<std::unique_ptr<Record[]>> records_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> consumers_;
};
#endif

void fill_arm(Arm& arm, const std::vector<TrialResult>& trials, uint64_t slots) {
  std::vector<double> rates, publish, cpu;
  for (const auto& t : trials) {
    if (!t.ok) {
      arm.status = "error";
      arm.reason = t.error;
      return;
    }
    rates.push_back(double(slots) / t.seconds);
    cpu.push_back(t.cpu_ns / double(slots));
    publish.insert(publish.end(), t.publish_ns.begin(), t.publish_ns.end());
  }
  arm.has_rate = true;
  arm.rate = summarize_rates(rates);
  arm.rate_unit = "slots/s";
  arm.has_latency = true;  // publish / enqueue call duration (sampled)
  arm.latency = summarize(publish);
  const RateStats c = summarize_rates(cpu);
  arm.extra["ns_per_slot"] = 1e9 / arm.rate.median;
  arm.extra["cpu_ns_per_slot"] = c.median;
  arm.extra["latency_is"] = "duration of the publish/enqueue call (every Nth), incl. back-pressure";
}

// One measured megaring trial on a fresh, warmed CPU-backend runtime.
TrialResult megaring_fresh_trial(const HostCostOptions& o, int producers, uint64_t warm_slots) {
  using namespace megaring;
  TrialResult res;
  Config config;
  config.backend = Backend::kCpu;
  config.workers = static_cast<uint32_t>(o.consumers);
  // ring/P a producer, as the queue's window (o.ring and P: powers of two).
  config.ring_capacity = std::max<uint32_t>(1, o.ring / static_cast<uint32_t>(producers));
  config.producer_rings = static_cast<uint32_t>(producers);
  std::unique_ptr<Runtime> rt;
  Status st = Runtime::create(config, &rt);
  if (!st) {
    res.ok = false;
    res.error = "create: " + st.to_string();
    return res;
  }
  std::vector<std::unique_ptr<Producer>> rings(static_cast<size_t>(producers));
  for (auto& ring : rings) {
    if (!(st = rt->open_producer(&ring))) {
      res.ok = false;
      res.error = "open_producer: " + st.to_string();
      return res;
    }
  }
  (void)megaring_trial(rings, warm_slots, o.sample_every);
  res = megaring_trial(rings, o.slots, o.sample_every);
  rings.clear();
  st = rt->shutdown();
  if (res.ok && !st) {
    res.ok = false;
    res.error = "shutdown: " + st.to_string();
  }
  return res;
}

}  // namespace

void run_host_cost(const HostCostOptions& o, std::vector<Arm>* arms,
                   void (*on_arm)(const Arm&)) {
  const uint64_t warm_slots = std::max<uint64_t>(o.slots / 10, 1000);
  const unsigned hw = std::thread::hardware_concurrency();
  for (int producers : o.producers) {
    Arm mr;
    mr.name = "host.megaring.p" + std::to_string(producers);
    mr.group = "host_cost";
    mr.label = "megaring cpu backend, " + std::to_string(producers) + " producer(s)";
    mr.params["producers"] = producers;
    mr.params["consumers"] = o.consumers;
    mr.params["slots"] = static_cast<unsigned long long>(o.slots);
    mr.params["ring"] = o.ring;
    mr.params["hardware_threads"] = hw;
    mr.params["oversubscribed"] = static_cast<unsigned>(producers + o.consumers) > hw;
    mr.params["queue"] = "megaring";
    Arm mc = mr;
    mc.name = "host.moodycamel.p" + std::to_string(producers);
    mc.label = "moodycamel ConcurrentQueue, " + std::to_string(producers) + " producer(s)";
    mc.params["queue"] = "moodycamel::ConcurrentQueue";

    // Trials alternate between the two (AB, BA, AB, ...), each on a fresh,
    // warmed instance, so that drift on a shared machine hits both alike.
    std::vector<TrialResult> mr_trials, mc_trials;
    for (int t = 0; t < o.trials; ++t) {
      for (int k = 0; k < 2; ++k) {
        const bool megaring_turn = (k == 0) == (t % 2 == 0);
        if (megaring_turn) {
          mr_trials.push_back(megaring_fresh_trial(o, producers, warm_slots));
        } else {
#if MR_HAVE_MOODYCAMEL
          QueueBench bench(producers, o.consumers, o.ring);
          (void)bench.trial(warm_slots, o.sample_every);
          mc_trials.push_back(bench.trial(o.slots, o.sample_every));
#endif
        }
      }
    }
    fill_arm(mr, mr_trials, o.slots);
#if MR_HAVE_MOODYCAMEL
    fill_arm(mc, mc_trials, o.slots);
#else
    mc.status = "skipped";
    mc.reason = "moodycamel ConcurrentQueue not found at build time (apt-get install libconcurrentqueue-dev)";
#endif
    for (const Arm* a : {&mr, &mc}) {
      arms->push_back(*a);
      if (on_arm) on_arm(arms->back());
    }
  }
}

// The arm function (arms.hpp): run_host_cost with the run's sizes and options.
void host_cost_arms(BenchRun& run) {
  HostCostOptions ho = run.sizes.host;
  ho.consumers = run.options.host_consumers;
  ho.ring = run.options.ring;
  if (!have_moodycamel())
    std::printf("  note: moodycamel ConcurrentQueue not found at build time; its arm is skipped\n");
  run_host_cost(ho, &run.arms, &announce);
}

}  // namespace mrbench
