// SPDX-License-Identifier: Apache-2.0
// hang_dump: investigating a hang with Runtime::dump_state().
//
// A user opcode that waits on a gate holds its consumer unit on purpose, the
// way a handler stuck on a lock or on a peer would. The sample then does what
// an operator does when a wait times out:
//   1. wait() on the stuck ticket with a short timeout: kTimeout, and with
//      Config::dump_on_wait_timeout the runtime logs its state (captured here
//      through set_log_callback and printed);
//   2. dump_state() as a struct: which unit runs which ring, ticket, tenant
//      and opcode, each ring's DONE_COUNT held at the stuck ticket, and the
//      oldest outstanding ticket with its age; it prints what it reads there;
//   3. opens the gate and shows the runtime recovers: every slot (the stuck
//      one and the NOPs queued behind it) completes exactly once, OK.
//
//   hang_dump [--backend auto|cuda|gpu|cpu]
//
// Exits 0 when the dump named the stuck slot and everything completed, 1
// otherwise, 77 when --backend cuda was asked for and there is no GPU. The
// ctest tests (sample_hang_dump, sample_hang_dump_gpu) check the lines
// "stuck: unit ... ticket ... opcode 0x00000100" and "oldest: ring 0 ticket ...".
#include <megaring/megakernel.cuh>  // make_consumer, handler context (nvcc only)

#include "cli.hpp"
#include <megaring/log.hpp>
#include <megaring/runtime.hpp>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// The gate: a word in host memory that the host opens with one release
// store. Its address is the sample's own, set before the runtime starts (a
// slot never carries a pointer the handler would have to trust). On the GPU
// it is pinned, mapped host memory, so the kernel sees the host's store.
constexpr uint32_t kOpGate = MR_OP_USER_BASE + 0;  // result: args[0]
uint32_t* g_gate_host = nullptr;
__device__ uint32_t* g_gate_device = nullptr;

struct GateOps {
  template <class Ctx>
  MR_HD static bool execute(Ctx& ctx, const mr_slot& slot, megaring::Outcome& out) {
    if (slot.opcode != kOpGate) return false;  // -> FAULT / UNKNOWN_OPCODE
#if defined(__CUDA_ARCH__)
    uint32_t* gate = g_gate_device;
#else
    uint32_t* gate = g_gate_host;
#endif
    // Thread 0 alone waits (its Outcome is the completion; the block meets
    // again after execute). It stays abortable, as a long handler must.
    if (ctx.rank() == 0) {
      megaring::detail::Backoff backoff(64, 4096);
      // ACQUIRE (system): pairs with open_gate()'s release store; system
      // scope is what makes a host store visible to the GPU.
      while (megaring::detail::SysRef<uint32_t>(*gate).load(cuda::std::memory_order_acquire) == 0) {
        if (megaring::detail::abort_requested(ctx.params())) {
          out.abandon();
          return true;
        }
        backoff.pause();
      }
      out.result = slot.args[0];
    }
    return true;
  }
};

const megaring::Consumer& gate_consumer() {
  static const megaring::Consumer c = megaring::make_consumer<GateOps>("hang-dump");
  return c;
}

using namespace megaring;

bool set_up_gate(Backend backend) {
  if (backend == Backend::kCuda) {
    void* p = nullptr;
    if (cudaHostAlloc(&p, 64, cudaHostAllocMapped | cudaHostAllocPortable) != cudaSuccess) return false;
    g_gate_host = static_cast<uint32_t*>(p);  // unified addressing: the same address on the GPU
    *g_gate_host = 0;
    return cudaMemcpyToSymbol(g_gate_device, &g_gate_host, sizeof g_gate_host) == cudaSuccess;
  }
  alignas(64) static uint32_t word = 0;
  g_gate_host = &word;
  return true;
}

void open_gate() {
  // RELEASE (system): the gate slot's acquire load sees it.
  detail::SysRef<uint32_t>(*g_gate_host).store(1, cuda::std::memory_order_release);
}

// The runtime's log lines, captured (the callback must not call megaring).
struct LogCapture {
  std::mutex mutex;
  std::vector<std::string> lines;
  static void callback(LogLevel, const char* line, void* user) {
    auto* self = static_cast<LogCapture*>(user);
    std::lock_guard<std::mutex> lock(self->mutex);
    self->lines.emplace_back(line);
  }
};

int g_failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "hang_dump: FAILED: %s\n", what);
    ++g_failures;
  }
}

#define TRY(expr)                                                                  \
  do {                                                                             \
    Status st_ = (expr);                                                           \
    if (!st_) {                                                                    \
      std::fprintf(stderr, "hang_dump: %s: %s\n", #expr, st_.to_string().c_str()); \
      return 1;                                                                    \
    }                                                                              \
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
    std::printf("hang_dump: SKIPPED: --backend cuda and no usable GPU\n");
    return 77;
  }
  if (config.backend == Backend::kAuto)
    config.backend = cuda_device_available() ? Backend::kCuda : Backend::kCpu;
  if (!set_up_gate(config.backend)) {
    std::fprintf(stderr, "hang_dump: cannot allocate the gate word\n");
    return 1;
  }

  config.workers = 2;                  // one unit gets stuck, one stays free
  config.dump_on_wait_timeout = true;  // a timed-out wait logs dump_state()
  LogCapture log;
  set_log_callback(LogLevel::kWarn, &LogCapture::callback, &log);
  std::unique_ptr<Runtime> rt;
  TRY(Runtime::create(config, gate_consumer(), &rt));
  std::printf("hang_dump: backend=%s units=%u\n", backend_name(rt->backend()), rt->consumer_units());

  // The hang: a gate slot, then NOPs behind it on the same ring. The NOPs
  // may run on the free unit, but ring 0's DONE_COUNT stops at the gate.
  PublishOptions keep;
  keep.keep_result = true;
  SlotRequest gate_request;
  gate_request.opcode = kOpGate;
  gate_request.args[0] = 4242;
  Ticket gate;
  TRY(rt->publish(gate_request, &gate, keep));
  constexpr int kNops = 8;
  Ticket nops[kNops];
  for (int i = 0; i < kNops; ++i) TRY(rt->publish(ops::nop(100 + i), &nops[i], keep));

  // 1. The symptom: a wait that times out (the gate is closed, so it must).
  Completion c;
  const Status waited = rt->wait(gate, &c, std::chrono::milliseconds(200));
  std::printf("hang_dump: wait(ticket %" PRIu64 ", 200 ms): %s\n", gate.value,
              waited.to_string().c_str());
  check(waited.code() == Result::kTimeout, "the wait on the gate slot timed out");
  set_log_callback(LogLevel::kNone, nullptr);  // returns once no callback runs
  bool logged_dump = false;
  for (const std::string& line : log.lines) {
    std::printf("hang_dump: log: %s\n", line.c_str());
    logged_dump |= line.rfind("dump: ", 0) == 0;
  }
  check(logged_dump, "the timed-out wait logged the dump (dump_on_wait_timeout)");

  // 2. The dump, read as an operator would, without knowing which slot is
  // stuck. The oldest outstanding ticket is where a ring's DONE_COUNT
  // stopped; the unit whose ticket that is holds it. (Units that finished
  // a later slot also read "running" until DONE_COUNT passes their ticket.)
  // A unit notes its slot as it takes it, which on a loaded machine may
  // come after the wait timed out: look again until it shows (bounded; the
  // gate stays closed, so once it shows it stays).
  StateDump dump;
  const UnitView* stuck = nullptr;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    TRY(rt->dump_state(&dump));
    for (const UnitView& u : dump.units)
      if (dump.oldest.any && u.busy && u.ring == dump.oldest.ring && u.ticket == dump.oldest.ticket)
        stuck = &u;
    if (stuck != nullptr || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("hang_dump: dump_state():\n%s", format_state_dump(dump).c_str());
  check(stuck != nullptr, "a unit runs the oldest outstanding ticket");
  if (stuck != nullptr) {
    // What it runs: the opcode as published (a tenant's slot would show its
    // tenant and its global opcode).
    std::printf("hang_dump: stuck: unit %u runs ring %u ticket %" PRIu64 " tenant %u opcode 0x%08x\n",
                stuck->unit, stuck->ring, stuck->ticket, stuck->tenant, stuck->opcode);
    check(stuck->opcode == kOpGate, "the stuck unit's opcode is the gate's");
  }
  // The age is a lower bound (kObserved: since a look first saw DONE_COUNT
  // there) unless timeline mode records publish times.
  const OldestOutstanding& oldest = dump.oldest;
  std::printf("hang_dump: oldest: ring %u ticket %" PRIu64 " outstanding for >= %.1f ms (%s)\n",
              oldest.ring, oldest.ticket, static_cast<double>(oldest.age_ns) / 1e6,
              age_source_name(oldest.age_source));
  check(oldest.any && oldest.ring == 0 && oldest.ticket == gate.value,
        "the oldest outstanding ticket is the gate's");
  check(!dump.rings.empty() && dump.rings[0].done_count == gate.value &&
            dump.rings[0].published_end == nops[kNops - 1].value + 1,
        "ring 0's DONE_COUNT is held at the gate, with the NOPs published behind it");

  // 3. Release the hang; everything completes, each slot once.
  open_gate();
  TRY(rt->wait(gate, &c, std::chrono::seconds(60)));
  check(c.ok() && c.result == 4242, "the gate slot completed OK with its result");
  for (int i = 0; i < kNops; ++i) {
    TRY(rt->wait(nops[i], &c, std::chrono::seconds(60)));
    check(c.ok() && c.result == uint64_t(100 + i), "a NOP behind the gate completed OK");
  }
  // A second wait on a ticket already read finds no record: completed once.
  check(rt->wait(gate, &c, std::chrono::milliseconds(0)).code() != Result::kSuccess,
        "the gate slot's completion is read once");
  const RuntimeStats stats = rt->stats();
  check(stats.published == kNops + 1 && stats.reaped == kNops + 1 &&
            stats.completed_ok == kNops + 1 && stats.protocol_errors == 0,
        "published = reaped = completed OK, no protocol error");
  TRY(rt->dump_state(&dump));
  check(!dump.oldest.any, "nothing outstanding after the gate opened");
  std::printf("hang_dump: recovered: %" PRIu64 " slots published, %" PRIu64
              " completed OK, outstanding now: %s\n",
              stats.published, stats.completed_ok, dump.oldest.any ? "some" : "none");
  TRY(rt->shutdown());
  if (g_failures != 0) {
    std::fprintf(stderr, "hang_dump: %d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("hang_dump: PASS\n");
  return 0;
}
