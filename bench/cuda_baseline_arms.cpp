// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the raw CUDA baselines (gpu_arms.cu) as arms: the
// round trips megaring is judged against (ping-pong floor, read layouts,
// launch and graph + sync) and the launch and graph throughputs.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "arms.hpp"

namespace mrbench {

void set_up_gpu(BenchRun& run) {
  if (!run.gpu_skip.empty()) return;
  const Options& opt = run.options;
  const Sizes& sz = run.sizes;
  gpu::InitOptions io;
  io.device = opt.device;
  io.graph_nodes = sz.graph_nodes;
  io.gemm_n = opt.arms.count("interf") ? sz.gemm_n : 0;
  io.copy_bytes = opt.arms.count("interf") ? sz.copy_mb << 20 : 0;
  std::string err;
  std::fprintf(stderr, "megaring_bench: loading kernels, graphs and cuBLAS...\n");
  g_watchdog.kick("GPU set-up");
  if (!gpu::init(io, &err)) {
    run.gpu_skip = "GPU set-up failed: " + err;
    std::fprintf(stderr, "megaring_bench: %s\n", run.gpu_skip.c_str());
  }
}

void cuda_round_trip_arms(BenchRun& run) {
  const Sizes& sz = run.sizes;
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
    if (!run.gpu_skip.empty()) {
      run.add(skipped(r.name, "round_trip", r.label, run.gpu_skip));
      continue;
    }
    Arm a = make_arm(r.name, "round_trip", r.label);
    a.params["iters"] = r.iters;
    std::vector<double> ns;
    std::string err;
    const bool ok = r.fn(std::max(100, r.iters / 20), r.iters, &ns, &err);
    set_latency_result(a, ok, ns, err);
    note_over_floor(run.arms, a);
    run.add(a);
  }
}

void cuda_throughput_arms(BenchRun& run) {
  const Sizes& sz = run.sizes;
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
    if (!run.gpu_skip.empty()) {
      run.add(skipped(r.name, "throughput", r.label, run.gpu_skip));
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
    run.add(a);
  }
}

}  // namespace mrbench
