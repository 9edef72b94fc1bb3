// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the targets of issue 14 (bench/README.md, "Targets"),
// judged from the arms that ran: pass / miss, or n/a with the reason.
#pragma once

#include <vector>

#include "bench_common.hpp"
#include "harness.hpp"

namespace mrbench {

std::vector<Target> evaluate_targets(const BenchRun& run);

}  // namespace mrbench
