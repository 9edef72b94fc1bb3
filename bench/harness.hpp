// SPDX-License-Identifier: Apache-2.0
// megaring_bench: what every arm function shares (defined once, in
// harness.cpp): the run it adds its arms to, building and recording an Arm,
// the watchdog, the table row of an arm, and the runtime that the round-trip,
// throughput and scaling arms share.
#pragma once

#include <megaring/runtime.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "gpu_arms.hpp"
#include "options.hpp"

namespace mrbench {

// One run of the harness: what the arm functions read (options, sizes, the
// device) and what they write (arms, the report).
struct BenchRun {
  BenchRun(const Options& o, const Sizes& s) : options(o), sizes(s) {}

  const Options& options;
  const Sizes& sizes;
  gpu::DeviceInfo device;
  // Why the raw CUDA arms (and interference) cannot run; empty when they can.
  std::string gpu_skip;
  Json report = Json::object();
  std::vector<Arm> arms;

  // The runtime of the rt/tput/scaling arms (open_shared_runtime), and why
  // there is none when its creation failed.
  std::unique_ptr<megaring::Runtime> runtime;
  std::string runtime_error;
  // Its backend's name, in the arms' labels; kept after it is shut down.
  std::string backend_tag;
  bool runtime_opened = false;  // creation attempted (once a run)

  // Appends an arm and announces it (announce()).
  void add(Arm arm);
};

// ---------------------------------------------------------------------------
// Building an arm and recording its outcome
// ---------------------------------------------------------------------------
Arm make_arm(const char* name, const char* group, std::string label);
Arm skipped(const char* name, const char* group, std::string label, const std::string& why);
// A latency arm's outcome: its samples, or the error that stopped it.
void set_latency_result(Arm& a, bool ok, const std::vector<double>& ns, const std::string& err);
// A rate arm's outcome: the spread of its trials, or the error that stopped it.
void set_rate_result(Arm& a, bool ok, const std::vector<double>& rates, const char* unit,
                     const std::string& err);

// The first arm of that name that succeeded, or nullptr.
const Arm* find_arm(const std::vector<Arm>& arms, const std::string& name);
// A GPU round trip's p50 less the ping-pong floor's (rt.pingpong_floor, run
// first): what the read layout or the whole call adds to the PCIe round trip.
void note_over_floor(const std::vector<Arm>& arms, Arm& a);

// ---------------------------------------------------------------------------
// Watchdog: a deadlock next to a persistent kernel (e.g. a device-wide
// synchronisation slipping in) would otherwise hang the run silently. Every
// finished arm kicks it; after `limit` seconds without a kick it names the
// phase and ends the process.
// ---------------------------------------------------------------------------
struct Watchdog {
  std::atomic<int64_t> last_kick_ms{0};
  std::atomic<const char*> phase{"start-up"};
  int64_t limit_ms = 300000;

  static int64_t now_ms();
  void touch();
  void kick(const char* what);
  void start(int64_t limit);
};
extern Watchdog g_watchdog;

// Each arm's row as it finishes (stderr), so that a run cut short still
// leaves the figures of every arm it finished.
void announce(const Arm& a);

// ---------------------------------------------------------------------------
// Formatting: one table row (no newline): the arm's label, latency quantiles
// and rate or its group's own summary.
// ---------------------------------------------------------------------------
std::string fmt_us(double ns);
std::string fmt_rate(double r);
std::string format_row(const Arm& a);

// ---------------------------------------------------------------------------
// Small pieces of the measurements
// ---------------------------------------------------------------------------
void busy_wait_ns(double ns);
// `total` in `parts` shares, the remainder on the first.
std::vector<uint64_t> split_evenly(uint64_t total, int parts);

// ---------------------------------------------------------------------------
// The shared runtime
// ---------------------------------------------------------------------------
// The rt/tput/scaling runtime's configuration (the timeline and producer-ring
// runtimes start from it too).
megaring::Config bench_config(const BenchRun& run);
// Creates run.runtime (once a run; later calls do nothing) after every
// kernel, graph and cuBLAS path is loaded; fills report["runtime"].
void open_shared_runtime(BenchRun& run);
// Records its final stats in report["runtime"]["stats"] and shuts it down.
void close_shared_runtime(BenchRun& run);

}  // namespace mrbench
