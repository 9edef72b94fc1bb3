// megaring_bench: every arm of the benchmark in one process, warm, with the
// same clocks; a table on stdout and a JSON report. bench/README.md has the
// method; `megaring_bench --help` the options.
//
// Arms (groups):
//   rt        round trip: Runtime::call(NOP) beside empty-kernel launch+sync,
//             one-node graph launch+sync and the mapped-memory ping-pong floor
//   tput      throughput: 10^6 NOPs from one producer at batch 1/8/64/256,
//             beside back-to-back launches and a many-node graph replayed
//   scaling   1..16 producers: throughput and sampled per-slot latency
//   interf    a large cuBLAS GEMM alone and beside an idle megakernel at
//             several block counts and backoffs; wake-up latency per setting
//   host      host cost per slot on the CPU backend vs moodycamel's queue
//   fair      tenants: a light tenant's latency alone and beside a flooding
//             tenant held to several outstanding-slot quotas
//
// The GPU rules, which every arm keeps: CUDA_MODULE_LOADING=EAGER before CUDA
// initialises; every kernel, graph and the cuBLAS handle loaded before the
// first runtime exists; no cudaDeviceSynchronize (or cudaMalloc/cudaFree)
// while a runtime is alive; only our own streams and events are waited on.
#include <cstdlib>
// clang-format off
// (first thing: before any CUDA call, including static initialisers' ones)
namespace { const int kEagerSet = setenv("CUDA_MODULE_LOADING", "EAGER", 0); }
// clang-format on

#include <megaring/producer.hpp>
#include <megaring/runtime.hpp>

#include <megaring/tenant.hpp>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "cost_model.hpp"
#include "env_info.hpp"
#include "fairness.hpp"
#include "gpu_arms.hpp"
#include "host_cost.hpp"

using namespace megaring;
using namespace mrbench;

namespace {

// ---------------------------------------------------------------------------
// Options and sizes
// ---------------------------------------------------------------------------
struct Options {
  bool short_mode = false;
  std::set<std::string> arms = {"rt", "tput", "scaling", "interf", "host", "fair"};
  std::string json_path;
  std::string results_dir;
  Backend backend = Backend::kAuto;
  int device = 0;
  uint32_t ring = 1024;
  int host_consumers = 2;
  int scaling_batch = 1;
  int workers = -1;      // Config::workers for the rt/tput/scaling runtime (-1: default)
  long backoff_max = -1;  // Config::poll_backoff_max_ns for it (-1: default)
  int fetch_warps = -1;   // Config::fetch_warps for it (-1: default)
  uint32_t timeline = 0;  // Config::timeline_capacity for it (0: off), to measure its cost
  std::string trace_path;  // the timeline arms' trace (Perfetto JSON); empty: none
  bool cost_model = false;  // --cost-model: the cost model alone (cost_model.hpp)
  bool cost_budgets = false;  // --cost-budgets: and fail on a missed budget
};

struct Sizes {
  int rt_warmup, rt_iters;
  int launch_iters, graph_iters, ping_iters;
  uint64_t tput_slots;
  int tput_trials;
  int launch_tput, graph_replays, graph_nodes, tput_raw_trials;
  uint64_t scaling_slots;
  int scaling_trials, scaling_sample_every;
  std::vector<int> scaling_producers;
  int gemm_n, gemm_reps, gemm_trials, wake_samples;
  size_t copy_mb;  // interference: host-to-device copy size and copies a trial
  int copy_reps;
  double wake_gap_us;
  // Config::workers values: 0 = the library default (kDefaultGpuWorkers
  // blocks), kAllSms = one block per SM.
  std::vector<uint32_t> interf_workers;
  std::vector<uint32_t> interf_backoff;
  // Also at these block counts (default backoff): a one-warp consumer
  // (gpu::narrow_consumer), which leaves a GEMM CTA more of each SM.
  std::vector<uint32_t> interf_narrow_workers;
  HostCostOptions host;
  int fair_samples;
  std::vector<uint64_t> fair_caps;
};

// In Sizes::interf_*workers: one block per SM.
constexpr uint32_t kAllSms = std::numeric_limits<uint32_t>::max();

Sizes sizes_for(bool short_mode) {
  Sizes s;
  if (!short_mode) {
    s.rt_warmup = 2000; s.rt_iters = 100000;
    s.launch_iters = 50000; s.graph_iters = 50000; s.ping_iters = 100000;
    s.tput_slots = 1000000; s.tput_trials = 5;
    s.launch_tput = 100000; s.graph_replays = 100; s.graph_nodes = 1000; s.tput_raw_trials = 5;
    s.scaling_slots = 1000000; s.scaling_trials = 3; s.scaling_sample_every = 64;
    s.scaling_producers = {1, 2, 4, 8, 16};
    s.gemm_n = 8192; s.gemm_reps = 20; s.gemm_trials = 3; s.wake_samples = 2000;
    s.copy_mb = 256; s.copy_reps = 8;
    s.wake_gap_us = 100;
    s.interf_workers = {1, 0, 8, 32, kAllSms};
    s.interf_backoff = {256, 2048, 16384};
    s.interf_narrow_workers = {8, 32, kAllSms};
    s.host.producers = {1, 2, 4, 8};
    s.host.slots = 1000000; s.host.trials = 7;
    s.fair_samples = 5000; s.fair_caps = {16, 64, 256, 0};
  } else {
    s.rt_warmup = 500; s.rt_iters = 20000;
    s.launch_iters = 5000; s.graph_iters = 5000; s.ping_iters = 10000;
    s.tput_slots = 500000; s.tput_trials = 5;
    s.launch_tput = 20000; s.graph_replays = 20; s.graph_nodes = 1000; s.tput_raw_trials = 3;
    s.scaling_slots = 200000; s.scaling_trials = 3; s.scaling_sample_every = 64;
    s.scaling_producers = {1, 2, 4, 8, 16};
    s.gemm_n = 4096; s.gemm_reps = 10; s.gemm_trials = 2; s.wake_samples = 300;
    s.copy_mb = 64; s.copy_reps = 4;
    s.wake_gap_us = 100;
    s.interf_workers = {1, 0, kAllSms};
    s.interf_backoff = {2048};
    s.interf_narrow_workers = {0};
    s.host.producers = {1, 2, 4};
    s.host.slots = 500000; s.host.trials = 5;
    s.fair_samples = 500; s.fair_caps = {16, 0};
  }
  return s;
}

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--short] [--arms LIST] [--json PATH] [--results-dir DIR] [--trace PATH]\n"
      "          [--backend auto|cuda|cpu] [--device N] [--ring N] [--timeline N]\n"
      "          [--host-consumers N] [--scaling-batch N] [--workers N] [--backoff-max NS]\n"
      "          [--fetch-warps N]\n"
      "  --short        small counts (CI: under a minute on 2 cores, CPU backend)\n"
      "  --arms LIST    comma list of rt,tput,scaling,interf,host,fair (default: all)\n"
      "  --json PATH    write the JSON report to PATH\n"
      "  --results-dir  write it to DIR/<date>_<device>.json instead\n"
      "  --backend      megaring backend for the rt/tput/scaling arms (default auto);\n"
      "                 the raw CUDA arms and interf need a GPU and a non-cpu backend;\n"
      "                 the host-cost arm always uses the CPU backend\n"
      "  --ring N       ring capacity (default 1024, the library default)\n"
      "  --host-consumers N   consumer threads of the host-cost arm (default 2)\n"
      "  --scaling-batch N    slots per publish in the scaling arm (default 1)\n"
      "  --timeline N   Config::timeline_capacity of that runtime (timeline mode on for\n"
      "                 every arm; N a power of two >= 2 * ring). Without it, the rt and\n"
      "                 tput arms also run once with timeline mode on, to measure its cost\n"
      "  --trace PATH   write those timeline arms' Perfetto trace to PATH\n"
      "  --workers N, --backoff-max NS   Config::workers / poll_backoff_max_ns of the\n"
      "                 rt/tput/scaling runtime (default: the library defaults)\n"
      "  --fetch-warps N  Config::fetch_warps of that runtime (0-7; default: the library's)\n"
      "  --cost-model   only the cost model: per-slot protocol costs counted on the CPU\n"
      "                 backend (batch 64, one producer) and the GPU throughput they model\n"
      "  --cost-budgets with --cost-model: exit 1 if a per-slot budget of issue 14 is missed\n",
      argv0);
}

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "megaring_bench: %s needs a value\n", name);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--short") {
      o->short_mode = true;
    } else if (a == "--arms") {
      const char* v = value("--arms");
      if (!v) return false;
      o->arms.clear();
      std::stringstream ss(v);
      for (std::string item; std::getline(ss, item, ',');) {
        if (item == "round_trip") item = "rt";
        if (item == "throughput") item = "tput";
        if (item == "interference") item = "interf";
        if (item == "host_cost" || item == "hostcost") item = "host";
        if (item == "fairness") item = "fair";
        if (item != "rt" && item != "tput" && item != "scaling" && item != "interf" &&
            item != "host" && item != "fair") {
          std::fprintf(stderr, "megaring_bench: unknown arm '%s'\n", item.c_str());
          return false;
        }
        o->arms.insert(item);
      }
    } else if (a == "--json") {
      const char* v = value("--json");
      if (!v) return false;
      o->json_path = v;
    } else if (a == "--results-dir") {
      const char* v = value("--results-dir");
      if (!v) return false;
      o->results_dir = v;
    } else if (a == "--backend") {
      const char* v = value("--backend");
      if (!v) return false;
      const std::string b = v;
      if (b == "cuda") o->backend = Backend::kCuda;
      else if (b == "cpu") o->backend = Backend::kCpu;
      else if (b == "auto") o->backend = Backend::kAuto;
      else {
        std::fprintf(stderr, "megaring_bench: unknown backend '%s'\n", v);
        return false;
      }
    } else if (a == "--device") {
      const char* v = value("--device");
      if (!v) return false;
      o->device = std::atoi(v);
    } else if (a == "--ring") {
      const char* v = value("--ring");
      if (!v) return false;
      o->ring = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    } else if (a == "--host-consumers") {
      const char* v = value("--host-consumers");
      if (!v) return false;
      o->host_consumers = std::max(1, std::atoi(v));
    } else if (a == "--scaling-batch") {
      const char* v = value("--scaling-batch");
      if (!v) return false;
      o->scaling_batch = std::max(1, std::atoi(v));
    } else if (a == "--workers") {
      const char* v = value("--workers");
      if (!v) return false;
      o->workers = std::max(0, std::atoi(v));
    } else if (a == "--fetch-warps") {
      const char* v = value("--fetch-warps");
      if (!v) return false;
      o->fetch_warps = std::max(0, std::atoi(v));
    } else if (a == "--backoff-max") {
      const char* v = value("--backoff-max");
      if (!v) return false;
      o->backoff_max = std::max(0L, std::atol(v));
    } else if (a == "--trace") {
      const char* v = value("--trace");
      if (!v) return false;
      o->trace_path = v;
    } else if (a == "--timeline") {
      const char* v = value("--timeline");
      if (!v) return false;
      o->timeline = static_cast<uint32_t>(std::max(0L, std::atol(v)));
    } else if (a == "--cost-model") {
      o->cost_model = true;
    } else if (a == "--cost-budgets") {
      o->cost_budgets = true;
    } else if (a == "-h" || a == "--help") {
      usage(argv[0]);
      std::exit(0);
    } else {
      std::fprintf(stderr, "megaring_bench: unknown option '%s'\n", a.c_str());
      usage(argv[0]);
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------
Arm make_arm(const char* name, const char* group, std::string label) {
  Arm a;
  a.name = name;
  a.group = group;
  a.label = std::move(label);
  return a;
}

// Records a latency arm's outcome: its samples, or the error that stopped it.
void set_latency_result(Arm& a, bool ok, const std::vector<double>& ns, const std::string& err) {
  if (ok) {
    a.has_latency = true;
    a.latency = summarize(ns);
  } else {
    a.status = "error";
    a.reason = err;
  }
}

// Records a rate arm's outcome: the spread of its trials, or the error that
// stopped it.
void set_rate_result(Arm& a, bool ok, const std::vector<double>& rates, const char* unit,
                     const std::string& err) {
  if (ok) {
    a.has_rate = true;
    a.rate = summarize_rates(rates);
    a.rate_unit = unit;
  } else {
    a.status = "error";
    a.reason = err;
  }
}

Arm skipped(const char* name, const char* group, std::string label, const std::string& why) {
  Arm a = make_arm(name, group, std::move(label));
  a.status = "skipped";
  a.reason = why;
  return a;
}

// Watchdog: a deadlock next to a persistent kernel (e.g. a device-wide
// synchronisation slipping in) would otherwise hang the run silently. Every
// finished arm kicks it; after `limit` seconds without a kick it names the
// phase and ends the process.
struct Watchdog {
  std::atomic<int64_t> last_kick_ms{0};
  std::atomic<const char*> phase{"start-up"};
  int64_t limit_ms = 300000;

  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
        .count();
  }
  void touch() { last_kick_ms.store(now_ms()); }
  void kick(const char* what) {
    phase.store(what);
    last_kick_ms.store(now_ms());
  }
  void start(int64_t limit) {
    limit_ms = limit;
    kick("start-up");
    std::thread([this] {
      for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        const int64_t idle = now_ms() - last_kick_ms.load();
        if (idle > limit_ms) {
          std::fprintf(stderr,
                       "megaring_bench: watchdog: no progress for %lld s (phase: %s); exiting. "
                       "A hang next to the persistent kernel is a bug: please report it.\n",
                       static_cast<long long>(idle / 1000), phase.load());
          std::fflush(stdout);
          std::_Exit(3);
        }
      }
    }).detach();
  }
};
Watchdog g_watchdog;

std::string format_row(const Arm& a);

// Each arm's row as it finishes (stderr), so that a run cut short still
// leaves the figures of every arm it finished.
void announce(const Arm& a) {
  g_watchdog.touch();
  if (a.status == "ok") std::fprintf(stderr, "  done: %s\n", a.name.c_str());
  std::fprintf(stderr, "%s\n", format_row(a).c_str());
}

void busy_wait_ns(double ns) {
  const auto t0 = Clock::now();
  while (elapsed_ns(t0, Clock::now()) < ns) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

// Round trips: call(NOP) with a distinct echo each time; optional idle gap
// before each call (wake-up latency).
bool megaring_round_trips(Runtime& rt, int warmup, int iters, double gap_ns,
                          std::vector<double>* ns, std::string* error) {
  ns->clear();
  ns->reserve(static_cast<size_t>(iters));
  for (int i = -warmup; i < iters; ++i) {
    if (gap_ns > 0) busy_wait_ns(gap_ns);
    const uint64_t echo = 0x5000000000ull + static_cast<uint64_t>(i + warmup);
    Completion c;
    const auto t0 = Clock::now();
    const Status st = rt.call(ops::nop(echo), &c);
    const auto t1 = Clock::now();
    if (!st) {
      *error = "call: " + st.to_string();
      return false;
    }
    if (!c.ok() || c.result != echo) {
      *error = "call returned status " + std::to_string(c.status) + " result " +
               std::to_string(c.result) + " (expected " + std::to_string(echo) + ")";
      return false;
    }
    if (i >= 0) ns->push_back(elapsed_ns(t0, t1));
  }
  return true;
}

// Where a call's time goes, from timeline mode: `calls` more calls, each
// timed on the host's steady clock (the runtime's timeline clock), matched by
// ticket with the slot's publish, claim and complete times (the consumer's
// clock mapped onto the host's by the runtime's calibration, +- its
// uncertainty). Medians of each leg, in ns:
//   publish:  call() entered -> the runtime's publish time (taken once the
//             tickets are reserved, just before the slot's stores)
//   to_claim: -> an executor copied the staged body (the slot's stores, the
//             fetcher's poll and body round trips, staging, the claim)
//   run:      claim -> handler done
//   to_host:  handler done -> call() returned (done flag, the completer's
//             flush and fences, DONE_COUNT across PCIe, the host's read)
struct CallLegs {
  double publish = 0, to_claim = 0, run = 0, to_host = 0, uncertainty = 0;
  size_t matched = 0;
};
bool megaring_call_legs(Runtime& rt, int calls, CallLegs* legs, std::string* error) {
  struct Call {
    uint64_t ticket;
    int64_t enter_ns, return_ns;
  };
  const auto host_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  };
  std::vector<Call> timed;
  timed.reserve(static_cast<size_t>(calls));
  for (int i = 0; i < calls; ++i) {
    Completion c;
    const int64_t enter = host_ns();
    const Status st = rt.call(ops::nop(static_cast<uint64_t>(i)), &c);
    const int64_t ret = host_ns();
    if (!st || !c.ok()) return *error = "call: " + st.to_string(), false;
    timed.push_back(Call{c.ticket, enter, ret});
  }
  Timeline tl;
  if (const Status st = rt.timeline(&tl); !st) return *error = "timeline: " + st.to_string(), false;
  if (tl.slots.empty()) return *error = "timeline: no slots", false;
  const uint64_t first = tl.slots.front().ticket;
  std::vector<double> publish, to_claim, run, to_host;
  for (const Call& c : timed) {
    if (c.ticket < first || c.ticket - first >= tl.slots.size()) continue;
    const TimelineSlot& s = tl.slots[c.ticket - first];
    if (s.ticket != c.ticket) continue;  // the record ring is in ticket order; be sure
    publish.push_back(static_cast<double>(s.publish_ns - c.enter_ns));
    to_claim.push_back(static_cast<double>(s.claim_ns - s.publish_ns));
    run.push_back(static_cast<double>(s.complete_ns - s.claim_ns));
    to_host.push_back(static_cast<double>(c.return_ns - s.complete_ns));
  }
  if (publish.empty()) return *error = "timeline: none of the calls' slots was kept", false;
  const auto median = [](std::vector<double>& v) {
    std::sort(v.begin(), v.end());
    return percentile_sorted(v, 0.5);
  };
  legs->publish = median(publish);
  legs->to_claim = median(to_claim);
  legs->run = median(run);
  legs->to_host = median(to_host);
  legs->uncertainty = static_cast<double>(tl.clock_uncertainty_ns);
  legs->matched = publish.size();
  return true;
}

// One producer, fire and forget in batches, then wait_done on the last ticket.
bool megaring_throughput(Runtime& rt, uint32_t batch, uint64_t slots, double* rate,
                         std::string* error) {
  std::vector<SlotRequest> requests(batch, ops::nop(7));
  Ticket first, last;
  const auto t0 = Clock::now();
  for (uint64_t left = slots; left > 0;) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(batch, left));
    const Status st = rt.publish_batch(requests.data(), n, &first);
    if (!st) {
      *error = "publish_batch: " + st.to_string();
      return false;
    }
    last = Ticket{first.value + n - 1, false};
    left -= n;
  }
  const Status st = rt.wait_done(last);
  if (!st) {
    *error = "wait_done: " + st.to_string();
    return false;
  }
  *rate = double(slots) / (elapsed_ns(t0, Clock::now()) * 1e-9);
  return true;
}

// A throughput arm: megaring_throughput over sz.tput_trials trials after a
// warm-up of a tenth, as a rate, or the error that stopped it.
void measure_throughput(Runtime& rt, uint32_t batch, const Sizes& sz, Arm& a) {
  a.params["batch"] = batch;
  a.params["slots"] = static_cast<unsigned long long>(sz.tput_slots);
  a.params["producers"] = 1;
  std::vector<double> rates;
  std::string err;
  double r = 0;
  bool ok = megaring_throughput(rt, batch, sz.tput_slots / 10, &r, &err);  // warm-up
  // The fetcher's and completer's counters over the trials: how many
  // tickets a fetch round (one PCIe round trip on a GPU) and a DONE_COUNT
  // store (one system fence) cover.
  ConsumerCounters before, after;
  const bool counted = ok && rt.consumer_counters(&before);
  for (int t = 0; ok && t < sz.tput_trials; ++t) {
    ok = megaring_throughput(rt, batch, sz.tput_slots, &r, &err);
    if (ok) rates.push_back(r);
  }
  set_rate_result(a, ok, rates, "slots/s", err);
  if (ok && counted && rt.consumer_counters(&after)) {
    const uint64_t rounds = after.fetch_rounds - before.fetch_rounds;
    const uint64_t tickets = after.tickets_fetched - before.tickets_fetched;
    const uint64_t flushes = after.flushes - before.flushes;
    a.extra["fetch_rounds"] = static_cast<unsigned long long>(rounds);
    a.extra["tickets_per_fetch_round"] = rounds ? double(tickets) / double(rounds) : 0.0;
    a.extra["tickets_per_flush"] = flushes ? double(tickets) / double(flushes) : 0.0;
    a.extra["idle_polls"] = static_cast<unsigned long long>(after.idle_polls - before.idle_polls);
    // Every round trip that found work, header-only rounds included: at a
    // rate the fetcher bounds, the trials' time over these is a round's time.
    const uint64_t round_trips = rounds + (after.header_rounds - before.header_rounds);
    a.extra["tickets_per_round_trip"] = round_trips ? double(tickets) / double(round_trips) : 0.0;
  }
}

// `total` in `parts` shares, the remainder on the first.
std::vector<uint64_t> split_evenly(uint64_t total, int parts) {
  std::vector<uint64_t> share(static_cast<size_t>(parts), total / static_cast<uint64_t>(parts));
  share[0] += total % static_cast<uint64_t>(parts);
  return share;
}

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

// The same work through tenants: each of P producers owns a tenant (its own
// opcode window and an outstanding-slot quota of ring / P, so that together
// they can fill the ring) and publishes its share of NOPs through its
// TenantHandle; the registry's pump thread drains them. The run ends when
// every tenant has quiesced, and checks conservation: each tenant's slots
// drained exactly once, every one OK. Throughput only (the fairness arms
// measure a tenant slot's round trip).
bool megaring_tenant_scaling(Runtime& rt, int producers, uint64_t slots, int batch,
                             double* rate, std::string* error) {
  std::unique_ptr<TenantRegistry> registry;
  if (Status st = TenantRegistry::create(rt, RegistryConfig{}, &registry); !st) {
    *error = "registry: " + st.to_string();
    return false;
  }
  const uint64_t quota = std::max<uint64_t>(static_cast<uint64_t>(batch),
                                            rt.capacity() / static_cast<uint64_t>(producers));
  std::vector<TenantHandle> tenants(static_cast<size_t>(producers));
  for (int p = 0; p < producers; ++p) {
    TenantConfig tc;
    tc.label = "producer " + std::to_string(p);
    tc.quotas.max_outstanding_slots = quota;
    if (TenantStatus ts = registry->register_tenant(tc, &tenants[static_cast<size_t>(p)]); !ts) {
      *error = "register_tenant: " + ts.to_string();
      return false;
    }
  }
  const std::vector<uint64_t> share = split_evenly(slots, producers);
  std::vector<std::string> errors(static_cast<size_t>(producers));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      const size_t me = static_cast<size_t>(p);
      const TenantHandle& tenant = tenants[me];
      std::vector<SlotRequest> requests(static_cast<size_t>(batch), ops::nop(p));
      TenantPublishOptions wait;
      wait.timeout = std::chrono::seconds(30);  // for quota, then ring space
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (uint64_t done = 0; done < share[me];) {
        const uint32_t n = static_cast<uint32_t>(
            std::min<uint64_t>(static_cast<uint64_t>(batch), share[me] - done));
        Ticket first;
        if (TenantStatus ts = tenant.publish_batch(requests.data(), n, &first, wait); !ts) {
          errors[me] = "publish_batch: " + ts.to_string();
          return;
        }
        done += n;
      }
      if (TenantStatus ts = tenant.quiesce(std::chrono::seconds(60)); !ts)
        errors[me] = "quiesce: " + ts.to_string();
    });
  }
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  *rate = double(slots) / (elapsed_ns(t0, Clock::now()) * 1e-9);
  for (int p = 0; p < producers; ++p) {
    const size_t me = static_cast<size_t>(p);
    if (!errors[me].empty()) {
      *error = errors[me];
      return false;
    }
    const TenantRuntimeCounters c = tenants[me].runtime_counters();
    if (c.published != share[me] || c.drained != share[me] || c.completed_ok != share[me]) {
      *error = "tenant " + std::to_string(p) + ": published " + std::to_string(c.published) +
               ", drained " + std::to_string(c.drained) + ", ok " +
               std::to_string(c.completed_ok) + " of " + std::to_string(share[me]);
      return false;
    }
  }
  for (const TenantHandle& t : tenants) (void)registry->unregister_tenant(t);
  return true;
}

std::string fmt_us(double ns) {
  char buf[32];
  if (ns >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.0f", ns / 1e3);
  else if (ns >= 1e4)
    std::snprintf(buf, sizeof(buf), "%.1f", ns / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.2f", ns / 1e3);
  return buf;
}

std::string fmt_rate(double r) {
  char buf[32];
  if (r >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.2f M", r / 1e6);
  else if (r >= 1e3)
    std::snprintf(buf, sizeof(buf), "%.1f k", r / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.1f ", r);
  return buf;
}

const char* group_note(const std::string& g) {
  if (g == "round_trip") return "latency: one request, publish to completion seen by the host";
  if (g == "throughput") return "rate: items completed per second (median over trials [min, max])";
  if (g == "scaling")
    return "latency: a kept NOP every 64th slot, publish to completion seen by its producer";
  if (g == "interference")
    return "latency: wake-up round trip after 100 us idle; GEMM slowdown in the JSON and below";
  if (g == "host_cost") return "latency: the publish()/enqueue() call (every 64th), back-pressure included";
  if (g == "fairness")
    return "latency: a light tenant's kept NOP, publish to wait() return; beside: the flood's drain rate";
  return "";
}

const char* group_title(const std::string& g) {
  if (g == "round_trip") return "round trip";
  if (g == "throughput") return "throughput";
  if (g == "scaling") return "producer scaling";
  if (g == "interference") return "interference (GEMM beside an idle megakernel)";
  if (g == "host_cost") return "host cost per slot (CPU backend vs moodycamel)";
  if (g == "fairness") return "tenant fairness (light tenant beside a flooding one)";
  return g.c_str();
}

// One table row (no newline): the arm's label, latency quantiles and rate or
// its group's own summary.
std::string format_row(const Arm& a) {
  if (a.status != "ok") {
    char buf[512];
    std::snprintf(buf, sizeof(buf), "  %-46s %s: %s", a.label.c_str(), a.status.c_str(),
                  a.reason.c_str());
    return buf;
  }
  std::string lat;
  if (a.has_latency && a.latency.n > 0) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%8zu %9s %9s %9s %9s %9s", a.latency.n,
                  fmt_us(a.latency.min).c_str(), fmt_us(a.latency.p50).c_str(),
                  fmt_us(a.latency.p99).c_str(), fmt_us(a.latency.p999).c_str(),
                  fmt_us(a.latency.max).c_str());
    lat = buf;
  } else {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%8s %9s %9s %9s %9s %9s", "-", "-", "-", "-", "-", "-");
    lat = buf;
  }
  std::string rate;
  if (a.has_rate) {
    rate = fmt_rate(a.rate.median) + a.rate_unit + " [" + fmt_rate(a.rate.min) + ", " +
           fmt_rate(a.rate.max) + "] x" + std::to_string(a.rate.trials);
  }
  if (const Json* over = a.extra.find("p50_over_floor_ns")) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "p50 %+.2f us over the ping-pong floor", over->number() * 1e-3);
    rate = buf;
  }
  if (a.group == "interference") {
    char buf[160];
    const Json* alone = a.extra.find("gemm_ms_alone");
    const Json* beside = a.extra.find("gemm_ms_beside");
    const Json* starved = a.extra.find("starved");
    if (starved && starved->boolean())
      std::snprintf(buf, sizeof(buf), "GEMM %.3f ms alone; STARVED beside the megakernel",
                    alone ? alone->number() : 0.0);
    else if (alone && beside)
      std::snprintf(buf, sizeof(buf), "GEMM %.3f ms alone, %.3f ms beside: %+.2f%%",
                    alone->number(), beside->number(),
                    (beside->number() / alone->number() - 1) * 100);
    else
      buf[0] = '\0';
    rate = buf;
    if (const Json* st = a.extra.find("slowdown_sm_target_pct")) {
      std::snprintf(buf, sizeof(buf), " (told the SMs left: %+.2f%%)", st->number());
      rate += buf;
    }
    const Json* ca = a.extra.find("h2d_gbps_alone");
    const Json* cb = a.extra.find("h2d_gbps_beside");
    if (ca && cb) {
      std::snprintf(buf, sizeof(buf), "; H2D copy %.1f GB/s alone, %.1f beside",
                    ca->number(), cb->number());
      rate += buf;
    }
  } else if (a.group == "fairness") {
    char buf[160];
    const Json* ahead = a.extra.find("max_ahead");
    const Json* flood = a.extra.find("flood_slots_per_s");
    const Json* ratio = a.extra.find("p99_vs_alone");
    if (flood && ratio && ahead)
      std::snprintf(buf, sizeof(buf), "max %.0f queued ahead; flood %s slots/s; p99 %.2fx alone",
                    ahead->number(), fmt_rate(flood->number()).c_str(), ratio->number());
    else if (ahead)
      std::snprintf(buf, sizeof(buf), "max %.0f queued ahead", ahead->number());
    else
      buf[0] = '\0';
    rate = buf;
  } else if (a.group == "host_cost" && a.has_rate) {
    char buf[48];
    std::snprintf(buf, sizeof(buf), " = %.0f ns/slot", 1e9 / a.rate.median);
    rate += buf;
  }
  char line[1024];
  std::snprintf(line, sizeof(line), "  %-46s %s | %s", a.label.c_str(), lat.c_str(), rate.c_str());
  return line;
}

void print_table(const std::vector<Arm>& arms) {
  const char* groups[] = {"round_trip", "throughput", "scaling", "interference", "host_cost",
                          "fairness"};
  for (const char* g : groups) {
    bool any = false;
    for (const Arm& a : arms) any |= a.group == g;
    if (!any) continue;
    std::printf("\n== %s\n   (%s)\n", group_title(g), group_note(g));
    std::printf("  %-46s %8s %9s %9s %9s %9s %9s | %s\n", "arm", "n", "min us", "p50 us",
                "p99 us", "p99.9 us", "max us", "rate (median [min, max])");
    for (const Arm& a : arms)
      if (a.group == g) std::printf("%s\n", format_row(a).c_str());
  }
}

const Arm* find_arm(const std::vector<Arm>& arms, const std::string& name) {
  for (const Arm& a : arms)
    if (a.name == name && a.status == "ok") return &a;
  return nullptr;
}

// A GPU round trip's p50 less the ping-pong floor's (rt.pingpong_floor, run
// first): what the read layout or the whole call adds to the PCIe round trip.
void note_over_floor(const std::vector<Arm>& arms, Arm& a) {
  const Arm* floor = find_arm(arms, "rt.pingpong_floor");
  if (floor == nullptr || a.status != "ok" || !a.has_latency || &a == floor) return;
  a.extra["p50_over_floor_ns"] = a.latency.p50 - floor->latency.p50;
}

}  // namespace

// ---------------------------------------------------------------------------
int main(int argc, char** argv) {
  // Already set by the static initialiser above (earlier than any CUDA call
  // from another static initialiser could come); repeated here for clarity.
  // An explicit CUDA_MODULE_LOADING from the environment is kept (recorded).
  (void)kEagerSet;
  setenv("CUDA_MODULE_LOADING", "EAGER", 0);
  Options opt;
  if (!parse(argc, argv, &opt)) return 2;
  if (opt.cost_model) return run_cost_model(opt.json_path, opt.short_mode, opt.cost_budgets);
  const Sizes sz = sizes_for(opt.short_mode);
  const auto run_start = Clock::now();
  // 120 s in both modes: a hang must leave most of a GPU session's bench step
  // (scripts/gpu_session.sh) to the steps after it. Every arm announces itself
  // as it finishes (the fairness arms also while they sample); the longest
  // gap is an interference arm whose GEMM starves (its shutdowns: under a
  // minute).
  g_watchdog.start(120000);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  // ---- environment ---------------------------------------------------------
  Json report = Json::object();
  report["schema"] = "megaring-bench/1";
  report["mode"] = opt.short_mode ? "short" : "full";
  report["command_line"] = command_line;
  report["host"] = host_environment();
  report["host"]["cuda_module_loading"] = std::getenv("CUDA_MODULE_LOADING");

  const gpu::DeviceInfo dev = gpu::query_device(opt.device);
  // Raw CUDA arms need a GPU and a backend other than cpu.
  std::string gpu_skip;
  if (!dev.available)
    gpu_skip = "no GPU";
  else if (opt.backend == Backend::kCpu)
    gpu_skip = "--backend cpu";
  Json gj = Json::object();
  gj["available"] = dev.available;
  if (!dev.available) gj["why"] = dev.why_not;
  gj["name"] = dev.name;
  gj["pci_bus_id"] = dev.pci_bus_id;
  gj["compute_capability"] = std::to_string(dev.cc_major) + "." + std::to_string(dev.cc_minor);
  gj["sm_count"] = dev.sm_count;
  gj["driver_version"] = dev.driver_version;
  gj["runtime_version"] = dev.runtime_version;
  gj["peak_sm_clock_khz"] = dev.clock_khz;
  gj["peak_mem_clock_khz"] = dev.mem_clock_khz;
  gj["mem_bus_width_bits"] = dev.mem_bus_width;
  gj["total_mem_bytes"] = static_cast<long long>(dev.total_mem);
  gj["host_native_atomics"] = dev.host_native_atomics;
  gj["cooperative_launch"] = dev.cooperative_launch;
  gj["cublas"] = gpu::have_cublas();
  report["gpu"] = gj;
  if (dev.available) report["nvml_start"] = nvml_snapshot(dev.pci_bus_id, opt.device);
  if (dev.available && std::strcmp(std::getenv("CUDA_MODULE_LOADING"), "EAGER") != 0)
    std::fprintf(stderr,
                 "megaring_bench: WARNING: CUDA_MODULE_LOADING=%s from the environment; lazy "
                 "loading next to a persistent kernel can deadlock (the watchdog would end it)\n",
                 std::getenv("CUDA_MODULE_LOADING"));

  std::printf("megaring_bench (%s mode)\n", opt.short_mode ? "short" : "full");
  std::printf("  host: %s, %u hardware threads\n", report["host"]["cpu_model"].str().c_str(),
              std::thread::hardware_concurrency());
  if (dev.available) {
    std::printf("  gpu: %s (sm_%d%d, %d SMs, bus %s), driver %d, runtime %d, peak SM clock %d MHz\n",
                dev.name.c_str(), dev.cc_major, dev.cc_minor, dev.sm_count, dev.pci_bus_id.c_str(),
                dev.driver_version, dev.runtime_version, dev.clock_khz / 1000);
    const Json& nv = report["nvml_start"];
    if (const Json* a = nv.find("available"); a && a->type() == Json::Type::kBool) {
      const Json* g = nv.find("pcie_gen_current");
      const Json* w = nv.find("pcie_width_current");
      const Json* c = nv.find("sm_clock_mhz");
      if (g && w && c && g->type() == Json::Type::kNumber && w->type() == Json::Type::kNumber &&
          c->type() == Json::Type::kNumber)
        std::printf("  nvml: PCIe gen %.0f x%.0f, SM clock %.0f MHz now\n", g->number(),
                    w->number(), c->number());
      else
        std::printf("  nvml: n/a\n");
    }
  } else {
    std::printf("  gpu: none (%s): GPU arms print 'skipped: no GPU'\n", dev.why_not.c_str());
  }

  // ---- GPU set-up, before any runtime --------------------------------------
  std::vector<Arm> arms;
  bool gpu_ok = gpu_skip.empty();
  if (gpu_ok) {
    gpu::InitOptions io;
    io.device = opt.device;
    io.graph_nodes = sz.graph_nodes;
    io.gemm_n = opt.arms.count("interf") ? sz.gemm_n : 0;
    io.copy_bytes = opt.arms.count("interf") ? sz.copy_mb << 20 : 0;
    std::string err;
    std::fprintf(stderr, "megaring_bench: loading kernels, graphs and cuBLAS...\n");
    g_watchdog.kick("GPU set-up");
    if (!gpu::init(io, &err)) {
      gpu_skip = "GPU set-up failed: " + err;
      gpu_ok = false;
      std::fprintf(stderr, "megaring_bench: %s\n", gpu_skip.c_str());
    }
  }

  // ---- raw CUDA arms, before the runtime exists: an idle megakernel would
  // share the GPU (and PCIe) with them; the interference arm measures that.
  if (opt.arms.count("rt")) {
    std::fprintf(stderr, "megaring_bench: round trip (raw CUDA)\n");
    g_watchdog.kick("round trip (raw CUDA)");
    struct RawRt {
      const char* name;
      const char* label;
      bool (*fn)(int, int, std::vector<double>*, std::string*);
      int iters;
    } raw[] = {
        {"rt.pingpong_floor", "ping-pong floor (mapped flag, 1-thread kernel)",
         &gpu::pingpong_latency, sz.ping_iters},
        // The same ping-pong reading a whole message: what the ring's slot
        // layout costs on top of the floor, and what another would
        // (bench/NOTES.md, "Round trip").
        {"rt.read.header_body", "ping-pong, 64 B slot: header acquire, then body",
         [](int w, int n, std::vector<double>* ns, std::string* e) {
           return gpu::read_layout_latency(gpu::ReadLayout::kHeaderBody, w, n, ns, e);
         },
         sz.ping_iters},
        {"rt.read.flagged", "ping-pong, 128 B flagged words (LL), one read",
         [](int w, int n, std::vector<double>* ns, std::string* e) {
           return gpu::read_layout_latency(gpu::ReadLayout::kFlagged, w, n, ns, e);
         },
         sz.ping_iters},
        {"rt.read.flagged_acquire", "ping-pong, 128 B flagged words + acquire",
         [](int w, int n, std::vector<double>* ns, std::string* e) {
           return gpu::read_layout_latency(gpu::ReadLayout::kFlaggedAcquire, w, n, ns, e);
         },
         sz.ping_iters},
        {"rt.launch_sync", "empty kernel: cudaLaunchKernel + stream sync", &gpu::launch_sync_latency,
         sz.launch_iters},
        {"rt.graph_sync", "1-node graph: cudaGraphLaunch + stream sync", &gpu::graph_sync_latency,
         sz.graph_iters},
    };
    for (const RawRt& r : raw) {
      if (!gpu_ok) {
        arms.push_back(skipped(r.name, "round_trip", r.label, gpu_skip));
      } else {
        Arm a = make_arm(r.name, "round_trip", r.label);
        a.params["iters"] = r.iters;
        std::vector<double> ns;
        std::string err;
        const bool ok = r.fn(std::max(100, r.iters / 20), r.iters, &ns, &err);
        set_latency_result(a, ok, ns, err);
        note_over_floor(arms, a);
        arms.push_back(a);
      }
      announce(arms.back());
    }
  }

  if (opt.arms.count("tput")) {
    std::fprintf(stderr, "megaring_bench: throughput (raw CUDA)\n");
    g_watchdog.kick("throughput (raw CUDA)");
    struct RawTput {
      const char* name;
      std::string label;
      int count;
      bool graph;
    } raw[] = {
        {"tput.launch_b2b", "back-to-back empty-kernel launches, one sync", sz.launch_tput, false},
        {"tput.graph_many", "graph of " + std::to_string(sz.graph_nodes) +
                                " empty-kernel nodes, replayed", sz.graph_replays, true},
    };
    for (const RawTput& r : raw) {
      if (!gpu_ok) {
        arms.push_back(skipped(r.name, "throughput", r.label, gpu_skip));
        announce(arms.back());
        continue;
      }
      Arm a = make_arm(r.name, "throughput", r.label);
      a.params[r.graph ? "replays" : "launches"] = r.count;
      if (r.graph) a.params["nodes"] = gpu::graph_nodes();
      std::vector<double> rates;
      std::string err;
      bool ok = true;
      for (int t = 0; ok && t <= sz.tput_raw_trials; ++t) {  // trial 0: warm-up
        double k = 0;
        ok = r.graph ? gpu::graph_throughput(r.count, &k, &err)
                     : gpu::launch_throughput(r.count, &k, &err);
        if (ok && t > 0) rates.push_back(k);
      }
      set_rate_result(a, ok, rates, "kernels/s", err);
      arms.push_back(a);
      announce(arms.back());
    }
  }

  // ---- the megaring runtime for rt / tput / scaling ------------------------
  // Created after every kernel, graph and cuBLAS path is loaded.
  std::unique_ptr<Runtime> rt;
  std::string rt_error;
  Json rtj = Json::object();
  const bool need_rt = opt.arms.count("rt") || opt.arms.count("tput") || opt.arms.count("scaling");
  Backend mr_backend = opt.backend;
  if (mr_backend == Backend::kAuto) mr_backend = dev.available ? Backend::kCuda : Backend::kCpu;
  // The rt/tput/scaling runtime's configuration (the timeline arms' too).
  const auto bench_config = [&opt, mr_backend] {
    Config config;
    config.backend = mr_backend;
    config.device = opt.device;
    config.ring_capacity = opt.ring;
    config.timeline_capacity = opt.timeline;
    if (opt.workers >= 0) config.workers = static_cast<uint32_t>(opt.workers);
    if (opt.fetch_warps >= 0) config.fetch_warps = static_cast<uint32_t>(opt.fetch_warps);
    if (opt.backoff_max >= 0) {
      config.poll_backoff_max_ns = static_cast<uint32_t>(opt.backoff_max);
      config.poll_backoff_min_ns = std::min(config.poll_backoff_min_ns, config.poll_backoff_max_ns);
    }
    return config;
  };
  if (need_rt) {
    g_watchdog.kick("creating the runtime");
    const Config config = bench_config();
    const Status st = Runtime::create(config, &rt);
    if (!st) {
      rt_error = "Runtime::create: " + st.to_string();
      std::fprintf(stderr, "megaring_bench: %s\n", rt_error.c_str());
      rt.reset();
    } else {
      rtj["backend"] = backend_name(rt->backend());
      rtj["device_name"] = rt->device_name();
      rtj["consumer_units"] = rt->consumer_units();
      rtj["ring_capacity"] = rt->capacity();
      rtj["poll_backoff_min_ns"] = config.poll_backoff_min_ns;
      rtj["poll_backoff_max_ns"] = config.poll_backoff_max_ns;
      rtj["fetch_warps"] = config.fetch_warps == 0 ? kDefaultFetchWarps : config.fetch_warps;
      rtj["timeline_capacity"] = config.timeline_capacity;
      std::printf("  megaring runtime: backend %s, device \"%s\", %u consumer units, ring %u\n",
                  backend_name(rt->backend()), rt->device_name(), rt->consumer_units(),
                  rt->capacity());
    }
  }
  report["runtime"] = rtj;
  const std::string mr_tag = rt ? std::string(backend_name(rt->backend())) : "";

  if (opt.arms.count("rt")) {
    std::fprintf(stderr, "megaring_bench: round trip (megaring)\n");
    g_watchdog.kick("round trip (megaring)");
    const std::string label = "megaring Runtime::call(NOP) [" + mr_tag + "]";
    if (!rt) {
      arms.push_back(skipped("rt.megaring_call", "round_trip", label, rt_error));
    } else {
      Arm a = make_arm("rt.megaring_call", "round_trip", label);
      a.params["iters"] = sz.rt_iters;
      a.params["backend"] = mr_tag;
      std::vector<double> ns;
      std::string err;
      ConsumerCounters before, after;
      const bool counted = static_cast<bool>(rt->consumer_counters(&before));
      const bool ok = megaring_round_trips(*rt, sz.rt_warmup, sz.rt_iters, 0, &ns, &err);
      set_latency_result(a, ok, ns, err);
      if (ok && counted && rt->consumer_counters(&after)) {
        // What the consumer does a call: the fetcher's idle polls (stored
        // every 64th: close enough over 10^5 calls), body rounds and flushes.
        // Where the time goes: the timeline arm's leg_* extras.
        const double calls = static_cast<double>(sz.rt_warmup + sz.rt_iters);
        const double polls = static_cast<double>(after.idle_polls - before.idle_polls);
        a.extra["idle_polls_per_call"] = polls / calls;
        a.extra["fetch_rounds_per_call"] =
            static_cast<double>(after.fetch_rounds - before.fetch_rounds) / calls;
        a.extra["header_rounds_per_call"] =
            static_cast<double>(after.header_rounds - before.header_rounds) / calls;
        a.extra["flushes_per_call"] = static_cast<double>(after.flushes - before.flushes) / calls;
      }
      if (rt->backend() == Backend::kCuda) note_over_floor(arms, a);
      arms.push_back(a);
    }
    announce(arms.back());
  }

  if (opt.arms.count("tput")) {
    std::fprintf(stderr, "megaring_bench: throughput (megaring)\n");
    g_watchdog.kick("throughput (megaring)");
    for (uint32_t batch : {1u, 8u, 64u, 256u}) {
      const std::string name = "tput.megaring.b" + std::to_string(batch);
      const std::string label = "megaring 1 producer, batch " + std::to_string(batch) + " [" +
                                mr_tag + "]";
      if (!rt) {
        arms.push_back(skipped(name.c_str(), "throughput", label, rt_error));
        announce(arms.back());
        continue;
      }
      Arm a = make_arm(name.c_str(), "throughput", label);
      a.params["backend"] = mr_tag;
      measure_throughput(*rt, batch, sz, a);
      arms.push_back(a);
      announce(arms.back());
    }
  }

  // ---- producer scaling ----------------------------------------------------
  if (opt.arms.count("scaling")) {
    std::fprintf(stderr, "megaring_bench: producer scaling\n");
    g_watchdog.kick("producer scaling");
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
    if (rt && most_rings > 0) {
      Config config = bench_config();
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
                                  ", batch " + std::to_string(opt.scaling_batch) + " [" + mr_tag + "]";
        if (!rt || (own_rings && !rings_rt)) {
          arms.push_back(skipped(name.c_str(), "scaling", label, !rt ? rt_error : rings_error));
          announce(arms.back());
          continue;
        }
        Arm a = make_arm(name.c_str(), "scaling", label);
        a.params["producers"] = p;
        if (tenants) a.params["tenants"] = true;
        if (own_rings) a.params["own_rings"] = true;
        a.params["batch"] = opt.scaling_batch;
        a.params["slots"] = static_cast<unsigned long long>(sz.scaling_slots);
        if (!tenants) a.params["sample_every"] = sz.scaling_sample_every;
        a.params["backend"] = mr_tag;
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
        // Tenant runs measure throughput only (megaring_tenant_scaling).
        const auto run = [&](uint64_t slots) {
          if (tenants) return megaring_tenant_scaling(*rt, p, slots, opt.scaling_batch, &r, &err);
          return megaring_scaling(own_rings ? *rings_rt : *rt, own_rings ? &producers : nullptr, p,
                                  slots, opt.scaling_batch, sz.scaling_sample_every, &r, &lat, &err);
        };
        ok = ok && run(sz.scaling_slots / 10);  // warm-up
        lat.clear();
        for (int t = 0; ok && t < sz.scaling_trials; ++t) {
          ok = run(sz.scaling_slots);
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
        arms.push_back(a);
        announce(arms.back());
      }
    }
  }

  if (rt) {
    const RuntimeStats s = rt->stats();
    Json sj = Json::object();
    sj["published"] = static_cast<unsigned long long>(s.published);
    sj["completed_ok"] = static_cast<unsigned long long>(s.completed_ok);
    sj["faulted"] = static_cast<unsigned long long>(s.faulted);
    sj["aborted"] = static_cast<unsigned long long>(s.aborted);
    sj["ring_full_events"] = static_cast<unsigned long long>(s.ring_full_events);
    sj["protocol_errors"] = static_cast<unsigned long long>(s.protocol_errors);
    report["runtime"]["stats"] = sj;
    if (s.faulted || s.aborted || s.protocol_errors)
      std::fprintf(stderr, "megaring_bench: WARNING: runtime stats show faults/aborts/protocol errors\n");
    const Status st = rt->shutdown();
    if (!st) std::fprintf(stderr, "megaring_bench: shutdown: %s\n", st.to_string().c_str());
    rt.reset();
  }

  // ---- timeline mode's cost: the round trip and batch-64 throughput again,
  // on a runtime with timeline mode on (the smallest capacity), and its trace.
  // Not when --timeline already ran every arm that way, nor when the runtime
  // could not be created (the arms above say why).
  if ((opt.arms.count("rt") || opt.arms.count("tput")) && opt.timeline == 0 && rt_error.empty()) {
    std::fprintf(stderr, "megaring_bench: timeline mode on\n");
    g_watchdog.kick("timeline mode on");
    Config config = bench_config();
    config.timeline_capacity = 2 * opt.ring;
    std::unique_ptr<Runtime> trt;
    const Status st = Runtime::create(config, &trt);
    std::vector<Arm> timeline_arms;
    if (opt.arms.count("rt"))
      timeline_arms.push_back(make_arm("rt.megaring_call_timeline", "round_trip",
                                       "megaring call(NOP), timeline on [" + mr_tag + "]"));
    if (opt.arms.count("tput"))
      timeline_arms.push_back(make_arm("tput.timeline.b64", "throughput",
                                       "megaring batch 64, timeline on [" + mr_tag + "]"));
    for (Arm& a : timeline_arms) {
      a.params["backend"] = mr_tag;
      a.params["timeline_capacity"] = config.timeline_capacity;
      if (!st) {
        a.status = "error";
        a.reason = "Runtime::create (timeline on): " + st.to_string();
      } else if (a.group == "round_trip") {
        a.params["iters"] = sz.rt_iters;
        std::vector<double> ns;
        std::string err;
        const bool ok = megaring_round_trips(*trt, sz.rt_warmup, sz.rt_iters, 0, &ns, &err);
        set_latency_result(a, ok, ns, err);
        if (const Arm* off = find_arm(arms, "rt.megaring_call"); ok && off)
          a.extra["p50_vs_timeline_off"] = a.latency.p50 / off->latency.p50;
        // The legs of a call (medians; see megaring_call_legs). Fewer calls
        // than the record ring holds, so every one is still there.
        CallLegs legs;
        if (ok && megaring_call_legs(*trt, static_cast<int>(opt.ring / 2), &legs, &err)) {
          a.extra["leg_publish_ns"] = legs.publish;
          a.extra["leg_to_claim_ns"] = legs.to_claim;
          a.extra["leg_run_ns"] = legs.run;
          a.extra["leg_to_host_ns"] = legs.to_host;
          a.extra["leg_clock_uncertainty_ns"] = legs.uncertainty;
          a.extra["leg_calls"] = static_cast<double>(legs.matched);
        } else if (ok) {
          std::fprintf(stderr, "megaring_bench: call legs: %s\n", err.c_str());
        }
      } else {
        measure_throughput(*trt, 64, sz, a);
        if (const Arm* off = find_arm(arms, "tput.megaring.b64"); a.status == "ok" && off)
          a.extra["rate_vs_timeline_off"] = a.rate.median / off->rate.median;
      }
      arms.push_back(a);
      announce(arms.back());
    }
    if (trt) {
      if (!opt.trace_path.empty()) {
        // The last 2 * ring tickets: the end of the last arm above.
        const Status ts = trt->write_timeline_trace(opt.trace_path);
        if (!ts)
          std::fprintf(stderr, "megaring_bench: trace: %s\n", ts.to_string().c_str());
        else
          report["timeline_trace"] = opt.trace_path;
      }
      const Status ss = trt->shutdown();
      if (!ss) std::fprintf(stderr, "megaring_bench: shutdown: %s\n", ss.to_string().c_str());
    }
  }

  // ---- interference --------------------------------------------------------
  if (opt.arms.count("interf")) {
    std::fprintf(stderr, "megaring_bench: interference\n");
    g_watchdog.kick("interference");
    std::string why = gpu_skip;
    if (why.empty() && !gpu::gemm_ready()) why = gpu::have_cublas() ? "GEMM set-up failed" : "built without cuBLAS";
    if (!why.empty()) {
      arms.push_back(skipped("interf", "interference", "GEMM beside an idle megakernel", why));
      announce(arms.back());
    } else {
      // The lists' Config::workers values as {workers, blocks}: 0 (the
      // library default) runs kDefaultGpuWorkers blocks, counts at or above
      // the SM count (kAllSms) one per SM. One setting per block count; where
      // the default has the count of an explicit entry, that setting is the
      // default's (workers 0), so that the targets find it.
      struct Workers {
        uint32_t workers, blocks;
      };
      const auto distinct_workers = [&dev](const std::vector<uint32_t>& list) {
        const uint32_t sms = static_cast<uint32_t>(dev.sm_count);
        std::vector<Workers> out;
        for (uint32_t w : list) {
          const Workers x = w == 0 ? Workers{0, std::min(kDefaultGpuWorkers, sms)}
                                   : Workers{std::min(w, sms), std::min(w, sms)};
          auto same = std::find_if(out.begin(), out.end(),
                                   [&](const Workers& o) { return o.blocks == x.blocks; });
          if (same == out.end())
            out.push_back(x);
          else if (x.workers == 0)
            same->workers = 0;
        }
        return out;
      };
      // sz.gemm_trials trials of sz.gemm_reps GEMMs with cuBLAS SM-count
      // target `sm_target` (0: all SMs): ms per GEMM into *ms. A trial past
      // `limit_s` sets *timed_out and stops (its GEMMs are still queued).
      const auto gemm_trials = [&sz](int sm_target, double limit_s, std::vector<double>* ms,
                                     bool* timed_out, std::string* err) {
        *timed_out = false;
        for (int t = 0; t < sz.gemm_trials; ++t) {
          double total = 0;
          if (!gpu::gemm_start(sz.gemm_reps, sm_target, err) ||
              !gpu::gemm_wait(limit_s, &total, timed_out, err))
            return false;
          if (*timed_out) return true;
          ms->push_back(total / sz.gemm_reps);
        }
        return true;
      };
      struct Setting {
        Workers units;     // Config::workers and the blocks it runs
        uint32_t backoff;  // Config::poll_backoff_max_ns
        bool narrow;       // gpu::narrow_consumer() instead of the built-in one
      };
      std::vector<Setting> settings;
      for (const Workers& w : distinct_workers(sz.interf_workers))
        for (uint32_t backoff : sz.interf_backoff) settings.push_back({w, backoff, false});
      for (const Workers& w : distinct_workers(sz.interf_narrow_workers))
        settings.push_back({w, Config{}.poll_backoff_max_ns, true});
      for (const Setting& setting : settings) {
        const uint32_t w = setting.units.workers, blocks = setting.units.blocks;
        const uint32_t backoff = setting.backoff;
        const Consumer& consumer = setting.narrow ? gpu::narrow_consumer() : builtin_consumer();
        const std::string shape =
            setting.narrow ? ".t" + std::to_string(consumer.block_threads) : "";
        const std::string name =
            "interf.w" + std::to_string(blocks) + shape + ".b" + std::to_string(backoff);
        const bool is_default = w == 0 && backoff == Config{}.poll_backoff_max_ns && !setting.narrow;
        const std::string label =
            "GEMM + idle megakernel, " + std::to_string(blocks) +
            (setting.narrow ? " one-warp capped" : "") + " blocks, backoff " +
            std::to_string(backoff) + " ns" + (is_default ? " (defaults)" : "");
        Arm a = make_arm(name.c_str(), "interference", label);
        a.params["workers"] = blocks;
        a.params["workers_config"] = w;
        a.params["threads_per_block"] = consumer.block_threads;
        a.params["registers_per_thread"] = gpu::megakernel_registers(setting.narrow);
        a.params["poll_backoff_max_ns"] = backoff;
        a.params["defaults"] = is_default;
        a.params["gemm_n"] = gpu::gemm_n();
        a.params["gemm_reps"] = sz.gemm_reps;
        a.params["copy_bytes"] = static_cast<double>(sz.copy_mb << 20);
        a.params["copy_reps"] = sz.copy_reps;
        // With blocks on fewer than all SMs, the GEMM also runs told how
        // many SMs are left (cublasSetSmCountTarget): sized for those, a
        // grid of one CTA an SM need not wait for a second wave.
        const int sm_target = blocks < static_cast<uint32_t>(dev.sm_count)
                                  ? dev.sm_count - static_cast<int>(blocks)
                                  : 0;
        if (sm_target > 0) a.params["gemm_sm_count_target"] = sm_target;
        std::string err;
        // GEMM alone (no runtime alive), then beside the runtime. Alone with
        // the SM-count target first too: cuBLAS may pick another kernel for
        // it, which must not be loaded for the first time beside our kernel.
        std::vector<double> alone_ms, beside_ms, alone_target_ms, beside_target_ms;
        bool to = false;
        bool ok = gemm_trials(0, 600, &alone_ms, &to, &err) &&
                  (sm_target == 0 || gemm_trials(sm_target, 600, &alone_target_ms, &to, &err));
        if (ok && to) {
          ok = false;
          err = "the GEMM alone did not finish in 600 s";
        }
        const double alone = ok ? summarize_rates(alone_ms).median : 0;
        // Host-to-device bandwidth alone and beside the idle megakernel
        // (its polls are PCIe reads; their completions share the link).
        std::vector<double> copy_alone, copy_beside;
        for (int t = 0; ok && gpu::h2d_ready() && t < sz.gemm_trials; ++t) {
          double gbps = 0;
          ok = gpu::h2d_copy_gbps(sz.copy_reps, &gbps, &err);
          if (ok) copy_alone.push_back(gbps);
        }
        bool starved = false;
        std::vector<double> wake;
        if (ok) {
          Config config;
          config.backend = Backend::kCuda;
          config.device = opt.device;
          config.ring_capacity = opt.ring;
          config.workers = w;
          config.poll_backoff_max_ns = backoff;
          config.poll_backoff_min_ns = std::min(config.poll_backoff_min_ns, backoff);
          std::unique_ptr<Runtime> irt;
          Status st = Runtime::create(config, consumer, &irt);
          if (!st) {
            ok = false;
            err = "Runtime::create: " + st.to_string();
          } else {
            // Wake-up latency: a call after the ring idled long enough for
            // the consumer to reach its maximum backoff.
            ok = megaring_round_trips(*irt, 20, sz.wake_samples, sz.wake_gap_us * 1e3, &wake, &err);
            busy_wait_ns(sz.wake_gap_us * 1e3);
            for (int t = 0; ok && gpu::h2d_ready() && t < sz.gemm_trials; ++t) {
              double gbps = 0;
              ok = gpu::h2d_copy_gbps(sz.copy_reps, &gbps, &err);
              if (ok) copy_beside.push_back(gbps);
            }
            // A GEMM past this cannot get SMs next to the megakernel.
            const double limit_s = std::max(2.0, 20.0 * alone * sz.gemm_reps * 1e-3);
            // Stops the runtime (its kernel exits) and lets the GEMMs still
            // queued finish, so that the next arm starts with none in flight.
            const auto release_gemm = [&] {
              st = irt->shutdown(std::chrono::seconds(10));
              if (!st) err = "shutdown after a GEMM timeout: " + st.to_string();
              irt.reset();
              double ms = 0;
              return gpu::gemm_wait(600, &ms, &to, &err) && !to;
            };
            if (ok) ok = gemm_trials(0, limit_s, &beside_ms, &starved, &err);
            if (ok && starved) ok = release_gemm();
            if (ok && !starved && sm_target > 0) {
              ok = gemm_trials(sm_target, limit_s, &beside_target_ms, &to, &err);
              if (ok && to) {
                (void)release_gemm();
                ok = false;
                err = "the GEMM told the SM count left made no progress beside the megakernel";
              }
            }
            if (irt) {
              st = irt->shutdown();
              if (!st && ok) {
                ok = false;
                err = "shutdown: " + st.to_string();
              }
              irt.reset();
            }
          }
        }
        if (!ok) {
          a.status = "error";
          a.reason = err;
        } else {
          a.has_latency = true;
          a.latency = summarize(wake);
          a.extra["latency_is"] = "wake-up round trip: call(NOP) after " +
                                  std::to_string(static_cast<int>(sz.wake_gap_us)) +
                                  " us idle, no GEMM running";
          a.extra["gemm_ms_alone"] = alone;
          a.extra["gemm_tflops_alone"] = gpu::gemm_flops() / (alone * 1e-3) / 1e12;
          a.extra["gemm_ms_alone_trials"] = to_json(alone_ms);
          a.extra["starved"] = starved;
          if (!copy_alone.empty() && !copy_beside.empty()) {
            const double ca = summarize_rates(copy_alone).median;
            const double cb = summarize_rates(copy_beside).median;
            a.extra["h2d_gbps_alone"] = ca;
            a.extra["h2d_gbps_beside"] = cb;
            a.extra["h2d_slowdown_pct"] = (ca / cb - 1.0) * 100.0;
          }
          if (!starved) {
            const double beside = summarize_rates(beside_ms).median;
            a.extra["gemm_ms_beside"] = beside;
            a.extra["gemm_ms_beside_trials"] = to_json(beside_ms);
            a.extra["slowdown_pct"] = (beside / alone - 1.0) * 100.0;
            if (!alone_target_ms.empty() && !beside_target_ms.empty()) {
              // Against the GEMM alone on the whole GPU: what the user pays.
              const double at = summarize_rates(alone_target_ms).median;
              const double bt = summarize_rates(beside_target_ms).median;
              a.extra["gemm_ms_alone_sm_target"] = at;
              a.extra["gemm_ms_beside_sm_target"] = bt;
              a.extra["slowdown_sm_target_pct"] = (bt / alone - 1.0) * 100.0;
            }
          } else {
            a.extra["gemm_ms_beside"] = nullptr;
            a.extra["slowdown_pct"] = nullptr;
            a.extra["note"] = "GEMM made no progress beside the megakernel within the limit "
                              "(no free SM resources); the runtime was shut down to let it finish";
          }
        }
        arms.push_back(a);
        announce(arms.back());
      }
    }
  }

  // ---- host cost -----------------------------------------------------------
  if (opt.arms.count("host")) {
    std::fprintf(stderr, "megaring_bench: host cost (CPU backend vs moodycamel)\n");
    g_watchdog.kick("host cost (CPU backend vs moodycamel)");
    HostCostOptions ho = sz.host;
    ho.consumers = opt.host_consumers;
    ho.ring = opt.ring;
    if (!have_moodycamel())
      std::printf("  note: moodycamel ConcurrentQueue not found at build time; its arm is skipped\n");
    run_host_cost(ho, &arms, &announce);
  }

  // ---- tenant fairness -----------------------------------------------------
  if (opt.arms.count("fair")) {
    std::fprintf(stderr, "megaring_bench: tenant fairness (light tenant beside a flood)\n");
    g_watchdog.kick("tenant fairness");
    FairnessOptions fo;
    fo.backend = opt.backend;
    fo.device = opt.device;
    fo.ring = opt.ring;
    fo.workers = opt.workers;
    fo.light_samples = sz.fair_samples;
    fo.flood_caps = sz.fair_caps;
    fo.progress = [] { g_watchdog.touch(); };
    run_fairness(fo, &arms, &announce);
  }

  // ---- targets -------------------------------------------------------------
  std::vector<Target> targets;
  const bool on_cuda = mr_tag == "cuda";
  auto gpu_target = [&](Target t, const Arm* mine, const Arm* other, double ratio,
                        bool higher_is_better) {
    if (!mine || !other || !std::isfinite(ratio)) {
      t.status = "n/a";
      t.detail = "an arm it needs did not run" + (gpu_skip.empty() ? "" : " (" + gpu_skip + ")");
    } else {
      t.ratio = ratio;
      if (!on_cuda) {
        t.status = "n/a";
        t.detail = (t.detail.empty() ? "" : t.detail + "; ") + "measured on the " + mr_tag +
                   " backend, the target is for the CUDA backend";
      } else {
        t.status = (higher_is_better ? ratio >= t.threshold : ratio <= t.threshold) ? "pass" : "miss";
      }
    }
    targets.push_back(t);
  };
  {
    const Arm* call = find_arm(arms, "rt.megaring_call");
    const Arm* ping = find_arm(arms, "rt.pingpong_floor");
    const Arm* launch = find_arm(arms, "rt.launch_sync");
    const Arm* graph = find_arm(arms, "rt.graph_sync");
    Target t;
    t.name = "rt_vs_floor";
    t.requirement = "round trip p50 <= 1.3x ping-pong floor p50";
    t.threshold = 1.3;
    gpu_target(t, call, ping, call && ping ? call->latency.p50 / ping->latency.p50 : NAN, false);
    t = Target{};
    t.name = "rt_vs_launch";
    t.requirement = "launch+sync p50 / round trip p50 >= 2";
    t.threshold = 2;
    gpu_target(t, call, launch, call && launch ? launch->latency.p50 / call->latency.p50 : NAN, true);
    t = Target{};
    t.name = "rt_vs_graph";
    t.requirement = "graph+sync p50 / round trip p50 >= 1.5";
    t.threshold = 1.5;
    gpu_target(t, call, graph, call && graph ? graph->latency.p50 / call->latency.p50 : NAN, true);
    t = Target{};
    t.name = "rt_tail";
    t.requirement = "round trip p99 <= 2x its p50";
    t.threshold = 2;
    gpu_target(t, call, call, call ? call->latency.p99 / call->latency.p50 : NAN, false);
  }
  {
    const Arm* best = nullptr;
    for (const char* n : {"tput.megaring.b64", "tput.megaring.b256"})  // batch >= 64
      if (const Arm* a = find_arm(arms, n); a && (!best || a->rate.median > best->rate.median))
        best = a;
    Target t;
    t.name = "tput_abs";
    t.requirement = "one producer at batch >= 64: >= 20 M NOP slots/s";
    t.threshold = 20e6;
    if (best) t.detail = best->name;
    gpu_target(t, best, best, best ? best->rate.median : NAN, true);
    const Arm* graph = find_arm(arms, "tput.graph_many");
    t = Target{};
    t.name = "tput_vs_graph";
    t.requirement = "batched NOP slots/s >= 30x many-node graph kernels/s";
    t.threshold = 30;
    gpu_target(t, best, graph, best && graph ? best->rate.median / graph->rate.median : NAN, true);
  }
  {
    // A ring each where that arm ran (the design issue 14 asks for), else
    // ring 0 shared.
    const bool rings = find_arm(arms, "scaling.r8") != nullptr && find_arm(arms, "scaling.r1") != nullptr;
    const Arm* p1 = find_arm(arms, rings ? "scaling.r1" : "scaling.p1");
    const Arm* p8 = find_arm(arms, rings ? "scaling.r8" : "scaling.p8");
    Target t;
    t.name = "producers_8";
    t.requirement = "8 producers together >= 40 M NOP slots/s";
    t.threshold = 40e6;
    if (p8) t.detail = p8->name + ", publish batch " + std::to_string(opt.scaling_batch);
    gpu_target(t, p8, p8, p8 ? p8->rate.median : NAN, true);
    t = Target{};
    t.name = "scaling_8";
    t.requirement = "near-linear to 8 producers: T(8)/T(1) >= 6 (75% efficiency)";
    t.threshold = 6;
    gpu_target(t, p1, p8, p1 && p8 ? p8->rate.median / p1->rate.median : NAN, true);
  }
  {
    // The defaults: workers = 0 (kDefaultGpuWorkers blocks), the default
    // backoff.
    const Arm* def = nullptr;
    for (const Arm& a : arms) {
      const Json* d = a.params.find("defaults");
      if (a.group == "interference" && a.status == "ok" && d && d->boolean()) def = &a;
    }
    Target t;
    t.name = "interference_default";
    t.requirement = "idle megakernel (defaults) slows a large GEMM by <= 2%";
    t.threshold = 1.02;
    if (def && def->extra.find("starved")->boolean()) {
      t.ratio = INFINITY;
      t.status = "miss";
      t.detail = "the GEMM made no progress beside the megakernel";
      targets.push_back(t);
    } else {
      gpu_target(t, def, def,
                 def ? def->extra.find("gemm_ms_beside")->number() /
                           def->extra.find("gemm_ms_alone")->number()
                     : NAN,
                 false);
    }
  }
  {
    // Host cost: the only target measured on the CPU backend; the worst ratio
    // over the producer counts decides.
    Target t;
    t.name = "host_cost";
    t.requirement = "CPU-backend ns/slot <= moodycamel ns/slot (worst over producer counts)";
    t.threshold = 1.0;
    double worst = NAN;
    std::string detail;
    for (int p : sz.host.producers) {
      const Arm* m = find_arm(arms, "host.megaring.p" + std::to_string(p));
      const Arm* q = find_arm(arms, "host.moodycamel.p" + std::to_string(p));
      if (!m || !q) continue;
      const double r = q->rate.median / m->rate.median;  // = megaring ns / queue ns
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%sp%d %.2f", detail.empty() ? "" : ", ", p, r);
      detail += buf;
      if (!std::isfinite(worst) || r > worst) worst = r;
    }
    t.detail = detail;
    if (std::isfinite(worst)) {
      t.ratio = worst;
      t.status = worst <= t.threshold ? "pass" : "miss";
    } else {
      t.detail = have_moodycamel() ? "an arm it needs did not run" : "moodycamel not built in";
    }
    targets.push_back(t);
  }

  // ---- output --------------------------------------------------------------
  if (dev.available) report["nvml_end"] = nvml_snapshot(dev.pci_bus_id, opt.device);
  print_table(arms);
  std::printf("\n== targets (issue 14; pass/miss only where the arm ran on its backend)\n");
  for (const Target& t : targets) {
    char ratio[48] = "";
    if (std::isfinite(t.ratio)) {
      if (t.name == "tput_abs" || t.name == "producers_8")
        std::snprintf(ratio, sizeof(ratio), "%.2f M/s", t.ratio / 1e6);
      else
        std::snprintf(ratio, sizeof(ratio), "ratio %.3g", t.ratio);
    } else if (std::isinf(t.ratio)) {
      std::snprintf(ratio, sizeof(ratio), "ratio inf");
    }
    std::printf("  [%-4s] %-72s %-16s %s\n", t.status.c_str(), t.requirement.c_str(), ratio,
                t.detail.c_str());
  }

  Json aj = Json::array();
  for (const Arm& a : arms) aj.push_back(a.to_json_value());
  report["arms"] = aj;
  Json tj = Json::array();
  for (const Target& t : targets) {
    Json o = Json::object();
    o["name"] = t.name;
    o["requirement"] = t.requirement;
    o["status"] = t.status;
    o["ratio"] = std::isfinite(t.ratio) ? Json(t.ratio) : Json(nullptr);
    o["threshold"] = t.threshold;
    o["detail"] = t.detail;
    tj.push_back(o);
  }
  report["targets"] = tj;
  const double duration = elapsed_ns(run_start, Clock::now()) * 1e-9;
  report["duration_s"] = duration;

  // No clean-up of what gpu::init() allocated: process exit reclaims it. A
  // runtime whose shutdown timed out leaks its kernel still running, beside
  // which cudaFree or a synchronisation would wait forever, and the report
  // would never be written. The CUDA runtime's own clean-up at exit might
  // wait too: the watchdog bounds that, and names it.
  g_watchdog.kick("writing the report, then exit (the CUDA runtime's clean-up)");
  std::string path = opt.json_path;
  if (!opt.results_dir.empty()) {
    const std::string device = dev.available && gpu_skip.empty() ? slug(dev.name) : "cpu";
    std::error_code ec;
    std::filesystem::create_directories(opt.results_dir, ec);
    const std::string stem = opt.results_dir + "/" + utc_date() + "_" + device;
    path = stem + ".json";
    // Never overwrite an earlier run of the same day: add the time.
    if (std::ifstream(path).good()) path = stem + "_" + utc_time_compact() + ".json";
  }
  int errors = 0;
  for (const Arm& a : arms) errors += a.status == "error";
  if (!path.empty()) {
    std::ofstream f(path);
    f << report.dump();
    if (!f) {
      std::fprintf(stderr, "megaring_bench: cannot write %s\n", path.c_str());
      return 1;
    }
    std::printf("\njson: %s\n", path.c_str());
  }
  std::printf("megaring_bench: %zu arms (%d errors) in %.1f s\n", arms.size(), errors, duration);
  return errors == 0 ? 0 : 1;
}
