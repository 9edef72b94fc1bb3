// SPDX-License-Identifier: Apache-2.0
// C API: results, the last error and the version (megaring/megaring.h).
#include "capi/capi_internal.hpp"
#include "megaring/version.h"

namespace {
using megaring::Result;
// mr_result_t is megaring::Result, number for number.
#define MR_CAPI_SAME(c, cpp) \
  static_assert(static_cast<int>(c) == static_cast<int>(Result::cpp), #c " == Result::" #cpp)
MR_CAPI_SAME(MR_RESULT_SUCCESS, kSuccess);
MR_CAPI_SAME(MR_RESULT_INVALID_ARGUMENT, kInvalidArgument);
MR_CAPI_SAME(MR_RESULT_RING_FULL, kRingFull);
MR_CAPI_SAME(MR_RESULT_TIMEOUT, kTimeout);
MR_CAPI_SAME(MR_RESULT_NO_DEVICE, kNoDevice);
MR_CAPI_SAME(MR_RESULT_CUDA_ERROR, kCudaError);
MR_CAPI_SAME(MR_RESULT_SHUTDOWN, kShutdown);
MR_CAPI_SAME(MR_RESULT_ABORTED, kAborted);
MR_CAPI_SAME(MR_RESULT_OUT_OF_MEMORY, kOutOfMemory);
MR_CAPI_SAME(MR_RESULT_INTERNAL, kInternal);
MR_CAPI_SAME(MR_RESULT_IO_ERROR, kIoError);
MR_CAPI_SAME(MR_RESULT_REVOKED, kRevoked);
MR_CAPI_SAME(MR_RESULT_OPCODE_OUT_OF_RANGE, kOpcodeOutOfRange);
MR_CAPI_SAME(MR_RESULT_BACKPRESSURE, kBackpressure);
MR_CAPI_SAME(MR_RESULT_STAGING_BACKPRESSURE, kStagingBackpressure);
MR_CAPI_SAME(MR_RESULT_RESIDENT_BACKPRESSURE, kResidentBackpressure);
MR_CAPI_SAME(MR_RESULT_RESOURCE_UNDERFLOW, kResourceUnderflow);
MR_CAPI_SAME(MR_RESULT_QUIESCE_TIMEOUT, kQuiesceTimeout);
MR_CAPI_SAME(MR_RESULT_REGISTRY_FULL, kRegistryFull);
MR_CAPI_SAME(MR_RESULT_IN_USE, kInUse);
#undef MR_CAPI_SAME
static_assert(sizeof(mr_result_t) == 4, "mr_result_t is 32 bits wide");
}  // namespace

extern "C" {

const char* mr_result_string(mr_result_t result) {
  return megaring::result_string(static_cast<Result>(result));
}

const char* mr_last_error(void) { return megaring::capi::last_error_message(); }

void mr_last_error_values(uint64_t* value, uint64_t* limit) {
  megaring::capi::last_error_values(value, limit);
}

int mr_version(void) {
  const megaring::Version v = megaring::version();
  return v.major * 10000 + v.minor * 100 + v.patch;
}

const char* mr_version_string(void) { return megaring::version_string(); }

void mr_version_numbers(int* major, int* minor, int* patch) {
  const megaring::Version v = megaring::version();
  if (major != nullptr) *major = v.major;
  if (minor != nullptr) *minor = v.minor;
  if (patch != nullptr) *patch = v.patch;
}

}  // extern "C"
