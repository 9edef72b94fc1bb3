// SPDX-License-Identifier: Apache-2.0
// megaring.Region and megaring.StagingDescriptor: staging regions of a
// runtime (Runtime.create_region) or of a tenant (Tenant.create_region),
// written and read from bytes / buffer-protocol objects, and descriptors
// that name their bytes for ops.stage_to_buffer. A region's memory is the
// runtime's staging arena, so the binding holds no memory of its own: a
// Region is a handle and the owner whose calls it makes.
#include <nanobind/stl/string.h>

#include <string>

#include "megaring/tenant.hpp"
#include "runtime_core.hpp"

namespace megaring::python {
namespace {

// A contiguous Py_buffer of `obj` (writable if asked), released on scope exit.
class BytesView {
 public:
  BytesView(nb::handle obj, bool writable) {
    const int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj.ptr(), &view_, flags) != 0) {
      PyErr_Clear();
      raise_invalid(writable ? "expected a writable, contiguous buffer-protocol object"
                             : "expected a contiguous buffer-protocol object (bytes, numpy array...)");
    }
  }
  ~BytesView() { PyBuffer_Release(&view_); }
  BytesView(const BytesView&) = delete;
  BytesView& operator=(const BytesView&) = delete;
  void* data() const { return view_.buf; }
  uint64_t size() const { return static_cast<uint64_t>(view_.len); }

 private:
  Py_buffer view_{};
};

const char* policy_name(RegionPolicy p) {
  switch (p) {
    case RegionPolicy::kImmutable: return "immutable";
    case RegionPolicy::kAppendOnly: return "append_only";
    case RegionPolicy::kMutable: return "mutable";
  }
  return "unknown";
}

class PyRegion {
 public:
  PyRegion(PyRuntime* runtime, TenantHandle tenant, RegionPolicy policy, RegionHandle handle,
           uint64_t nbytes)
      : runtime_(runtime), tenant_(std::move(tenant)), policy_(policy), handle_(handle),
        nbytes_(nbytes) {}

  RegionHandle handle() const { return handle_; }
  uint64_t nbytes() const { return nbytes_; }
  RegionPolicy policy() const { return policy_; }
  bool live() const { return live_; }

  // Runs fn(owner) with the GIL released: the runtime's call, or the tenant's.
  template <class Fn>
  void call(Fn&& fn) {
    if (!live_) raise_invalid("region " + std::to_string(handle_) + " was freed");
    Status st;
    {
      nb::gil_scoped_release release;
      st = runtime_ != nullptr ? fn(runtime_->runtime()) : fn(tenant_);
    }
    check(st);
  }
  // [offset, offset + nbytes) within the region, checked without overflow;
  // nbytes None = to the end.
  uint64_t length(uint64_t offset, nb::handle nbytes) const {
    if (offset > nbytes_) raise_invalid("offset past the end of the region");
    if (nbytes.is_none()) return nbytes_ - offset;
    const uint64_t n = to_int<uint64_t>(nbytes, "nbytes");
    if (n > nbytes_ - offset) raise_invalid("range past the end of the region");
    return n;
  }
  void retire() { live_ = false; }

 private:
  PyRuntime* runtime_;  // null for a tenant's region; kept alive by the Python Region
  TenantHandle tenant_;
  RegionPolicy policy_;
  RegionHandle handle_;
  uint64_t nbytes_;
  bool live_ = true;
};

RegionPolicy parse_policy(nb::handle policy) {
  if (nb::isinstance<nb::str>(policy)) {
    const std::string name = nb::cast<std::string>(policy);
    if (name == "immutable") return RegionPolicy::kImmutable;
    if (name == "append_only") return RegionPolicy::kAppendOnly;
    if (name == "mutable") return RegionPolicy::kMutable;
  } else if (nb::isinstance<nb::int_>(policy)) {
    uint32_t value = 0;
    if (nb::try_cast<uint32_t>(policy, value, false) &&
        (value == MR_REGION_IMMUTABLE || value == MR_REGION_APPEND_ONLY || value == MR_REGION_MUTABLE))
      return static_cast<RegionPolicy>(value);
  }
  raise_invalid("policy must be 'immutable', 'append_only', 'mutable' or a REGION_* constant");
}

template <class Owner>
PyRegion create_region(Owner& owner, PyRuntime* runtime, const TenantHandle& tenant,
                       nb::handle policy_arg, uint64_t nbytes) {
  const RegionPolicy policy = parse_policy(policy_arg);
  RegionHandle handle = 0;
  Status st;
  {
    nb::gil_scoped_release release;
    st = owner.create_region(policy, nbytes, &handle);
  }
  check(st);
  return PyRegion(runtime, tenant, policy, handle, nbytes);
}

}  // namespace

void bind_regions(nb::module_& m) {
  nb::class_<StagingDescriptor>(m, "StagingDescriptor",
                                "Names staged bytes (a region, an offset, a length) without a copy.")
      .def("__init__", [](StagingDescriptor* self, nb::handle region, uint64_t offset, uint64_t nbytes) {
        new (self) StagingDescriptor{region_handle(region), offset, nbytes};
      }, nb::arg("region"), nb::arg("offset"), nb::arg("nbytes"))
      .def_rw("region", &StagingDescriptor::region)
      .def_rw("offset", &StagingDescriptor::offset)
      .def_rw("nbytes", &StagingDescriptor::bytes)
      .def("__repr__", [](const StagingDescriptor& d) {
        return "StagingDescriptor(region=" + std::to_string(d.region) + ", offset=" +
               std::to_string(d.offset) + ", nbytes=" + std::to_string(d.bytes) + ")";
      });

  nb::class_<PyRegion>(m, "Region", "Staging memory (host memory the consumer reads or writes), by handle.")
      .def_prop_ro("handle", &PyRegion::handle)
      .def_prop_ro("nbytes", &PyRegion::nbytes)
      .def_prop_ro("policy", [](const PyRegion& r) { return std::string(policy_name(r.policy())); })
      .def_prop_ro("live", &PyRegion::live)
      .def("__len__", &PyRegion::nbytes)
      .def("__index__", &PyRegion::handle)
      .def("write", [](PyRegion& r, nb::handle data, uint64_t offset) {
        BytesView view(data, false);
        r.length(offset, nb::int_(view.size()));
        r.call([&](auto& o) { return o.write_region(r.handle(), offset, view.data(), view.size()); });
      }, nb::arg("data"), nb::arg("offset") = 0,
         "Immutable regions before seal(), mutable ones anytime.")
      .def("seal", [](PyRegion& r) { r.call([&](auto& o) { return o.seal_region(r.handle()); }); },
           "Immutable regions: descriptors read the bytes from now on; no write after.")
      .def("append", [](PyRegion& r, nb::handle data) {
        BytesView view(data, false);
        uint64_t at = 0;
        r.call([&](auto& o) { return o.append_region(r.handle(), view.data(), view.size(), &at); });
        return at;
      }, nb::arg("data"), "Append-only regions: adds at the committed end; returns where.")
      .def("read", [](PyRegion& r, uint64_t offset, nb::handle nbytes) {
        const uint64_t n = r.length(offset, nbytes);
        nb::bytes out(nullptr, n);
        r.call([&](auto& o) {
          return o.read_region(r.handle(), offset, const_cast<char*>(out.c_str()), n);
        });
        return out;
      }, nb::arg("offset") = 0, nb::arg("nbytes").none() = nb::none(),
         "Copies bytes out (results: after the slots that write them completed).")
      .def("read_into", [](PyRegion& r, nb::handle out, uint64_t offset) {
        BytesView view(out, true);
        r.length(offset, nb::int_(view.size()));
        r.call([&](auto& o) { return o.read_region(r.handle(), offset, view.data(), view.size()); });
      }, nb::arg("out"), nb::arg("offset") = 0)
      .def("descriptor", [](PyRegion& r, uint64_t offset, nb::handle nbytes) {
        return StagingDescriptor{r.handle(), offset, r.length(offset, nbytes)};
      }, nb::arg("offset") = 0, nb::arg("nbytes").none() = nb::none(),
         "A descriptor of [offset, offset + nbytes) (nbytes None: to the end).")
      .def("free", [](PyRegion& r) {
        if (!r.live()) return;
        r.call([&](auto& o) { return o.free_region(r.handle()); });
        r.retire();
      }, "Retires the handle; slots published after it fault (bad region).")
      .def("__repr__", [](const PyRegion& r) {
        return "Region(handle=" + std::to_string(r.handle()) + ", nbytes=" +
               std::to_string(r.nbytes()) + ", policy='" + policy_name(r.policy()) +
               (r.live() ? "')" : "', freed)");
      });
}

nb::object runtime_create_region(PyRuntime& runtime, nb::handle policy, uint64_t nbytes) {
  return nb::cast(create_region(runtime.runtime(), &runtime, TenantHandle(), policy, nbytes));
}

nb::object tenant_create_region(const TenantHandle& tenant, nb::handle policy, uint64_t nbytes) {
  return nb::cast(create_region(tenant, nullptr, tenant, policy, nbytes));
}

}  // namespace megaring::python
