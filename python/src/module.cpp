// SPDX-License-Identifier: Apache-2.0
// megaring._core: the nanobind extension. This file holds the module, the
// error translation and the value types (Slot, Ticket, Completion, ops);
// runtime_bindings.cpp and tenant_bindings.cpp the classes with state.
#include <nanobind/stl/string.h>

#include <cmath>
#include <string>
#include <vector>

#include "common.hpp"
#include "megaring/version.h"

namespace megaring::python {

void raise_status(const Status& st) {
  nb::object errors = nb::module_::import_("megaring._errors");
  nb::object exc = errors.attr("_from_status")(static_cast<int>(st.code()), st.message(),
                                               st.value(), st.limit());
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw nb::python_error();
}

void raise_invalid(const std::string& message) {
  raise_status(Status(Result::kInvalidArgument, message));
}

Nanoseconds to_timeout(nb::handle seconds) {
  if (seconds.is_none()) return kForever;
  constexpr double kCentury = 3.0e9;  // seconds: never expires (runtime.hpp)
  constexpr const char* kWhat = "timeout must be None or a non-negative number of seconds";
  double s = 0;
  if (PyLong_Check(seconds.ptr())) {
    // An int past a float's range is still a number of seconds: its sign decides.
    int64_t whole = 0;
    if (!nb::try_cast<int64_t>(seconds, whole, false)) {
      if (PyObject_RichCompareBool(seconds.ptr(), nb::int_(0).ptr(), Py_LT) == 1) raise_invalid(kWhat);
      PyErr_Clear();
      return kForever;
    }
    s = static_cast<double>(whole);
  } else if (!nb::try_cast<double>(seconds, s, true)) {  // a float, or anything with __float__
    raise_invalid(std::string(kWhat) + ", not " + Py_TYPE(seconds.ptr())->tp_name);
  }
  if (std::isnan(s) || s < 0) raise_invalid(kWhat);
  if (s > kCentury) return kForever;
  return Nanoseconds(static_cast<int64_t>(s * 1e9));
}

BufferHandle buffer_handle(nb::handle buffer) {
  nb::object handle = nb::hasattr(buffer, "handle") ? buffer.attr("handle") : nb::borrow(buffer);
  if (!nb::isinstance<nb::int_>(handle)) raise_invalid("expected a megaring.Buffer or an int handle");
  return to_int<BufferHandle>(handle, "buffer handle");
}

RegionHandle region_handle(nb::handle region) {
  nb::object handle = nb::hasattr(region, "handle") ? region.attr("handle") : nb::borrow(region);
  if (!nb::isinstance<nb::int_>(handle)) raise_invalid("expected a megaring.Region or an int handle");
  return to_int<RegionHandle>(handle, "region handle");
}

std::vector<uint32_t> to_opcodes(nb::handle values, const char* what) {
  nb::object iterator = nb::steal(PyObject_GetIter(values.ptr()));
  if (!iterator.is_valid()) {
    PyErr_Clear();
    raise_invalid(std::string(what) + " must be None or an iterable of opcodes");
  }
  const std::string element = std::string("each of ") + what;
  std::vector<uint32_t> opcodes;
  while (nb::object op = nb::steal(PyIter_Next(iterator.ptr())))
    opcodes.push_back(to_int<uint32_t>(op, element.c_str()));
  if (PyErr_Occurred()) throw nb::python_error();  // the iteration itself failed
  return opcodes;
}

// Slot arguments are 64-bit words: a Python int in [0, 2^64) or a negative
// one down to -2^63 (stored two's complement, as C would).
// Anything with __index__ counts (a Buffer gives its handle).
static uint64_t slot_word(nb::handle arg) {
  nb::object value = nb::steal(PyNumber_Index(arg.ptr()));
  if (!value.is_valid()) {
    PyErr_Clear();
    raise_invalid("slot arguments must be ints (or have __index__, as a Buffer does)");
  }
  uint64_t word = 0;
  if (nb::try_cast<uint64_t>(value, word, false)) return word;
  int64_t signed_word = 0;
  if (nb::try_cast<int64_t>(value, signed_word, false)) return static_cast<uint64_t>(signed_word);
  raise_invalid("slot argument out of the 64-bit range");
}

SlotRequest to_request(nb::handle op, nb::handle args) {
  SlotRequest request;
  if (nb::isinstance<SlotRequest>(op)) {
    if (nb::len(args) != 0) raise_invalid("a Slot takes no further arguments");
    return nb::cast<SlotRequest>(op);
  }
  uint32_t opcode = 0;
  if (!nb::isinstance<nb::int_>(op) || !nb::try_cast<uint32_t>(op, opcode, false))
    raise_invalid("op must be a megaring.Slot or an opcode in [0, 2^32)");
  request.opcode = opcode;
  if (nb::len(args) > MR_SLOT_ARGS)
    raise_invalid("a slot has at most " + std::to_string(MR_SLOT_ARGS) + " arguments");
  size_t i = 0;
  for (nb::handle a : args) request.args[i++] = slot_word(a);
  return request;
}

static nb::tuple slot_args(const SlotRequest& r) {
  nb::list out;
  for (uint64_t a : r.args) out.append(a);
  return nb::tuple(out);
}

static void bind_ops(nb::module_& m) {
  nb::module_ ops = m.def_submodule("ops", "Builders of the built-in opcodes' slots (megaring::ops).");
  ops.def("nop", [](uint64_t echo) { return megaring::ops::nop(echo); }, nb::arg("echo") = 0);
  ops.def("store_u32", [](nb::handle b, uint64_t off, uint32_t v) {
    return megaring::ops::store_u32(buffer_handle(b), off, v);
  }, nb::arg("buffer"), nb::arg("offset"), nb::arg("value"));
  ops.def("atomic_add", [](nb::handle b, uint64_t off, uint64_t delta) {
    return megaring::ops::atomic_add(buffer_handle(b), off, delta);
  }, nb::arg("buffer"), nb::arg("offset"), nb::arg("delta"));
  ops.def("fill", [](nb::handle b, uint64_t off, uint64_t bytes, uint8_t value) {
    return megaring::ops::fill(buffer_handle(b), off, bytes, value);
  }, nb::arg("buffer"), nb::arg("offset"), nb::arg("nbytes"), nb::arg("value"));
  ops.def("copy", [](nb::handle dst, uint64_t dst_off, nb::handle src, uint64_t src_off,
                     uint64_t bytes) {
    return megaring::ops::copy(buffer_handle(dst), dst_off, buffer_handle(src), src_off, bytes);
  }, nb::arg("dst"), nb::arg("dst_offset"), nb::arg("src"), nb::arg("src_offset"), nb::arg("nbytes"));
  ops.def("reduce_add_u32", [](nb::handle b, uint64_t off, uint64_t count) {
    return megaring::ops::reduce_add_u32(buffer_handle(b), off, count);
  }, nb::arg("buffer"), nb::arg("offset"), nb::arg("count"));
  ops.def("fence", &megaring::ops::fence);
  ops.def("delay_ns", &megaring::ops::delay_ns, nb::arg("ns"));
  ops.def("stage_to_buffer", [](const StagingDescriptor& source, nb::handle dst, uint64_t dst_off) {
    return megaring::ops::stage_to_buffer(source, buffer_handle(dst), dst_off);
  }, nb::arg("source"), nb::arg("dst"), nb::arg("dst_offset") = 0,
     "A descriptor's bytes (Region.descriptor()) into a buffer.");
  ops.def("buffer_to_staging", [](nb::handle src, uint64_t src_off, nb::handle region,
                                  uint64_t region_off, uint64_t bytes) {
    return megaring::ops::buffer_to_staging(buffer_handle(src), src_off, region_handle(region),
                                            region_off, bytes);
  }, nb::arg("src"), nb::arg("src_offset"), nb::arg("region"), nb::arg("region_offset"),
     nb::arg("nbytes"), "A buffer range into a mutable region (results for the host).");
  ops.def("axpy_f32", [](nb::handle y, uint64_t y_off, nb::handle x, uint64_t x_off,
                         uint32_t count, float alpha) {
    return megaring::ops::axpy_f32(buffer_handle(y), y_off, buffer_handle(x), x_off, count, alpha);
  }, nb::arg("y"), nb::arg("y_offset"), nb::arg("x"), nb::arg("x_offset"), nb::arg("count"),
     nb::arg("alpha"));
}

void bind_types(nb::module_& m) {
  nb::class_<SlotRequest>(m, "Slot", "One 64-byte slot to publish: an opcode and five 64-bit words.")
      .def("__init__", [](SlotRequest* self, nb::handle opcode, nb::args args, uint32_t tenant,
                          uint32_t flags) {
        SlotRequest r = to_request(opcode, args);
        r.tenant = tenant;
        r.flags = flags;
        new (self) SlotRequest(r);
      }, nb::arg("opcode"), nb::arg("args"), nb::kw_only(), nb::arg("tenant") = 0,
         nb::arg("flags") = 0)
      .def_rw("opcode", &SlotRequest::opcode)
      .def_rw("tenant", &SlotRequest::tenant)
      .def_rw("flags", &SlotRequest::flags)
      .def_prop_ro("args", &slot_args)
      .def("__repr__", [](const SlotRequest& r) {
        std::string s = "Slot(opcode=" + std::to_string(r.opcode) + ", args=(";
        for (unsigned i = 0; i < MR_SLOT_ARGS; ++i) s += (i ? ", " : "") + std::to_string(r.args[i]);
        return s + "), tenant=" + std::to_string(r.tenant) + ")";
      });

  nb::class_<Ticket>(m, "Ticket", "A published slot; wait() on it if it was kept.")
      .def_ro("value", &Ticket::value)
      .def_ro("kept", &Ticket::kept)
      .def("__int__", [](const Ticket& t) { return t.value; })
      .def("__repr__", [](const Ticket& t) {
        return "Ticket(" + std::to_string(t.value) + (t.kept ? ", kept)" : ")");
      });

  nb::class_<Completion>(m, "Completion", "How a slot completed: status, fault code and result.")
      .def_ro("ticket", &Completion::ticket)
      .def_ro("result", &Completion::result)
      .def_ro("status", &Completion::status)
      .def_ro("fault", &Completion::fault)
      .def_prop_ro("ok", &Completion::ok)
      .def("__repr__", [](const Completion& c) {
        return "Completion(ticket=" + std::to_string(c.ticket) + ", result=" +
               std::to_string(c.result) + ", status=" + std::to_string(c.status) +
               ", fault=" + std::to_string(c.fault) + ")";
      });

  m.def("result_string", [](int code) { return std::string(result_string(static_cast<Result>(code))); },
        nb::arg("code"));
  m.def("cuda_device_available", &cuda_device_available);
  m.attr("VERSION") = MEGARING_VERSION_STRING;
  m.attr("SLOT_ARGS") = MR_SLOT_ARGS;
#define MR_PY_CONST(name) m.attr(#name) = MR_##name
  MR_PY_CONST(OP_INVALID); MR_PY_CONST(OP_NOP); MR_PY_CONST(OP_STORE_U32);
  MR_PY_CONST(OP_ATOMIC_ADD); MR_PY_CONST(OP_FILL); MR_PY_CONST(OP_COPY);
  MR_PY_CONST(OP_REDUCE_ADD_U32); MR_PY_CONST(OP_FENCE); MR_PY_CONST(OP_DELAY_NS);
  MR_PY_CONST(OP_READ_CLOCK); MR_PY_CONST(OP_AXPY_F32); MR_PY_CONST(OP_USER_BASE);
  MR_PY_CONST(OP_STAGE_TO_BUFFER); MR_PY_CONST(OP_BUFFER_TO_STAGING);
  MR_PY_CONST(REGION_IMMUTABLE); MR_PY_CONST(REGION_APPEND_ONLY); MR_PY_CONST(REGION_MUTABLE);
  MR_PY_CONST(STATUS_OK); MR_PY_CONST(STATUS_FAULT); MR_PY_CONST(STATUS_ABORTED);
  MR_PY_CONST(STATUS_REVOKED); MR_PY_CONST(FAULT_CODE_COUNT);
#undef MR_PY_CONST
  bind_ops(m);
}

}  // namespace megaring::python

NB_MODULE(_core, m) {
  m.doc() = "megaring's C++ runtime (see the megaring package for the documented API)";
  megaring::python::bind_types(m);
  megaring::python::bind_regions(m);
  megaring::python::bind_runtime(m);
  megaring::python::bind_tenants(m);
}
