// SPDX-License-Identifier: Apache-2.0
// The CPU backend's threads as the OS sees them: their names and timer
// slack, read back from /proc.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

// The CPU workers' thread setup (cpu_backend.cpp): each is named
// megaring-w<unit>, and its timer slack keeps a poll-backoff sleep near the
// configured cap (a quarter of it, from 1 us to Linux's default 50 us)
// instead of the default 50 us overrun. Read back from /proc, as a profiler
// would see them (another thread's slack needs CAP_SYS_NICE to read).
struct WorkerThread {
  std::string name;
  long timer_slack_ns = -1;
};

// The first line of a /proc file, without its newline ("" if unreadable).
std::string read_proc_line(const std::string& path) {
  std::string line;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[128] = {};
    if (std::fgets(buf, sizeof buf, f) != nullptr) line = buf;
    std::fclose(f);
  }
  while (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

// This process's threads named megaring-w*, sorted by name.
std::vector<WorkerThread> megaring_worker_threads() {
  std::vector<WorkerThread> out;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return out;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string tid = entry->d_name;
    if (tid.empty() || tid[0] == '.') continue;
    WorkerThread w;
    w.name = read_proc_line("/proc/self/task/" + tid + "/comm");
    if (w.name.rfind("megaring-", 0) != 0) continue;  // executors (-w<unit>) and -io
    // Per-thread slack lives at /proc/<tid>, not under task/.
    const std::string slack = read_proc_line("/proc/" + tid + "/timerslack_ns");
    if (!slack.empty()) w.timer_slack_ns = std::stol(slack);
    out.push_back(w);
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end(),
            [](const WorkerThread& a, const WorkerThread& b) { return a.name < b.name; });
  return out;
}

TEST(CpuBackendWorkers, AreNamedAndSleepNearTheirBackoffCap) {
#if !defined(__linux__)
  GTEST_SKIP() << "thread names and timer slack are set on Linux only";
#endif
  if (read_proc_line("/proc/self/timerslack_ns").empty())
    GTEST_SKIP() << "this kernel has no /proc/<tid>/timerslack_ns (Linux < 4.6)";
  Watchdog dog(current_test_name(), Watchdog::default_limit());
  struct Case {
    uint32_t workers;
    uint32_t poll_backoff_max_ns;
    long expected_slack_ns;
  };
  for (const Case& c : {Case{3, 2048, 1000}, Case{2, 100'000, 25'000}}) {
    SCOPED_TRACE("workers " + std::to_string(c.workers) + ", backoff cap " +
                 std::to_string(c.poll_backoff_max_ns) + " ns");
    // A joined thread can stay listed in /proc for a moment after it exited.
    const auto gone_by = Clock::now() + scaled(seconds(10));
    while (!megaring_worker_threads().empty() && Clock::now() < gone_by)
      std::this_thread::sleep_for(milliseconds(1));
    ASSERT_TRUE(megaring_worker_threads().empty()) << "workers of an earlier runtime still run";
    Config cfg;
    cfg.backend = Backend::kCpu;
    cfg.workers = c.workers;
    cfg.poll_backoff_max_ns = c.poll_backoff_max_ns;
    std::unique_ptr<Runtime> rt;
    MR_ASSERT_OK(Runtime::create(cfg, &rt));
    // Each thread names itself as it starts: wait until all have. The
    // executors and the I/O thread (fetcher and completer), which sorts first.
    std::vector<WorkerThread> workers = megaring_worker_threads();
    const auto deadline = Clock::now() + scaled(seconds(10));
    while (workers.size() < c.workers + 1 && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
      workers = megaring_worker_threads();
    }
    ASSERT_EQ(workers.size(), c.workers + 1);
    EXPECT_EQ(workers[0].name, "megaring-io");
    for (uint32_t u = 0; u < c.workers; ++u)
      EXPECT_EQ(workers[u + 1].name, "megaring-w" + std::to_string(u));
    Completion done;  // and they still run slots
    MR_ASSERT_OK(rt->call(ops::nop(7), &done, scaled(seconds(10))));
    EXPECT_EQ(done.result, 7u);
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
    rt.reset();
    if (workers[0].timer_slack_ns < 0)
      GTEST_SKIP() << "names checked; the slack is not: reading another thread's "
                      "/proc/<tid>/timerslack_ns needs CAP_SYS_NICE";
    for (const WorkerThread& w : workers) EXPECT_EQ(w.timer_slack_ns, c.expected_slack_ns) << w.name;
  }
}

}  // namespace
}  // namespace megaring_test
