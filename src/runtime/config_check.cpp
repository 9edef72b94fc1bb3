// SPDX-License-Identifier: Apache-2.0
// Every Config bound (README, "Limits"), checked before anything is allocated.
#include <string>

#include "megaring/detail/checked.hpp"
#include "runtime/runtime_impl.hpp"

namespace megaring {

Status Runtime::Impl::check_config(const Config& config) {
  if (config.backend != Backend::kAuto && config.backend != Backend::kCuda &&
      config.backend != Backend::kCpu)
    return Status(Result::kInvalidArgument, "backend " +
                                                std::to_string(static_cast<int>(config.backend)) +
                                                " is not kAuto, kCuda or kCpu");
  if (config.device < 0)
    return Status(Result::kInvalidArgument,
                  "device must be a CUDA ordinal >= 0, got " + std::to_string(config.device));
  const uint32_t cap = config.ring_capacity;
  if (cap == 0 || cap > kMaxRingCapacity || (cap & (cap - 1)) != 0)
    return Status(Result::kInvalidArgument,
                  "ring_capacity must be a power of two in [1, 2^24], got " + std::to_string(cap));
  if (config.max_buffers == 0 || config.max_buffers > kMaxBuffers)
    return Status(Result::kInvalidArgument, "max_buffers must be in [1, 65535]");
  if (config.max_tenants == 0 || config.max_tenants > kMaxTenants)
    return Status(Result::kInvalidArgument, "max_tenants must be in [1, 65536]");
  if (config.max_regions == 0 || config.max_regions > kMaxRegions)
    return Status(Result::kInvalidArgument, "max_regions must be in [1, 65535]");
  if (config.staging_arena_bytes > kMaxStagingArenaBytes)
    return Status(Result::kInvalidArgument, "staging_arena_bytes must be at most 2^40");
  if (config.initial_ticket > MR_TICKET_MASK - (1ull << 40))
    return Status(Result::kInvalidArgument, "initial_ticket too close to the 2^56 ticket limit");
  if (config.poll_backoff_min_ns > config.poll_backoff_max_ns)
    return Status(Result::kInvalidArgument, "poll_backoff_min_ns > poll_backoff_max_ns");
  // The backoff doubles in 32 bits (detail::Backoff): past 2^31 it would wrap.
  if (config.poll_backoff_max_ns > kMaxPollBackoffNs)
    return Status(Result::kInvalidArgument, "poll_backoff_max_ns must be at most 1 s (" +
                                                std::to_string(kMaxPollBackoffNs) + " ns)");
  if (config.fetch_warps > kMaxFetchWarps)
    return Status(Result::kInvalidArgument, "fetch_warps must be in [0, " +
                                                std::to_string(kMaxFetchWarps) + "], got " +
                                                std::to_string(config.fetch_warps));
  if (config.producer_rings > MR_MAX_RINGS - 1)
    return Status(Result::kInvalidArgument, "producer_rings must be in [0, " +
                                                std::to_string(MR_MAX_RINGS - 1) + "], got " +
                                                std::to_string(config.producer_rings));
  const uint32_t tl = config.timeline_capacity;
  if (tl > kMaxTimelineCapacity || (tl & (tl - 1)) != 0 || (tl != 0 && tl < 2ull * cap))
    return Status(Result::kInvalidArgument,
                  "timeline_capacity must be 0, or a power of two in [2 * ring_capacity, 2^24]");
  // Timeline records are keyed by ring 0's tickets (mr_timeline_record).
  if (tl != 0 && config.producer_rings != 0)
    return Status(Result::kInvalidArgument, "timeline mode works with ring 0 alone: "
                                             "producer_rings must be 0");
  if (!detail::valid_timeout(config.abort_timeout)) return Status(Result::kInvalidArgument, "abort_timeout is negative");
  if (config.control_timeout <= Nanoseconds::zero() || config.control_timeout > kMaxControlTimeout)
    return Status(Result::kInvalidArgument, "control_timeout must be positive and at most an hour");
  return Status::ok();
}

}  // namespace megaring
