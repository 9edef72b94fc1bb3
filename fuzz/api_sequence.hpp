// SPDX-License-Identifier: Apache-2.0
// The API-sequence driver: replays arbitrary bytes as a sequence of calls on
// a CPU-backend runtime and its tenant registry, with hostile arguments, and
// checks after every step what must always hold:
//   * each call returns a code that its documented contract allows for the
//     state a reference model tracks (quota fits, live handles, revocation,
//     the runtime's lifecycle);
//   * the quota invariants: for every tenant, in use <= quota, and in use
//     equals what its live objects hold (reservations, buffers, staging
//     regions: one resident handle and their 64-byte lines each);
//   * staging regions' bytes: what reads and descriptor slots return is
//     what was written, appended or moved;
//     outstanding = published - drained <= max_outstanding_slots;
//   * no completion is delivered twice, or to a tenant that did not publish it.
// At the end it closes everything and checks conservation: every ticket a
// tenant published was delivered exactly once, and every ticket the runtime
// handed out ended OK, FAULT, REVOKED or ABORTED exactly once.
//
// Used by the libFuzzer target (api_sequence_fuzz.cpp) and by the ctest
// property test (tests/test_quota_properties.cpp), which feeds it seeded
// random byte strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace megaring::fuzz {

// Returns "" when every check held, else a description of the first that
// did not (with the step number and the call).
std::string run_api_sequence(const uint8_t* data, size_t size);

}  // namespace megaring::fuzz
