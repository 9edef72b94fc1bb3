// SPDX-License-Identifier: Apache-2.0
// megaring_bench: interference (interf.*): a large cuBLAS GEMM alone and
// beside an idle megakernel at several block counts and backoffs, the
// host-to-device copy bandwidth beside it, and the wake-up latency per
// setting. Needs a GPU and a non-cpu backend.
#include <megaring/consumer.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "arms.hpp"

namespace mrbench {

using namespace megaring;

namespace {

// The lists' Config::workers values as {workers, blocks}: 0 (the library
// default) runs kDefaultGpuWorkers blocks, counts at or above the SM count
// (kAllSms) one per SM. One setting per block count; where the default has
// the count of an explicit entry, that setting is the default's (workers 0),
// so that the targets find it.
struct Workers {
  uint32_t workers, blocks;
};
std::vector<Workers> distinct_workers(const std::vector<uint32_t>& list, int sm_count) {
  const uint32_t sms = static_cast<uint32_t>(sm_count);
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
}

// sz.gemm_trials trials of sz.gemm_reps GEMMs with cuBLAS SM-count target
// `sm_target` (0: all SMs): ms per GEMM into *ms. A trial past `limit_s` sets
// *timed_out and stops (its GEMMs are still queued).
bool gemm_trials(const Sizes& sz, int sm_target, double limit_s, std::vector<double>* ms,
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
}

struct Setting {
  Workers units;     // Config::workers and the blocks it runs
  uint32_t backoff;  // Config::poll_backoff_max_ns
  bool narrow;       // gpu::narrow_consumer() instead of the built-in one
};

// One setting's arm: the GEMM (and the copy) alone, then beside an idle
// runtime of that setting, and its wake-up round trips.
Arm interference_arm(const BenchRun& run, const Setting& setting) {
  const Options& opt = run.options;
  const Sizes& sz = run.sizes;
  const gpu::DeviceInfo& dev = run.device;
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
  bool ok = gemm_trials(sz, 0, 600, &alone_ms, &to, &err) &&
            (sm_target == 0 || gemm_trials(sz, sm_target, 600, &alone_target_ms, &to, &err));
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
      if (ok) ok = gemm_trials(sz, 0, limit_s, &beside_ms, &starved, &err);
      if (ok && starved) ok = release_gemm();
      if (ok && !starved && sm_target > 0) {
        ok = gemm_trials(sz, sm_target, limit_s, &beside_target_ms, &to, &err);
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
  return a;
}

}  // namespace

void interference_arms(BenchRun& run) {
  std::string why = run.gpu_skip;
  if (why.empty() && !gpu::gemm_ready()) why = gpu::have_cublas() ? "GEMM set-up failed" : "built without cuBLAS";
  if (!why.empty()) {
    run.add(skipped("interf", "interference", "GEMM beside an idle megakernel", why));
    return;
  }
  const Sizes& sz = run.sizes;
  std::vector<Setting> settings;
  for (const Workers& w : distinct_workers(sz.interf_workers, run.device.sm_count))
    for (uint32_t backoff : sz.interf_backoff) settings.push_back({w, backoff, false});
  for (const Workers& w : distinct_workers(sz.interf_narrow_workers, run.device.sm_count))
    settings.push_back({w, Config{}.poll_backoff_max_ns, true});
  for (const Setting& setting : settings) run.add(interference_arm(run, setting));
}

}  // namespace mrbench
