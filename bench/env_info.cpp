// SPDX-License-Identifier: Apache-2.0
#include "env_info.hpp"

#include <dlfcn.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <thread>

#ifndef MEGARING_BENCH_BUILD_TYPE
#define MEGARING_BENCH_BUILD_TYPE "unknown"
#endif

namespace mrbench {

std::string utc_date() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string utc_time_compact() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H%M%S", &tm);
  return buf;
}

std::string slug(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c)) {
      out += static_cast<char>(std::tolower(c));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "unknown" : out;
}

Json host_environment() {
  Json j = Json::object();
  j["date_utc"] = utc_timestamp();
  std::string model = "unknown";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        model = line.substr(colon + 1);
        while (!model.empty() && model.front() == ' ') model.erase(model.begin());
      }
      break;
    }
  }
  j["cpu_model"] = model;
  j["hardware_threads"] = std::thread::hardware_concurrency();
  struct utsname u {};
  if (uname(&u) == 0) {
    j["kernel"] = std::string(u.sysname) + " " + u.release;
    j["machine"] = u.machine;
  }
  j["compiler"] = std::string("g++ ") + __VERSION__;
  j["build_type"] = MEGARING_BENCH_BUILD_TYPE;
  const char* git = std::getenv("MEGARING_BENCH_GIT");  // set by scripts/bench.sh
  j["git"] = git != nullptr && *git != '\0' ? git : "unknown";
  return j;
}

namespace {

// The few NVML entry points used, declared here (no nvml.h dependency).
using nvmlReturn = int;  // NVML_SUCCESS == 0
using nvmlDevice = void*;
constexpr int kNvmlClockGraphics = 0, kNvmlClockSm = 1, kNvmlClockMem = 2;
constexpr int kNvmlTemperatureGpu = 0;

struct Nvml {
  void* lib = nullptr;
  nvmlReturn (*init)() = nullptr;
  nvmlReturn (*shutdown)() = nullptr;
  nvmlReturn (*by_bus_id)(const char*, nvmlDevice*) = nullptr;
  nvmlReturn (*by_index)(unsigned, nvmlDevice*) = nullptr;
  nvmlReturn (*driver_version)(char*, unsigned) = nullptr;
  nvmlReturn (*curr_gen)(nvmlDevice, unsigned*) = nullptr;
  nvmlReturn (*curr_width)(nvmlDevice, unsigned*) = nullptr;
  nvmlReturn (*max_gen)(nvmlDevice, unsigned*) = nullptr;
  nvmlReturn (*max_width)(nvmlDevice, unsigned*) = nullptr;
  nvmlReturn (*clock)(nvmlDevice, int, unsigned*) = nullptr;
  nvmlReturn (*max_clock)(nvmlDevice, int, unsigned*) = nullptr;
  nvmlReturn (*temperature)(nvmlDevice, int, unsigned*) = nullptr;
  nvmlReturn (*power)(nvmlDevice, unsigned*) = nullptr;
};

template <class F>
void load(void* lib, const char* name, F* fn) {
  *fn = reinterpret_cast<F>(dlsym(lib, name));
}

}  // namespace

Json nvml_snapshot(const std::string& pci_bus_id, int fallback_index) {
  Json j = Json::object();
  Nvml n;
  n.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (n.lib == nullptr) {
    j["available"] = false;
    j["why"] = "libnvidia-ml.so.1 not found";
    return j;
  }
  load(n.lib, "nvmlInit_v2", &n.init);
  load(n.lib, "nvmlShutdown", &n.shutdown);
  load(n.lib, "nvmlDeviceGetHandleByPciBusId_v2", &n.by_bus_id);
  load(n.lib, "nvmlDeviceGetHandleByIndex_v2", &n.by_index);
  load(n.lib, "nvmlSystemGetDriverVersion", &n.driver_version);
  load(n.lib, "nvmlDeviceGetCurrPcieLinkGeneration", &n.curr_gen);
  load(n.lib, "nvmlDeviceGetCurrPcieLinkWidth", &n.curr_width);
  load(n.lib, "nvmlDeviceGetMaxPcieLinkGeneration", &n.max_gen);
  load(n.lib, "nvmlDeviceGetMaxPcieLinkWidth", &n.max_width);
  load(n.lib, "nvmlDeviceGetClockInfo", &n.clock);
  load(n.lib, "nvmlDeviceGetMaxClockInfo", &n.max_clock);
  load(n.lib, "nvmlDeviceGetTemperature", &n.temperature);
  load(n.lib, "nvmlDeviceGetPowerUsage", &n.power);
  if (n.init == nullptr || n.init() != 0) {
    j["available"] = false;
    j["why"] = "nvmlInit failed";
    dlclose(n.lib);
    return j;
  }
  nvmlDevice dev = nullptr;
  bool found = !pci_bus_id.empty() && n.by_bus_id && n.by_bus_id(pci_bus_id.c_str(), &dev) == 0;
  if (!found && n.by_index) found = n.by_index(static_cast<unsigned>(fallback_index), &dev) == 0;
  j["available"] = found;
  if (n.driver_version) {
    char buf[96] = {};
    if (n.driver_version(buf, sizeof(buf)) == 0) j["driver_version"] = std::string(buf);
  }
  if (found) {
    auto get = [&](nvmlReturn (*fn)(nvmlDevice, unsigned*), const char* key) {
      unsigned v = 0;
      if (fn && fn(dev, &v) == 0) j[key] = v;
      else j[key] = nullptr;
    };
    auto get_clock = [&](nvmlReturn (*fn)(nvmlDevice, int, unsigned*), int which, const char* key) {
      unsigned v = 0;
      if (fn && fn(dev, which, &v) == 0) j[key] = v;
      else j[key] = nullptr;
    };
    get(n.curr_gen, "pcie_gen_current");
    get(n.curr_width, "pcie_width_current");
    get(n.max_gen, "pcie_gen_max");
    get(n.max_width, "pcie_width_max");
    get_clock(n.clock, kNvmlClockSm, "sm_clock_mhz");
    get_clock(n.clock, kNvmlClockGraphics, "graphics_clock_mhz");
    get_clock(n.clock, kNvmlClockMem, "mem_clock_mhz");
    get_clock(n.max_clock, kNvmlClockSm, "sm_clock_max_mhz");
    get_clock(n.max_clock, kNvmlClockMem, "mem_clock_max_mhz");
    get_clock(n.temperature, kNvmlTemperatureGpu, "temperature_c");
    get(n.power, "power_mw");
  } else {
    j["why"] = "no NVML handle for this device";
  }
  if (n.shutdown) n.shutdown();
  dlclose(n.lib);
  return j;
}

}  // namespace mrbench
