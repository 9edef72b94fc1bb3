// SPDX-License-Identifier: Apache-2.0
// staging_job: a small end-to-end job through the staging arena. The host
// stages inputs x and y in an immutable region (written, then sealed), the
// consumer copies them to buffers by descriptor, computes y = alpha * x + y
// (AXPY_F32), and copies y back to a mutable region, where the host reads
// the results and checks them against its own fmaf.
//
//   staging_job [--backend auto|cuda|gpu|cpu] [--elements N]
// Exits 0 when every check holds, 1 otherwise, 77 when --backend cuda finds
// no GPU.
#include <megaring/runtime.hpp>

#include "cli.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace megaring;

static int fail(const char* what, const std::string& why) {
  std::fprintf(stderr, "staging_job: %s: %s\n", what, why.c_str());
  return 1;
}

// Runs one slot and waits for it; "" when it completed OK.
static std::string run(Runtime& rt, const SlotRequest& request) {
  Completion c;
  if (Status st = rt.call(request, &c, std::chrono::seconds(30)); !st) return st.to_string();
  if (!c.ok()) return "status " + std::to_string(c.status) + ", fault " + std::to_string(c.fault);
  return "";
}

int main(int argc, char** argv) {
  Config config;
  uint64_t elements = 4096;
  sample_cli::Cli cli(argc, argv, "[--backend auto|cuda|gpu|cpu] [--elements 1..1000000]");
  while (cli.next()) {
    if (cli.flag() == "--backend") cli.backend(&config.backend);
    else if (cli.flag() == "--elements") cli.number(1, 1'000'000, &elements);
    else cli.unknown();
  }
  if (cli.done()) return cli.exit_code();
  if (config.backend == Backend::kCuda && !cuda_device_available()) {
    std::printf("staging_job: no GPU; skipped\n");
    return 77;
  }
  const uint64_t bytes = elements * sizeof(float);
  config.staging_arena_bytes = 4 * bytes + 4096;  // inputs, results, and room to spare

  std::unique_ptr<Runtime> rt;
  if (Status st = Runtime::create(config, &rt); !st) return fail("create", st.to_string());

  // Stage: x then y in one immutable region, sealed before any slot reads it.
  std::vector<float> x(elements), y(elements);
  for (uint64_t i = 0; i < elements; ++i) {
    x[i] = 0.5f * static_cast<float>(i % 1000) - 3.0f;
    y[i] = 1.0f / static_cast<float>(i + 1);
  }
  const float alpha = 1.75f;
  RegionHandle inputs = 0, results = 0;
  if (Status st = rt->create_region(RegionPolicy::kImmutable, 2 * bytes, &inputs); !st)
    return fail("create_region(inputs)", st.to_string());
  if (Status st = rt->write_region(inputs, 0, x.data(), bytes); !st) return fail("write x", st.to_string());
  if (Status st = rt->write_region(inputs, bytes, y.data(), bytes); !st) return fail("write y", st.to_string());
  if (Status st = rt->seal_region(inputs); !st) return fail("seal", st.to_string());
  if (Status st = rt->create_region(RegionPolicy::kMutable, bytes, &results); !st)
    return fail("create_region(results)", st.to_string());

  // Copy to buffers, compute, copy back: each step waits for the one before.
  BufferHandle bx = 0, by = 0;
  if (Status st = rt->alloc_buffer(bytes, &bx); !st) return fail("alloc x", st.to_string());
  if (Status st = rt->alloc_buffer(bytes, &by); !st) return fail("alloc y", st.to_string());
  const SlotRequest steps[] = {
      ops::stage_to_buffer({inputs, 0, bytes}, bx, 0),
      ops::stage_to_buffer({inputs, bytes, bytes}, by, 0),
      ops::axpy_f32(by, 0, bx, 0, static_cast<uint32_t>(elements), alpha),
      ops::buffer_to_staging(by, 0, results, 0, bytes),
  };
  const char* names[] = {"stage x", "stage y", "axpy", "copy back"};
  for (int i = 0; i < 4; ++i)
    if (std::string why = run(*rt, steps[i]); !why.empty()) return fail(names[i], why);

  // Check every result bit for bit against the host's fmaf.
  std::vector<float> got(elements);
  if (Status st = rt->read_region(results, 0, got.data(), bytes); !st)
    return fail("read_region", st.to_string());
  for (uint64_t i = 0; i < elements; ++i) {
    const float want = std::fmaf(alpha, x[i], y[i]);
    if (std::memcmp(&got[i], &want, sizeof want) != 0)
      return fail("check", "element " + std::to_string(i) + ": got " + std::to_string(got[i]) +
                               ", want " + std::to_string(want));
  }
  // A descriptor into the mutable results region is refused by policy.
  Completion refused;
  if (Status st = rt->call(ops::stage_to_buffer({results, 0, 4}, bx, 0), &refused); !st)
    return fail("policy call", st.to_string());
  if (refused.status != MR_STATUS_FAULT || refused.fault != MR_FAULT_REGION_POLICY)
    return fail("policy", "a descriptor into a mutable region was not refused");
  if (Status st = rt->shutdown(); !st) return fail("shutdown", st.to_string());
  std::printf("staging_job: %s backend, %llu elements staged, computed and checked\n",
              backend_name(rt->backend()), static_cast<unsigned long long>(elements));
  return 0;
}
