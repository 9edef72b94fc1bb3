// SPDX-License-Identifier: Apache-2.0
// Shared by the binding's translation units: how a Status becomes a Python
// exception, how Python timeouts and slots become the C++ API's values.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

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

// The one conversion of a Python integer argument: an int (or anything
// with __index__) in T's range as T; anything else raises InvalidArgument
// naming the argument `what` (never nb::cast's RuntimeError std::bad_cast).
template <class T>
T to_int(nb::handle value, const char* what) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>, "an integer type");
  nb::object index = nb::steal(PyNumber_Index(value.ptr()));
  if (!index.is_valid()) {
    PyErr_Clear();
    raise_invalid(std::string(what) + " must be an int, not " + Py_TYPE(value.ptr())->tp_name);
  }
  T out{};
  if (!nb::try_cast<T>(index, out, false))
    raise_invalid(std::string(what) + " must be an int in [" +
                  std::to_string(std::numeric_limits<T>::min()) + ", " +
                  std::to_string(std::numeric_limits<T>::max()) + "]");
  return out;
}
// An iterable of opcodes (Tenant.set_grants, register(grants=...)), each
// through to_int.
std::vector<uint32_t> to_opcodes(nb::handle values, const char* what);

// None -> kForever; seconds (int or float) -> nanoseconds. Negative or NaN
// is refused here with InvalidArgument; anything past a century is forever
// (an int too large for a float as well).
Nanoseconds to_timeout(nb::handle seconds);

// The one shape of every blocking call: fn(slice) is the C++ call bounded
// by `slice`, run with the GIL released; while it ends only because its
// slice ran out (`slice_ran_out`: kTimeout by default) and `timeout`
// (kForever: never) has not passed, it is made again, with a check for
// signals in between, so that Ctrl-C raises within a long wait. Returns the
// last slice's status. Only for calls that a slice which ran out left as
// they were, or as the next slice goes on from (each caller says why).
using SliceRanOut = bool (*)(const Status&);
inline bool timed_out(const Status& st) { return st.code() == Result::kTimeout; }
Status call_sliced(Nanoseconds timeout, const std::function<Status(Nanoseconds)>& fn,
                   SliceRanOut slice_ran_out = timed_out);

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
