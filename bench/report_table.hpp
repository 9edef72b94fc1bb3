// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the tables on stdout at the end of a run: one per group of
// arms (each row is format_row(), harness.hpp), then the targets.
#pragma once

#include <vector>

#include "bench_common.hpp"

namespace mrbench {

void print_table(const std::vector<Arm>& arms);
void print_targets(const std::vector<Target>& targets);

}  // namespace mrbench
