// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the targets of issue 14 (targets.hpp). The GPU ones are
// judged only where the megaring arms ran on the CUDA backend; host cost is
// the one judged on the CPU backend.
#include "targets.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "host_cost.hpp"

namespace mrbench {

std::vector<Target> evaluate_targets(const BenchRun& run) {
  const std::vector<Arm>& arms = run.arms;
  const std::string& gpu_skip = run.gpu_skip;
  const std::string& mr_tag = run.backend_tag;
  const Options& opt = run.options;
  const Sizes& sz = run.sizes;
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
  return targets;
}

}  // namespace mrbench
