// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the tables on stdout (report_table.hpp).
#include "report_table.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "harness.hpp"

namespace mrbench {
namespace {

const char* group_note(const std::string& g) {
  if (g == "round_trip") return "latency: one request, publish to completion seen by the host";
  if (g == "throughput") return "rate: items completed per second (median over trials [min, max])";
  if (g == "scaling")
    return "latency: a kept NOP every 64th slot, publish to completion seen by its producer";
  if (g == "interference")
    return "latency: wake-up round trip after 100 us idle; GEMM slowdown in the JSON and below";
  if (g == "host_cost") return "latency: the publish()/enqueue() call (every 64th), back-pressure included";
  if (g == "fairness")
    return "latency: a light tenant's kept NOP, publish to wait() return; beside: the flood's drain rate";
  if (g == "control") return "latency: set_grants called to returned (park every executor, write, release)";
  return "";
}

const char* group_title(const std::string& g) {
  if (g == "round_trip") return "round trip";
  if (g == "throughput") return "throughput";
  if (g == "scaling") return "producer scaling";
  if (g == "interference") return "interference (GEMM beside an idle megakernel)";
  if (g == "host_cost") return "host cost per slot (CPU backend vs moodycamel)";
  if (g == "fairness") return "tenant fairness (light tenant beside a flooding one)";
  if (g == "control") return "control operations";
  return g.c_str();
}

}  // namespace

void print_table(const std::vector<Arm>& arms) {
  const char* groups[] = {"round_trip", "throughput", "scaling", "interference", "host_cost",
                          "fairness", "control"};
  for (const char* g : groups) {
    bool any = false;
    for (const Arm& a : arms) any |= a.group == g;
    if (!any) continue;
    std::printf("\n== %s\n   (%s)\n", group_title(g), group_note(g));
    std::printf("  %-46s %8s %9s %9s %9s %9s %9s | %s\n", "arm", "n", "min us", "p50 us",
                "p99 us", "p99.9 us", "max us", "rate (median [min, max])");
    for (const Arm& a : arms)
      if (a.group == g) std::printf("%s\n", format_row(a).c_str());
  }
}

void print_targets(const std::vector<Target>& targets) {
  std::printf("\n== targets (issue 14; pass/miss only where the arm ran on its backend)\n");
  for (const Target& t : targets) {
    char ratio[48] = "";
    if (std::isfinite(t.ratio)) {
      if (t.name == "tput_abs" || t.name == "producers_8")
        std::snprintf(ratio, sizeof(ratio), "%.2f M/s", t.ratio / 1e6);
      else
        std::snprintf(ratio, sizeof(ratio), "ratio %.3g", t.ratio);
    } else if (std::isinf(t.ratio)) {
      std::snprintf(ratio, sizeof(ratio), "ratio inf");
    }
    std::printf("  [%-4s] %-72s %-16s %s\n", t.status.c_str(), t.requirement.c_str(), ratio,
                t.detail.c_str());
  }
}

}  // namespace mrbench
