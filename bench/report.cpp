// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the report of a run (report.hpp).
#include "report.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "env_info.hpp"
#include "report_table.hpp"

namespace mrbench {

void start_report(int argc, char** argv, BenchRun& run) {
  const Options& opt = run.options;
  Json& report = run.report;
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);

  report["schema"] = "megaring-bench/1";
  report["mode"] = opt.short_mode ? "short" : "full";
  report["command_line"] = command_line;
  report["host"] = host_environment();
  report["host"]["cuda_module_loading"] = std::getenv("CUDA_MODULE_LOADING");

  run.device = gpu::query_device(opt.device);
  const gpu::DeviceInfo& dev = run.device;
  // Raw CUDA arms need a GPU and a backend other than cpu.
  if (!dev.available)
    run.gpu_skip = "no GPU";
  else if (opt.backend == megaring::Backend::kCpu)
    run.gpu_skip = "--backend cpu";
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
  // Filled when the shared runtime is created (open_shared_runtime).
  report["runtime"] = Json::object();
}

int finish_report(BenchRun& run, const std::vector<Target>& targets, Clock::time_point run_start) {
  const Options& opt = run.options;
  const gpu::DeviceInfo& dev = run.device;
  const std::vector<Arm>& arms = run.arms;
  Json& report = run.report;
  if (dev.available) report["nvml_end"] = nvml_snapshot(dev.pci_bus_id, opt.device);
  print_table(arms);
  print_targets(targets);

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
    const std::string device = dev.available && run.gpu_skip.empty() ? slug(dev.name) : "cpu";
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

}  // namespace mrbench
