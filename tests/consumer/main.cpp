// SPDX-License-Identifier: Apache-2.0
// Uses the installed megaring: the built-in consumer and a custom one, on the
// CPU backend (or --backend auto|cuda). Exits 0 when every result is right.
#include <megaring/runtime.hpp>
#include <megaring/version.h>

#include <cstdio>
#include <string>
#include <vector>

#include "my_consumer.hpp"

using namespace megaring;

static int g_failures = 0;

static void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    ++g_failures;
  }
}

#define TRY(expr)                                                                  \
  do {                                                                             \
    Status st_ = (expr);                                                           \
    if (!st_) {                                                                    \
      std::fprintf(stderr, "consumer: %s: %s\n", #expr, st_.to_string().c_str()); \
      return 1;                                                                    \
    }                                                                              \
  } while (0)

int main(int argc, char** argv) {
  Config config;
  config.backend = Backend::kCpu;
  if (argc == 3 && std::string(argv[1]) == "--backend") {
    const std::string v = argv[2];
    config.backend = v == "cuda" ? Backend::kCuda : v == "auto" ? Backend::kAuto : Backend::kCpu;
  }

  // 0. The installed library is the version of the installed headers.
  {
    const Version v = version();
    check(v.major == MEGARING_VERSION_MAJOR && v.minor == MEGARING_VERSION_MINOR &&
              v.patch == MEGARING_VERSION_PATCH,
          "version() matches megaring/version.h");
    check(std::string(version_string()) == MEGARING_VERSION_STRING,
          "version_string() matches megaring/version.h");
    std::printf("consumer: megaring %s\n", version_string());
  }

  // 1. Built-in consumer: a batch of atomic adds, a fence, a kept NOP.
  {
    std::unique_ptr<Runtime> rt;
    TRY(Runtime::create(config, &rt));
    BufferHandle counter = 0;
    TRY(rt->alloc_buffer(8, &counter));
    std::vector<SlotRequest> batch;
    for (uint64_t i = 1; i <= 100; ++i) batch.push_back(ops::atomic_add(counter, 0, i));
    Ticket first;
    TRY(rt->publish_batch(batch.data(), static_cast<uint32_t>(batch.size()), &first));
    TRY(rt->wait_done(Ticket{first.value + 99, false}));
    Completion c;
    TRY(rt->call(ops::fence(), &c));
    check(c.ok(), "fence");
    TRY(rt->call(ops::nop(7), &c));
    check(c.ok() && c.result == 7, "nop echo");
    uint64_t sum = 0;
    TRY(rt->read_buffer(counter, 0, &sum, 8));
    check(sum == 5050, "atomic_add sum");
    TRY(rt->shutdown());
    const RuntimeStats s = rt->stats();
    check(s.published == 102 && s.completed_ok == 102 && s.protocol_errors == 0, "stats");
  }

  // 2. Custom consumer (my_consumer.cu): the user opcode, an unknown one.
  {
    std::unique_ptr<Runtime> rt;
    TRY(Runtime::create(config, sum_squares_consumer(), &rt));
    constexpr uint32_t n = 1000;
    std::vector<uint32_t> x(n);
    uint64_t expected = 0;
    for (uint32_t i = 0; i < n; ++i) {
      x[i] = i * 7 + 1;
      expected += uint64_t(x[i]) * x[i];
    }
    BufferHandle buffer = 0;
    TRY(rt->alloc_buffer(n * 4, &buffer));
    TRY(rt->write_buffer(buffer, 0, x.data(), n * 4));
    SlotRequest r;
    r.opcode = kOpSumSquares;
    r.args[0] = buffer;
    r.args[1] = n;
    Completion c;
    TRY(rt->call(r, &c));
    check(c.ok() && c.result == expected, "user opcode result");
    r.args[1] = n + 1;
    TRY(rt->call(r, &c));
    check(c.status == MR_STATUS_FAULT && c.fault == MR_FAULT_OUT_OF_BOUNDS, "bounds fault");
    r.opcode = kOpSumSquares + 1;
    TRY(rt->call(r, &c));
    check(c.status == MR_STATUS_FAULT && c.fault == MR_FAULT_UNKNOWN_OPCODE, "unknown opcode fault");
    std::printf("consumer: backend=%s consumer=\"%s\" sum of squares=%llu\n",
                backend_name(rt->backend()), sum_squares_consumer().name,
                static_cast<unsigned long long>(expected));
    TRY(rt->shutdown());
  }

  if (g_failures != 0) return 1;
  std::printf("consumer: OK\n");
  return 0;
}
