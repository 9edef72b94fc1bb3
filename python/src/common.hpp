// SPDX-License-Identifier: Apache-2.0
// Shared by the binding's translation units: how a Status becomes a Python
// exception, how Python timeouts and slots become the C++ API's values.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>

#include "megaring/runtime.hpp"

namespace megaring {
class TenantHandle;  // megaring/tenant.hpp
}  // namespace megaring

namespace megaring::python {

namespace nb = nanobind;

// Raises the megaring.Error subclass for st.code() (megaring/_errors.py
// builds it, so the hierarchy lives in one place). Call with the GIL held.
[[noreturn]] void raise_status(const Status& st);
inline void check(const Status& st) {
  if (!st) raise_status(st);
}
// InvalidArgument raised from the binding itself (a bad Python value).
[[noreturn]] void raise_invalid(const std::string& message);

// None -> kForever; seconds (int or float) -> nanoseconds. Negative or NaN
// is refused here with InvalidArgument; anything past a century is forever.
Nanoseconds to_timeout(nb::handle seconds);

// A buffer argument: a megaring.Buffer (its handle) or an int handle.
BufferHandle buffer_handle(nb::handle buffer);
// A region argument: a megaring.Region (its handle) or an int handle.
RegionHandle region_handle(nb::handle region);

// A slot argument: a megaring.Slot, or an opcode with up to MR_SLOT_ARGS
// integer arguments.
SlotRequest to_request(nb::handle op, nb::handle args);

void bind_types(nb::module_& m);    // Slot, Ticket, Completion, constants, ops
void bind_runtime(nb::module_& m);  // Runtime, Buffer
void bind_tenants(nb::module_& m);  // TenantRegistry, Tenant
void bind_regions(nb::module_& m);  // Region, StagingDescriptor
// Tenant.create_region (region_bindings.cpp).
nb::object tenant_create_region(const TenantHandle& tenant, nb::handle policy, uint64_t nbytes);

}  // namespace megaring::python
