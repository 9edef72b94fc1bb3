// SPDX-License-Identifier: Apache-2.0
// megaring_bench: what the run saw (host, CUDA, NVML when present).
#pragma once

#include <string>

#include "bench_common.hpp"

namespace mrbench {

// Host: date (UTC), CPU model, cores, kernel, compiler, build type.
Json host_environment();

// NVML, loaded with dlopen("libnvidia-ml.so.1") at run time so the bench
// never links it: PCIe link generation/width (current and max), clocks
// (current and max), temperature and power. `pci_bus_id` as CUDA reports it.
// Returns an object with "available": false (and why) without NVML.
Json nvml_snapshot(const std::string& pci_bus_id, int fallback_index);

// "2025-01-31", UTC.
std::string utc_date();
std::string utc_timestamp();
std::string utc_time_compact();  // "HHMMSS", UTC
// "NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3".
std::string slug(const std::string& s);

}  // namespace mrbench
