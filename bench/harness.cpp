// SPDX-License-Identifier: Apache-2.0
// megaring_bench: what every arm function shares (harness.hpp).
#include "harness.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace mrbench {

using namespace megaring;

void BenchRun::add(Arm arm) {
  arms.push_back(std::move(arm));
  announce(arms.back());
}

// ---------------------------------------------------------------------------
// Building an arm and recording its outcome
// ---------------------------------------------------------------------------
Arm make_arm(const char* name, const char* group, std::string label) {
  Arm a;
  a.name = name;
  a.group = group;
  a.label = std::move(label);
  return a;
}

void set_latency_result(Arm& a, bool ok, const std::vector<double>& ns, const std::string& err) {
  if (ok) {
    a.has_latency = true;
    a.latency = summarize(ns);
  } else {
    a.status = "error";
    a.reason = err;
  }
}

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

const Arm* find_arm(const std::vector<Arm>& arms, const std::string& name) {
  for (const Arm& a : arms)
    if (a.name == name && a.status == "ok") return &a;
  return nullptr;
}

void note_over_floor(const std::vector<Arm>& arms, Arm& a) {
  const Arm* floor = find_arm(arms, "rt.pingpong_floor");
  if (floor == nullptr || a.status != "ok" || !a.has_latency || &a == floor) return;
  a.extra["p50_over_floor_ns"] = a.latency.p50 - floor->latency.p50;
}

// ---------------------------------------------------------------------------
// Watchdog
// ---------------------------------------------------------------------------
Watchdog g_watchdog;

int64_t Watchdog::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

void Watchdog::touch() { last_kick_ms.store(now_ms()); }

void Watchdog::kick(const char* what) {
  phase.store(what);
  last_kick_ms.store(now_ms());
}

void Watchdog::start(int64_t limit) {
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

void announce(const Arm& a) {
  g_watchdog.touch();
  if (a.status == "ok") std::fprintf(stderr, "  done: %s\n", a.name.c_str());
  std::fprintf(stderr, "%s\n", format_row(a).c_str());
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------
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
    const Json* bound = a.extra.find("prio_bound");
    if (bound && flood && ratio)
      std::snprintf(buf, sizeof(buf), "bound: <= %.0f bulk slots queued ahead; flood %s slots/s; p99 %.2fx alone",
                    bound->number(), fmt_rate(flood->number()).c_str(), ratio->number());
    else if (bound)
      std::snprintf(buf, sizeof(buf), "bound: <= %.0f bulk slots queued ahead", bound->number());
    else if (flood && ratio && !ahead)
      std::snprintf(buf, sizeof(buf), "no classes; flood %s slots/s; p99 %.2fx alone",
                    fmt_rate(flood->number()).c_str(), ratio->number());
    else if (flood && ratio && ahead)
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


// ---------------------------------------------------------------------------
// Small pieces of the measurements
// ---------------------------------------------------------------------------
void busy_wait_ns(double ns) {
  const auto t0 = Clock::now();
  while (elapsed_ns(t0, Clock::now()) < ns) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

std::vector<uint64_t> split_evenly(uint64_t total, int parts) {
  std::vector<uint64_t> share(static_cast<size_t>(parts), total / static_cast<uint64_t>(parts));
  share[0] += total % static_cast<uint64_t>(parts);
  return share;
}

// ---------------------------------------------------------------------------
// The shared runtime
// ---------------------------------------------------------------------------
Config bench_config(const BenchRun& run) {
  const Options& opt = run.options;
  Backend backend = opt.backend;
  if (backend == Backend::kAuto) backend = run.device.available ? Backend::kCuda : Backend::kCpu;
  Config config;
  config.backend = backend;
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
}

void open_shared_runtime(BenchRun& run) {
  if (run.runtime_opened) return;
  run.runtime_opened = true;
  g_watchdog.kick("creating the runtime");
  const Config config = bench_config(run);
  const Status st = Runtime::create(config, &run.runtime);
  if (!st) {
    run.runtime_error = "Runtime::create: " + st.to_string();
    std::fprintf(stderr, "megaring_bench: %s\n", run.runtime_error.c_str());
    run.runtime.reset();
    return;
  }
  const Runtime& rt = *run.runtime;
  Json& rtj = run.report["runtime"];
  rtj["backend"] = backend_name(rt.backend());
  rtj["device_name"] = rt.device_name();
  rtj["consumer_units"] = rt.consumer_units();
  rtj["ring_capacity"] = rt.capacity();
  rtj["poll_backoff_min_ns"] = config.poll_backoff_min_ns;
  rtj["poll_backoff_max_ns"] = config.poll_backoff_max_ns;
  rtj["fetch_warps"] = config.fetch_warps == 0 ? kDefaultFetchWarps : config.fetch_warps;
  rtj["timeline_capacity"] = config.timeline_capacity;
  std::printf("  megaring runtime: backend %s, device \"%s\", %u consumer units, ring %u\n",
              backend_name(rt.backend()), rt.device_name(), rt.consumer_units(), rt.capacity());
  run.backend_tag = backend_name(rt.backend());
}

void close_shared_runtime(BenchRun& run) {
  if (!run.runtime) return;
  const RuntimeStats s = run.runtime->stats();
  Json sj = Json::object();
  sj["published"] = static_cast<unsigned long long>(s.published);
  sj["completed_ok"] = static_cast<unsigned long long>(s.completed_ok);
  sj["faulted"] = static_cast<unsigned long long>(s.faulted);
  sj["aborted"] = static_cast<unsigned long long>(s.aborted);
  sj["ring_full_events"] = static_cast<unsigned long long>(s.ring_full_events);
  sj["protocol_errors"] = static_cast<unsigned long long>(s.protocol_errors);
  run.report["runtime"]["stats"] = sj;
  if (s.faulted || s.aborted || s.protocol_errors)
    std::fprintf(stderr, "megaring_bench: WARNING: runtime stats show faults/aborts/protocol errors\n");
  const Status st = run.runtime->shutdown();
  if (!st) std::fprintf(stderr, "megaring_bench: shutdown: %s\n", st.to_string().c_str());
  run.runtime.reset();
}

}  // namespace mrbench
