// SPDX-License-Identifier: Apache-2.0
#include <megaring/megakernel.cuh>

#include "tenant_test_ops.hpp"

namespace megaring_test {
namespace {

struct TestOps {
  template <class Ctx>
  MR_HD static bool execute(Ctx& ctx, const mr_slot& s, megaring::Outcome& out) {
    switch (s.opcode) {
      case kOpGate: {
        if (ctx.rank() == 0) {
          auto* word = reinterpret_cast<uint32_t*>(s.args[0]);
          megaring::detail::Backoff backoff(64, 4096);
          // ACQUIRE (system): the host's opening store orders nothing we
          // read, but system scope is what makes a host store visible.
          while (megaring::detail::SysRef<uint32_t>(*word).load(cuda::std::memory_order_acquire) == 0) {
            if (megaring::detail::abort_requested(ctx.params())) {
              out.abandon();
              break;
            }
            backoff.pause();
          }
        }
        return true;
      }
      case kOpSpinUntilAbort: {
        auto* rounds_word = reinterpret_cast<uint64_t*>(s.args[0]);
        uint8_t* exits = ctx.resolve(s.args[2], 0, 2 * sizeof(uint64_t), 8, 0, out);
        if (exits == nullptr) return true;  // FAULT, the same in every thread
        auto* lowest_exit = reinterpret_cast<uint64_t*>(exits);
        for (uint64_t round = 1; round <= s.args[1]; ++round) {
          ctx.sync();  // a barrier every round: the block must leave together
          if (ctx.rank() == 0) {
            // Relaxed (system): progress the host polls; it orders nothing.
            megaring::detail::SysRef<uint64_t>(*rounds_word)
                .store(round, cuda::std::memory_order_relaxed);
          }
          if (ctx.abort_requested()) {
            // Every thread records the round it left on (relaxed: the host
            // reads the buffer once the consumer has stopped).
            megaring::detail::DevRef<uint64_t>(lowest_exit[0])
                .fetch_min(round, cuda::std::memory_order_relaxed);
            megaring::detail::DevRef<uint64_t>(lowest_exit[1])
                .fetch_max(round, cuda::std::memory_order_relaxed);
            out.abandon();
            return true;
          }
          megaring::detail::pause_ns(1000);
        }
        out.result = s.args[1];
        return true;
      }
      case kOpReport:
        out.result = s.args[0];
        out.status = static_cast<uint16_t>(s.args[1]);
        out.fault = static_cast<uint16_t>(s.args[2]);
        return true;
      case kOpReadGrants: {
        if (ctx.rank() == 0) {
          const megaring::ConsumerParams& p = ctx.params();
          const uint32_t index = s.tenant & 0xFFFFu;
          if (index >= p.max_tenants) {
            out.set_fault(MR_FAULT_BAD_ARGUMENT);
            return true;
          }
          mr_tenant_grants& g = p.tenant_grants[index];
          // Relaxed: table words, read whole; which grants they show is the test.
          const uint64_t w1 = megaring::detail::DevRef<uint64_t>(g.words[1]).load(cuda::std::memory_order_relaxed);
          megaring::detail::pause_ns(static_cast<uint32_t>(s.args[0]));
          const uint64_t w2 = megaring::detail::DevRef<uint64_t>(g.words[2]).load(cuda::std::memory_order_relaxed);
          out.result = (w1 & 0xFFFFFFFFu) | (w2 << 32);
        }
        return true;
      }
      case kOpIdentify:
        out.result = (static_cast<uint64_t>(s.tenant) << 32) | s.opcode;
        return true;
      default:
        return false;
    }
  }
};

}  // namespace

namespace {

// Two lines, one writer each: line 0 the gate (the host writes it), line 1
// kOpSpinUntilAbort's round count (the consumer writes it).
uint8_t* test_lines(bool cuda) {
  if (cuda) {
    static uint8_t* const pinned = [] {
      void* p = nullptr;
      return cudaHostAlloc(&p, 128, cudaHostAllocMapped | cudaHostAllocPortable) == cudaSuccess
                 ? static_cast<uint8_t*>(p)
                 : nullptr;
    }();
    return pinned;
  }
  alignas(64) static uint8_t host_lines[128];
  return host_lines;
}

}  // namespace

uint32_t* gate_word(bool cuda) { return reinterpret_cast<uint32_t*>(test_lines(cuda)); }

uint64_t* spin_rounds_word(bool cuda) {
  uint8_t* lines = test_lines(cuda);
  return lines == nullptr ? nullptr : reinterpret_cast<uint64_t*>(lines + 64);
}

void set_gate(bool cuda, uint32_t value) {
  // RELEASE (system): the gate slot acquires it on the consumer.
  megaring::detail::SysRef<uint32_t>(*gate_word(cuda)).store(value, cuda::std::memory_order_release);
}

const megaring::Consumer& tenant_test_consumer() {
  static const megaring::Consumer c = megaring::make_consumer<TestOps>("tenant-test");
  return c;
}

}  // namespace megaring_test
