// SPDX-License-Identifier: Apache-2.0
// What the drain hands the layer above for each reaped ticket of ring 0
// (RuntimeInternals::drain), and what a publisher tags a slot with for it.
#pragma once

#include <cstdint>

namespace megaring::detail {

// Who published a slot, for the drain: stored with the slot and handed back
// with its drain record, never read by the runtime itself.
struct Origin {
  uint32_t tenant = 0;  // the publishing tenant's id; 0: a plain Runtime::publish
  bool kept = false;    // the tenant keeps its result for wait()
};

struct DrainRecord {
  uint64_t ticket;
  Origin origin;         // publish_tagged's origin; {} for a plain publish
  uint64_t result;       // valid if published with want_record (else 0, or the
                         // result if its record was written anyway)
  uint32_t slot_tenant;  // the tenant field the slot was published with
  uint16_t status;       // MR_STATUS_*
  uint16_t fault;        // MR_FAULT_*
};

// Test hooks of ring 0 (RuntimeInternals::set_reserve_hook / set_park_hook).
using ReserveHook = void (*)(void* arg, uint64_t first, uint32_t count);
using ParkHook = void (*)(void* arg, uint64_t ticket);

}  // namespace megaring::detail
