// SPDX-License-Identifier: Apache-2.0
// custom_opcode: your own opcodes in the megakernel.
//
// A handler table (MyOps) adds two opcodes above MR_OP_USER_BASE next to the
// built-ins; megaring::make_consumer<MyOps> instantiates the persistent
// megakernel and the CPU worker loop over it, and Runtime::create runs that
// consumer instead of the built-in one. The same handler code runs on the GPU
// (one block per slot, block-collective) and on the CPU backend (one worker
// thread is a block of one), so this sample checks its results on both.
//
//   custom_opcode [--backend auto|cuda|gpu|cpu]
//
// Exits 0 when every result matches the host reference, 1 on any mismatch,
// 77 when --backend cuda was asked for and there is no GPU (ctest: skipped).
#include <megaring/megakernel.cuh>  // make_consumer, handler context (nvcc only)

#include "cli.hpp"
#include <megaring/runtime.hpp>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------------------
// The opcodes. Arguments travel in the slot's five 64-bit args.
// ---------------------------------------------------------------------------

// y[i] = a * x[i] + y[i] for i in [0, n), single-precision FMA.
//   a0 = x buffer (float[n]), a1 = y buffer (float[n]), a2 = n,
//   a3 = bit pattern of the float a (low 32 bits)       result = n
constexpr uint32_t kOpSaxpy = MR_OP_USER_BASE + 0;

// Histogram of the values of src that lie in [0, 1) into `bins` equal-width
// bins; overwrites dst[0, bins).
//   a0 = src buffer (float[n]), a1 = n, a2 = dst buffer (uint32[bins]),
//   a3 = bins (1..kMaxBins)                       result = values in [0, 1)
constexpr uint32_t kOpHistogram = MR_OP_USER_BASE + 1;

constexpr uint32_t kMaxBins = 32;
constexpr uint64_t kMaxElems = uint64_t(1) << 32;  // keeps n * 4 far from overflow

// ---------------------------------------------------------------------------
// The handler table. Rules (megaring/handler.cuh, the handler contract):
//   * every thread of the block calls execute() with the same slot copy;
//   * branch only on the slot's contents and on results of collective calls
//     (resolve, block_sum), so every thread reaches the same sync points;
//   * ctx.resolve(handle, offset, bytes, align, which, out) is collective and
//     bounds-checked: it returns null (and sets the FAULT code) for a bad
//     handle, an out-of-range span or a misaligned address. `which` (0 or 1)
//     picks its scratch entry: use different ones for two live buffers;
//   * ctx.block_sum(v) is collective; the sum is valid in rank 0;
//   * thread (rank) 0's Outcome is the slot's completion.
// Return false for an opcode you do not own: the slot faults with
// MR_FAULT_UNKNOWN_OPCODE.
// ---------------------------------------------------------------------------
struct MyOps {
  template <class Ctx>
  MR_HD static bool execute(Ctx& ctx, const mr_slot& slot, megaring::Outcome& out) {
    switch (slot.opcode) {
      case kOpSaxpy: saxpy(ctx, slot, out); return true;
      case kOpHistogram: histogram(ctx, slot, out); return true;
      default: return false;
    }
  }

  template <class Ctx>
  MR_HD static void saxpy(Ctx& ctx, const mr_slot& s, megaring::Outcome& out) {
    const uint64_t n = s.args[2];
    if (n > kMaxElems) return out.set_fault(MR_FAULT_OUT_OF_BOUNDS);
    if (s.args[3] > 0xFFFFFFFFull) return out.set_fault(MR_FAULT_BAD_ARGUMENT);
    const auto* x = reinterpret_cast<const float*>(ctx.resolve(s.args[0], 0, n * 4, 4, 0, out));
    if (x == nullptr) return;  // every thread sees the same fault
    auto* y = reinterpret_cast<float*>(ctx.resolve(s.args[1], 0, n * 4, 4, 1, out));
    if (y == nullptr) return;
    const uint32_t bits = static_cast<uint32_t>(s.args[3]);
    float a;
    memcpy(&a, &bits, sizeof(a));
    // Block-strided loop: thread r handles r, r + size, r + 2*size, ...
    // Element i is read and written by one thread only, so x may even be y.
    for (uint64_t i = ctx.rank(); i < n; i += ctx.size()) y[i] = fmaf(a, x[i], y[i]);
    out.result = n;
  }

  template <class Ctx>
  MR_HD static void histogram(Ctx& ctx, const mr_slot& s, megaring::Outcome& out) {
    const uint64_t n = s.args[1];
    const uint64_t bins = s.args[3];
    if (bins == 0 || bins > kMaxBins) return out.set_fault(MR_FAULT_BAD_ARGUMENT);
    if (n > kMaxElems) return out.set_fault(MR_FAULT_OUT_OF_BOUNDS);
    const auto* src = reinterpret_cast<const float*>(ctx.resolve(s.args[0], 0, n * 4, 4, 0, out));
    if (src == nullptr) return;
    auto* dst = reinterpret_cast<uint32_t*>(ctx.resolve(s.args[2], 0, bins * 4, 4, 1, out));
    if (dst == nullptr) return;
    // Each thread counts its share of the elements ...
    uint32_t local[kMaxBins] = {};
    const float scale = static_cast<float>(bins);
    for (uint64_t i = ctx.rank(); i < n; i += ctx.size()) {
      const float v = src[i];
      if (v >= 0.0f && v < 1.0f) {  // NaN fails both tests
        uint32_t b = static_cast<uint32_t>(v * scale);
        if (b >= bins) b = static_cast<uint32_t>(bins - 1);  // v * scale rounded up to bins
        ++local[b];
      }
    }
    // ... then one block-wide sum per bin. `bins` comes from the slot, so
    // every thread makes the same number of collective calls.
    uint64_t in_range = 0;
    for (uint32_t b = 0; b < bins; ++b) {
      const uint64_t total = ctx.block_sum(local[b]);
      if (ctx.rank() == 0) {
        dst[b] = static_cast<uint32_t>(total);
        in_range += total;
      }
    }
    if (ctx.rank() == 0) out.result = in_range;
  }
};

// The consumer descriptor: a kernel instantiation (256 threads per block by
// default) plus the CPU worker loop, both over MyOps.
const megaring::Consumer& my_consumer() {
  static const megaring::Consumer consumer = megaring::make_consumer<MyOps>("custom");
  return consumer;
}

// ---------------------------------------------------------------------------
// Host side.
// ---------------------------------------------------------------------------
using namespace megaring;

int g_failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "custom_opcode: MISMATCH: %s\n", what);
    ++g_failures;
  }
}

uint64_t float_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

SlotRequest saxpy(BufferHandle x, BufferHandle y, uint64_t n, float a) {
  SlotRequest r;
  r.opcode = kOpSaxpy;
  r.args[0] = x;
  r.args[1] = y;
  r.args[2] = n;
  r.args[3] = float_bits(a);
  return r;
}

SlotRequest histogram(BufferHandle src, uint64_t n, BufferHandle dst, uint32_t bins) {
  SlotRequest r;
  r.opcode = kOpHistogram;
  r.args[0] = src;
  r.args[1] = n;
  r.args[2] = dst;
  r.args[3] = bins;
  return r;
}

// Deterministic values in [-0.25, 1.25): some fall outside the histogram range.
std::vector<float> make_values(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t state = seed;
  for (size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    v[i] = -0.25f + 1.5f * static_cast<float>(state >> 8) / static_cast<float>(1u << 24);
  }
  return v;
}

// Runs one slot and checks that it faulted with `fault`.
void expect_fault(Runtime& rt, const SlotRequest& request, uint16_t fault, const char* what) {
  Completion c;
  Status st = rt.call(request, &c);
  if (!st) {
    std::fprintf(stderr, "custom_opcode: %s: call failed: %s\n", what, st.to_string().c_str());
    ++g_failures;
    return;
  }
  if (c.status != MR_STATUS_FAULT || c.fault != fault) {
    std::fprintf(stderr, "custom_opcode: MISMATCH: %s: status=%u fault=%u, expected FAULT/%u\n",
                 what, c.status, c.fault, fault);
    ++g_failures;
  }
}

#define TRY(expr)                                                                      \
  do {                                                                                 \
    Status st_ = (expr);                                                               \
    if (!st_) {                                                                        \
      std::fprintf(stderr, "custom_opcode: %s: %s\n", #expr, st_.to_string().c_str()); \
      return 1;                                                                        \
    }                                                                                  \
  } while (0)

}  // namespace

int main(int argc, char** argv) {
  Config config;
  sample_cli::Cli cli(argc, argv, "[--backend auto|cuda|gpu|cpu]");
  while (cli.next()) {
    if (cli.flag() == "--backend") cli.backend(&config.backend);
    else cli.unknown();
  }
  if (cli.done()) return cli.exit_code();

  if (config.backend == Backend::kCuda && !cuda_device_available()) {
    std::printf("custom_opcode: SKIPPED: --backend cuda and no usable GPU\n");
    return 77;
  }
  std::unique_ptr<Runtime> rt;
  TRY(Runtime::create(config, my_consumer(), &rt));
  std::printf("custom_opcode: consumer \"%s\" on backend=%s device=\"%s\" units=%u\n",
              my_consumer().name, backend_name(rt->backend()), rt->device_name(),
              rt->consumer_units());

  // --- SAXPY: one call, then a batch of four on separate y buffers. -------
  constexpr uint64_t n = 10000;  // not a multiple of the block size
  const std::vector<float> x = make_values(n, 1);
  BufferHandle hx = 0;
  TRY(rt->alloc_buffer(n * 4, &hx));
  TRY(rt->write_buffer(hx, 0, x.data(), n * 4));

  constexpr int kBatch = 4;
  const float alphas[kBatch] = {2.0f, -0.5f, 3.14159f, 1e-3f};
  BufferHandle hy[kBatch] = {};
  std::vector<float> y_ref[kBatch];
  for (int k = 0; k < kBatch; ++k) {
    y_ref[k] = make_values(n, 100 + k);
    TRY(rt->alloc_buffer(n * 4, &hy[k]));
    TRY(rt->write_buffer(hy[k], 0, y_ref[k].data(), n * 4));
  }

  Completion c;
  TRY(rt->call(saxpy(hx, hy[0], n, alphas[0]), &c));
  check(c.ok() && c.result == n, "saxpy call completion");
  for (uint64_t i = 0; i < n; ++i) y_ref[0][i] = std::fma(alphas[0], x[i], y_ref[0][i]);

  SlotRequest batch[kBatch];
  for (int k = 0; k < kBatch; ++k) batch[k] = saxpy(hx, hy[k], n, alphas[k]);
  PublishOptions keep;
  keep.keep_result = true;  // we wait() on every ticket of the batch
  Ticket first;
  TRY(rt->publish_batch(batch, kBatch, &first, keep));
  for (int k = 0; k < kBatch; ++k) {
    TRY(rt->wait(Ticket{first.value + k, true}, &c));
    check(c.ok() && c.result == n, "saxpy batch completion");
    for (uint64_t i = 0; i < n; ++i) y_ref[k][i] = std::fma(alphas[k], x[i], y_ref[k][i]);
  }
  std::vector<float> y(n);
  for (int k = 0; k < kBatch; ++k) {
    TRY(rt->read_buffer(hy[k], 0, y.data(), n * 4));
    // Bit-exact: fmaf is correctly rounded on the GPU and on the host.
    check(std::memcmp(y.data(), y_ref[k].data(), n * 4) == 0, "saxpy result");
  }

  // --- Histogram ----------------------------------------------------------
  constexpr uint32_t kBins = 16;
  BufferHandle hbins = 0;
  TRY(rt->alloc_buffer(kBins * 4, &hbins));
  TRY(rt->call(histogram(hx, n, hbins, kBins), &c));
  uint32_t bins[kBins] = {}, bins_ref[kBins] = {};
  uint64_t in_range_ref = 0;
  for (float v : x) {
    if (v >= 0.0f && v < 1.0f) {
      uint32_t b = static_cast<uint32_t>(v * static_cast<float>(kBins));
      if (b >= kBins) b = kBins - 1;
      ++bins_ref[b];
      ++in_range_ref;
    }
  }
  TRY(rt->read_buffer(hbins, 0, bins, sizeof(bins)));
  check(c.ok() && c.result == in_range_ref, "histogram in-range count");
  check(std::memcmp(bins, bins_ref, sizeof(bins)) == 0, "histogram bins");
  check(in_range_ref > 0 && in_range_ref < n, "test data spans the range edges");

  // --- Faults: never executed, reported in the completion. ----------------
  SlotRequest unknown;
  unknown.opcode = MR_OP_USER_BASE + 7;  // MyOps::execute returns false
  expect_fault(*rt, unknown, MR_FAULT_UNKNOWN_OPCODE, "unknown user opcode");
  expect_fault(*rt, saxpy(hx, hy[0], n + 1, 1.0f), MR_FAULT_OUT_OF_BOUNDS, "saxpy past the end");
  expect_fault(*rt, saxpy(hx, 0xDEAD, n, 1.0f), MR_FAULT_BAD_HANDLE, "saxpy bad handle");
  expect_fault(*rt, histogram(hx, n, hbins, kMaxBins + 1), MR_FAULT_BAD_ARGUMENT,
               "histogram too many bins");
  // The built-ins still work in a custom consumer.
  TRY(rt->call(ops::nop(42), &c));
  check(c.ok() && c.result == 42, "built-in NOP");

  // stats() counts what lies below DONE_COUNT, which can trail the last
  // completion a wait() saw by a moment: wait for it first.
  TRY(rt->wait_done(Ticket{c.ticket, false}));
  const RuntimeStats stats = rt->stats();
  check(stats.faulted == 4 && stats.faults_by_code[MR_FAULT_UNKNOWN_OPCODE] == 1,
        "fault counters");
  check(stats.protocol_errors == 0, "protocol errors");
  std::printf("published=%" PRIu64 " ok=%" PRIu64 " faulted=%" PRIu64 " histogram in range=%" PRIu64
              "/%" PRIu64 "\n",
              stats.published, stats.completed_ok, stats.faulted, in_range_ref, n);
  TRY(rt->shutdown());

  if (g_failures != 0) {
    std::printf("custom_opcode: FAILED (%d mismatch(es))\n", g_failures);
    return 1;
  }
  std::printf("custom_opcode: OK\n");
  return 0;
}
