// SPDX-License-Identifier: Apache-2.0
// quickstart: several host threads publish work to one resident consumer (the
// persistent megakernel on a GPU, or the CPU backend without one), then check
// that every slot ran exactly once with its result. With --rings own each
// thread publishes on a ring of its own (a Producer), else they share ring 0.
//
//   quickstart [--backend auto|cuda|gpu|cpu] [--threads N] [--slots-per-thread N]
//              [--rings shared|own]
#include <megaring/producer.hpp>
#include <megaring/runtime.hpp>

#include "cli.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace megaring;

static int fail(const char* what, const Status& st) {
  std::fprintf(stderr, "quickstart: %s: %s\n", what, st.to_string().c_str());
  return 1;
}

int main(int argc, char** argv) {
  Config config;
  uint64_t threads_arg = 4;
  uint64_t per_thread_arg = 25000;
  std::string rings = "shared";
  sample_cli::Cli cli(argc, argv,
                      "[--backend auto|cuda|gpu|cpu] [--threads 1..1024, 1..15 with own rings] "
                      "[--slots-per-thread 1..1000000000] [--rings shared|own]");
  while (cli.next()) {
    if (cli.flag() == "--backend") cli.backend(&config.backend);
    else if (cli.flag() == "--threads") cli.number(1, 1024, &threads_arg);
    else if (cli.flag() == "--slots-per-thread") cli.number(1, 1'000'000'000, &per_thread_arg);
    else if (cli.flag() == "--rings") cli.one_of({"shared", "own"}, &rings);
    else cli.unknown();
  }
  if (cli.done()) return cli.exit_code();
  const bool own_rings = rings == "own";
  if (own_rings && threads_arg > MR_MAX_RINGS - 1)
    return cli.refuse("--rings own takes at most " + std::to_string(MR_MAX_RINGS - 1) +
                      " threads, got " + std::to_string(threads_arg));
  const uint32_t threads = static_cast<uint32_t>(threads_arg);        // within the ranges above
  const uint32_t per_thread = static_cast<uint32_t>(per_thread_arg);
  if (own_rings) config.producer_rings = threads;

  std::unique_ptr<Runtime> rt;
  Status st = Runtime::create(config, &rt);
  if (!st) return fail("create", st);
  std::printf("megaring quickstart: backend=%s device=\"%s\" consumer units=%u ring=%u rings=%s\n",
              backend_name(rt->backend()), rt->device_name(), rt->consumer_units(), rt->capacity(),
              rings.c_str());
  // --rings own: a Producer a thread, each with a ring of its own.
  std::vector<std::unique_ptr<Producer>> own(own_rings ? threads : 0);
  for (auto& producer : own)
    if (!(st = rt->open_producer(&producer))) return fail("open_producer", st);

  // One 64-bit counter per thread; every thread adds 1..per_thread to its own.
  BufferHandle counters = 0;
  if (!(st = rt->alloc_buffer(8ull * threads, &counters))) return fail("alloc_buffer", st);

  std::vector<std::thread> producers;
  std::vector<int> errors(threads, 0);
  for (uint32_t t = 0; t < threads; ++t) {
    producers.emplace_back([&, t] {
      Producer* ring = own_rings ? own[t].get() : nullptr;
      SlotRequest batch[32];
      uint32_t n = 0;
      for (uint32_t i = 1; i <= per_thread; ++i) {
        batch[n++] = ops::atomic_add(counters, 8ull * t, i);
        if (n == 32 || i == per_thread) {
          Ticket first;
          const Status s = ring != nullptr ? ring->publish_batch(batch, n, &first)
                                           : rt->publish_batch(batch, n, &first);
          if (!s) ++errors[t];
          n = 0;
        }
      }
      // One kept NOP per thread: its echo comes back through wait().
      Completion c;
      Status s = ring != nullptr ? ring->call(ops::nop(1000 + t), &c) : rt->call(ops::nop(1000 + t), &c);
      if (!s || c.result != 1000 + t) ++errors[t];
      // Own rings: every one of this thread's slots completed, and its ring's
      // DONE_COUNT stops at its last ticket (wait() can return before
      // DONE_COUNT passes the ticket; wait_done() cannot).
      if (ring != nullptr &&
          (!ring->wait_done(Ticket{c.ticket, false}) || ring->done_count() != c.ticket + 1))
        ++errors[t];
    });
  }
  for (auto& p : producers) p.join();

  // A fence completes only after every earlier slot has (every ring's).
  Completion fence;
  if (!(st = rt->call(ops::fence(), &fence))) return fail("fence", st);

  std::vector<uint64_t> sums(threads);
  if (!(st = rt->read_buffer(counters, 0, sums.data(), 8ull * threads))) return fail("read_buffer", st);
  const uint64_t expected = uint64_t(per_thread) * (per_thread + 1) / 2;
  int bad = 0;
  for (uint32_t t = 0; t < threads; ++t) {
    if (sums[t] != expected || errors[t] != 0) ++bad;
  }
  const RuntimeStats stats = rt->stats();
  std::printf("ring 0: published=%" PRIu64 " DONE_COUNT=%" PRIu64 " ok=%" PRIu64 " faulted=%" PRIu64
              " aborted=%" PRIu64 "\n",
              stats.published, stats.done_count, stats.completed_ok, stats.faulted, stats.aborted);
  for (const auto& producer : own)  // stats() counts ring 0's alone
    std::printf("ring %u: DONE_COUNT=%" PRIu64 "\n", producer->ring(), producer->done_count());
  own.clear();  // every Producer before its runtime
  if (!(st = rt->shutdown())) return fail("shutdown", st);
  if (bad != 0 || stats.faulted != 0 || stats.aborted != 0 || stats.protocol_errors != 0) {
    std::printf("quickstart: FAILED (%d thread(s) with wrong sums or errors)\n", bad);
    return 1;
  }
  std::printf("quickstart: OK, %u threads x %u slots, every counter = %" PRIu64 "\n", threads,
              per_thread, expected);
  return 0;
}
