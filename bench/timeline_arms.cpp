// SPDX-License-Identifier: Apache-2.0
// megaring_bench: timeline mode's cost (rt.megaring_call_timeline,
// tput.timeline.b64): the round trip and batch-64 throughput again, on a
// runtime with timeline mode on (the smallest capacity), the legs of a call
// from its records, and its trace (--trace).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "arms.hpp"

namespace mrbench {

using namespace megaring;

bool timeline_cost_arms_apply(const BenchRun& run) {
  // Not when --timeline already ran every arm that way, nor when the runtime
  // could not be created (the arms before say why).
  return run.options.timeline == 0 && run.runtime_error.empty();
}

void timeline_cost_arms(BenchRun& run) {
  const Options& opt = run.options;
  const Sizes& sz = run.sizes;
  const std::string& mr_tag = run.backend_tag;
  Config config = bench_config(run);
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
      if (const Arm* off = find_arm(run.arms, "rt.megaring_call"); ok && off)
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
      if (const Arm* off = find_arm(run.arms, "tput.megaring.b64"); a.status == "ok" && off)
        a.extra["rate_vs_timeline_off"] = a.rate.median / off->rate.median;
    }
    run.add(a);
  }
  if (trt) {
    if (!opt.trace_path.empty()) {
      // The last 2 * ring tickets: the end of the last arm above.
      const Status ts = trt->write_timeline_trace(opt.trace_path);
      if (!ts)
        std::fprintf(stderr, "megaring_bench: trace: %s\n", ts.to_string().c_str());
      else
        run.report["timeline_trace"] = opt.trace_path;
    }
    const Status ss = trt->shutdown();
    if (!ss) std::fprintf(stderr, "megaring_bench: shutdown: %s\n", ss.to_string().c_str());
  }
}

}  // namespace mrbench
