// SPDX-License-Identifier: Apache-2.0
// A tenant's opcode grants (tenant.hpp, "Opcode grants") as the consumer's
// bitmap (slot_abi.h, mr_tenant_grants): checked against the window and the
// grant limits, once, for registration and for set_grants alike.
#pragma once

#include <cstdint>

#include "megaring/slot_abi.h"
#include "megaring/tenant.hpp"

namespace megaring::detail {

// The bitmap of `grants` for a window of `opcode_cap` local opcodes into
// *bitmap, and the grants as the query reports them (all, or the opcodes
// sorted without duplicates) into *normalized. kOpcodeOutOfRange for an
// opcode at or past opcode_cap (value() = opcode, limit() = cap),
// kInvalidArgument for one the bitmap cannot name on its own; the outputs
// are untouched then. May throw bad_alloc (the caller guards).
Status grant_bitmap(const OpcodeGrants& grants, uint32_t opcode_cap, mr_tenant_grants* bitmap,
                    OpcodeGrants* normalized);

}  // namespace megaring::detail
