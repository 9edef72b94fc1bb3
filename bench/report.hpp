// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the report of a run: the environment it saw (JSON and the
// lines at the top of stdout), and at the end the tables, the JSON file
// (--json or --results-dir) and the exit status.
#pragma once

#include <vector>

#include "bench_common.hpp"
#include "harness.hpp"

namespace mrbench {

// Fills run.report's environment (host, GPU, NVML), run.device and
// run.gpu_skip, and prints the environment lines.
void start_report(int argc, char** argv, BenchRun& run);

// Prints the tables and targets, writes the JSON report, prints the summary
// line; returns the exit status: 0 when every arm that ran succeeded, 1 if
// one failed or the report could not be written.
int finish_report(BenchRun& run, const std::vector<Target>& targets, Clock::time_point run_start);

}  // namespace mrbench
