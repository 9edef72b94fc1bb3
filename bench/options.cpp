// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the command line and the sizes of every arm (options.hpp).
#include "options.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace mrbench {

using megaring::Backend;

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
      "  --arms LIST    comma list of rt,tput,scaling,interf,host,fair,ctl (default: all)\n"
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

bool parse_options(int argc, char** argv, Options* o) {
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
        if (item == "control") item = "ctl";
        if (item != "rt" && item != "tput" && item != "scaling" && item != "interf" &&
            item != "host" && item != "fair" && item != "ctl") {
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

}  // namespace mrbench
