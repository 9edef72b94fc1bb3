// SPDX-License-Identifier: Apache-2.0
// megaring.TenantRegistry and megaring.Tenant (a Tenant holds its Runtime,
// whose registrations keep a tenant buffer's memory: buffer_bindings.cpp).
// The GIL rule: every call
// that may wait for the drain pump releases the GIL, and the completion
// callback (run on the pump thread, or whichever thread delivers) takes it
// only for the Python call itself.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "megaring/tenant.hpp"
#include "runtime_core.hpp"

namespace megaring::python {
namespace {

// A Python callable the C++ registry may copy, call and destroy on any
// thread: each touch of the object takes the GIL.
class PyCallback {
 public:
  explicit PyCallback(nb::handle fn) : fn_(fn.ptr()) { Py_INCREF(fn_); }
  ~PyCallback() {
    if (!nb::is_alive()) return;  // interpreter gone: nothing left to release
    nb::gil_scoped_acquire gil;
    Py_DECREF(fn_);
  }
  PyCallback(const PyCallback&) = delete;
  PyCallback& operator=(const PyCallback&) = delete;
  void operator()(const Completion& c) const noexcept {
    if (!nb::is_alive()) return;
    nb::gil_scoped_acquire gil;
    try {
      nb::handle fn(fn_);
      fn(c);
    } catch (nb::python_error& e) {
      e.discard_as_unraisable(nb::handle(fn_));  // never into the pump
    } catch (...) {
      PyErr_SetString(PyExc_RuntimeError, "megaring: on_completion callback failed");
      PyErr_WriteUnraisable(fn_);
    }
  }

 private:
  PyObject* fn_;
};

// The ownership rule: the binding holds the registry by shared_ptr, and
// each call takes a copy under mutex_ and works on that copy with the GIL
// released. close() only drops the binding's reference (new calls then
// fail kRevoked); the registry is destroyed, revoking every tenant and
// draining, by whoever drops the last reference: close() itself, or a call
// that was in flight on another thread when close() ran. Every reference is
// dropped with the GIL released (the destruction waits for the pump thread,
// which may be waiting for the GIL). mutex_ guards the pointer only: it is
// never held while anything waits, so taking it with the GIL held is safe.
class PyRegistry {
 public:
  PyRegistry(std::unique_ptr<TenantRegistry> registry, nb::object runtime)
      : registry_(std::move(registry)), runtime_(std::move(runtime)) {}
  ~PyRegistry() { close(); }
  void close() {
    std::shared_ptr<TenantRegistry> last;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      last.swap(registry_);
    }
    nb::gil_scoped_release release;
    last.reset();
  }
  // fn(registry) on a reference of the call's own, with the GIL released;
  // raises kRevoked once closed.
  template <class Fn>
  auto call(Fn&& fn) {
    std::shared_ptr<TenantRegistry> registry;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      registry = registry_;
    }
    if (!registry) raise_status(Status(Result::kRevoked, "the registry is closed"));
    nb::gil_scoped_release release;
    auto result = fn(*registry);
    registry.reset();  // may be the last reference: destroyed here, the GIL released
    return result;
  }
  const nb::object& runtime() const { return runtime_; }

 private:
  std::mutex mutex_;
  std::shared_ptr<TenantRegistry> registry_;
  nb::object runtime_;  // the megaring.Runtime, which each Tenant holds too
};

TenantPublishOptions tenant_options(bool keep, nb::handle timeout) {
  TenantPublishOptions o;
  o.keep_result = keep;
  o.timeout = timeout.is_none() ? kForever : to_timeout(timeout);
  return o;
}

nb::dict runtime_counters(const PyTenant& t) {
  const TenantRuntimeCounters c = t.runtime_counters();
  nb::dict d;
  d["published"] = c.published;
  d["drained"] = c.drained;
  d["completed_ok"] = c.completed_ok;
  d["faulted"] = c.faulted;
  d["revoked"] = c.revoked;
  d["aborted"] = c.aborted;
  nb::list faults;
  for (uint64_t f : c.faults_by_code) faults.append(f);
  d["faults_by_code"] = faults;
  d["backpressure_events"] = c.backpressure_events;
  d["pipeline_errors"] = c.pipeline_errors;
  d["device_admitted"] = c.device_admitted;
  d["device_out_of_window"] = c.device_out_of_window;
  d["device_revoked"] = c.device_revoked;
  d["device_not_granted"] = c.device_not_granted;
  return d;
}

nb::dict quota_counters(const PyTenant& t) {
  const TenantQuotaCounters q = t.quota_counters();
  nb::dict d;
  d["max_outstanding_slots"] = q.max_outstanding_slots;
  d["outstanding_slots"] = q.outstanding_slots;
  d["staging_bytes_limit"] = q.staging_bytes_limit;
  d["staging_bytes_in_use"] = q.staging_bytes_in_use;
  d["resident_handles_limit"] = q.resident_handles_limit;
  d["resident_handles_in_use"] = q.resident_handles_in_use;
  d["resident_handles_reserved"] = q.resident_handles_reserved;
  d["resident_buffers"] = q.resident_buffers;
  d["staging_region_bytes"] = q.staging_region_bytes;
  d["staging_regions"] = q.staging_regions;
  return d;
}

// A tenant publish through call_sliced. A slice that runs out ends with
// kBackpressure (the outstanding-slot quota stayed full), kTimeout (the ring
// stayed full) or, with a manual pump, kRingFull; each is rolled back with
// nothing published (tenant.hpp: counters unchanged, but for the refusal
// counted in backpressure_events or pipeline_errors), so the next slice is
// a fresh publish. A zero timeout is one try, as before.
bool tenant_slice_ran_out(const Status& st) {
  return st.code() == Result::kTimeout || st.code() == Result::kBackpressure ||
         st.code() == Result::kRingFull;
}

Status tenant_publish_sliced(const TenantPublishOptions& options,
                             const std::function<Status(const TenantPublishOptions&)>& publish_once) {
  return call_sliced(options.timeout, [&](Nanoseconds slice) {
    TenantPublishOptions o = options;
    o.timeout = slice;
    return publish_once(o);
  }, tenant_slice_ran_out);
}

Ticket tenant_publish(const PyTenant& t, nb::handle op, nb::args args, bool keep,
                      nb::handle timeout) {
  const SlotRequest request = to_request(op, args);
  Ticket ticket;
  check(tenant_publish_sliced(tenant_options(keep, timeout), [&](const TenantPublishOptions& slice) {
    return t.publish_slot(request, &ticket, slice);
  }));
  return ticket;
}

}  // namespace

void bind_tenants(nb::module_& m) {
  nb::class_<PyTenant>(m, "Tenant", "A client of a shared runtime: its own opcode window and quotas.")
      .def_prop_ro("id", &TenantHandle::id)
      .def_prop_ro("label", [](const PyTenant& t) { return t.label(); })
      .def_prop_ro("base_opcode", &TenantHandle::base_opcode)
      .def_prop_ro("opcode_cap", &TenantHandle::opcode_cap)
      .def_prop_ro("revoked", &TenantHandle::revoked)
      .def_prop_ro("published_count", &TenantHandle::published_count)
      .def_prop_ro("drained_count", &TenantHandle::drained_count)
      .def("publish", &tenant_publish, nb::arg("op"), nb::arg("args"), nb::kw_only(),
           nb::arg("keep") = false, nb::arg("timeout").none() = nb::none(),
           "Publishes a slot with a tenant-local opcode; timeout=None waits for quota and ring space.")
      .def("publish_batch", [](const PyTenant& t, nb::handle slots, bool keep, nb::handle timeout) {
        const std::vector<SlotRequest> requests = slot_batch(slots);
        Ticket first;
        check(tenant_publish_sliced(tenant_options(keep, timeout), [&](const TenantPublishOptions& slice) {
          return t.publish_batch(requests.data(), static_cast<uint32_t>(requests.size()), &first, slice);
        }));
        return batch_tickets(first, requests.size());
      }, nb::arg("slots"), nb::kw_only(), nb::arg("keep") = false, nb::arg("timeout").none() = nb::none())
      .def("wait", [](const PyTenant& t, const Ticket& ticket, nb::handle timeout) {
        Completion c;
        check(call_sliced(to_timeout(timeout), [&](Nanoseconds s) { return t.wait(ticket, &c, s); }));
        return c;
      }, nb::arg("ticket"), nb::arg("timeout").none() = nb::none())
      .def("release", [](const PyTenant& t, const Ticket& ticket) { check(t.release(ticket)); },
           nb::arg("ticket"))
      .def("quiesce", [](const PyTenant& t, nb::handle timeout) {
        // Sliced: a slice that runs out ends kQuiesceTimeout.
        check(call_sliced(to_timeout(timeout), [&](Nanoseconds s) { return t.quiesce(s); },
                          [](const Status& st) { return st.code() == Result::kQuiesceTimeout; }));
      }, nb::arg("timeout").none() = nb::none(), "Waits until every published slot has drained.")
      .def("counters", &runtime_counters)
      .def("quota_counters", &quota_counters)
      .def("global_opcode", [](const PyTenant& t, uint32_t local) {
        uint32_t global = 0;
        check(t.global_opcode(local, &global));
        return global;
      }, nb::arg("local"))
      .def("set_grants", [](const PyTenant& t, nb::handle opcodes) {
        const OpcodeGrants grants = opcodes.is_none() ? OpcodeGrants::everything()
                                                      : OpcodeGrants::only(to_opcodes(opcodes, "opcodes"));
        Status st;
        {
          nb::gil_scoped_release release;  // a control operation: may wait for the executors
          st = t.set_grants(grants);
        }
        check(st);
      }, nb::arg("opcodes").none(), "None grants the whole window; else exactly these local opcodes.")
      .def("grants", [](const PyTenant& t) -> nb::object {
        OpcodeGrants g;
        check(t.grants(&g));
        if (g.all) return nb::none();
        return nb::cast(g.opcodes);
      }, "The grants as last set: None (the whole window) or the local opcodes, sorted.")
      .def("create_region", [](const PyTenant& t, nb::handle policy, uint64_t nbytes) {
        return tenant_create_region(t, policy, nbytes);
      }, nb::arg("policy"), nb::arg("nbytes"),
         "A staging region of this tenant: its size in 64-byte lines is charged to the staging_bytes quota, and it holds one of the resident_handles.")
      .def("alloc_buffer", [](const PyTenant& t, uint64_t nbytes) {
        return alloc_buffer(t.py_runtime(), nbytes, &t);
      }, nb::arg("nbytes"), nb::keep_alive<0, 1>(),
         "Zero-filled memory only this tenant's slots (and tenant-less ones) may name; "
         "one resident handle of its quota until free().")
      .def("register_buffer", [](const PyTenant& t, nb::handle tensor) {
        return register_buffer(t.py_runtime(), tensor, &t);
      }, nb::arg("tensor"), nb::keep_alive<0, 1>(),
         "A caller's DLPack tensor as this tenant's buffer, as Runtime.register_buffer; "
         "one resident handle of its quota until free().")
      .def("__repr__", [](const PyTenant& t) {
        return "Tenant(id=" + std::to_string(t.id()) + ", label='" + t.label() + "')";
      });

  nb::class_<PyRegistry>(m, "TenantRegistry", "Tenants of one runtime and their drain pump.")
      .def("__init__", [](PyRegistry* self, PyRuntime& runtime, const std::string& pump,
                          uint32_t max_tenants, nb::handle close_timeout) {
        RegistryConfig config;
        if (pump == "thread") config.pump = PumpMode::kThread;
        else if (pump == "manual") config.pump = PumpMode::kManual;
        else raise_invalid("pump must be 'thread' or 'manual'");
        config.max_tenants = max_tenants;
        config.close_timeout = to_timeout(close_timeout);
        std::unique_ptr<TenantRegistry> registry;
        check(TenantRegistry::create(runtime.runtime(), config, &registry));
        new (self) PyRegistry(std::move(registry), nb::find(&runtime));
      }, nb::arg("runtime"), nb::kw_only(), nb::arg("pump") = "thread", nb::arg("max_tenants") = 0,
         nb::arg("close_timeout") = 10.0, nb::keep_alive<1, 2>())
      .def("register", [](PyRegistry& self, const std::string& label, uint32_t opcode_cap,
                          uint64_t max_outstanding_slots, uint64_t staging_bytes,
                          uint64_t resident_handles, nb::handle on_completion, nb::handle grants) {
        TenantConfig config;
        config.label = label;
        config.quotas.opcode_cap = opcode_cap;
        config.quotas.max_outstanding_slots = max_outstanding_slots;
        config.quotas.staging_bytes = staging_bytes;
        config.quotas.resident_handles = resident_handles;
        if (!on_completion.is_none()) {
          if (!PyCallable_Check(on_completion.ptr())) raise_invalid("on_completion must be callable");
          auto callback = std::make_shared<PyCallback>(on_completion);
          config.on_completion = [callback](const Completion& c) { (*callback)(c); };
        }
        if (!grants.is_none()) config.grants = OpcodeGrants::only(to_opcodes(grants, "grants"));
        TenantHandle handle;
        check(self.call([&](TenantRegistry& r) { return r.register_tenant(config, &handle); }));
        return PyTenant(handle, self.runtime());
      }, nb::arg("label") = "", nb::kw_only(), nb::arg("opcode_cap") = 16,
         nb::arg("max_outstanding_slots") = 256, nb::arg("staging_bytes") = 64ull << 20,
         nb::arg("resident_handles") = 64, nb::arg("on_completion").none() = nb::none(),
         nb::arg("grants").none() = nb::none())
      .def("unregister", [](PyRegistry& self, const PyTenant& tenant) {
        check(self.call([&](TenantRegistry& r) { return r.unregister_tenant(tenant); }));
      }, nb::arg("tenant"))
      .def("pump_once", [](PyRegistry& self) {
        // The GIL released: callbacks it runs take it.
        return self.call([](TenantRegistry& r) { return r.pump_once(); });
      })
      .def("stats", [](PyRegistry& self) {
        const RegistryStats s = self.call([](TenantRegistry& r) { return r.stats(); });
        nb::dict d;
        d["live_tenants"] = s.live_tenants;
        d["draining_tenants"] = s.draining_tenants;
        d["drained_slots"] = s.drained_slots;
        d["untenanted_slots"] = s.untenanted_slots;
        return d;
      })
      // Not sliced: the registry's destruction is one call, bounded by
      // close_timeout (10 s by default); Ctrl-C waits for it.
      .def("close", &PyRegistry::close,
           "Revokes every tenant and drains their slots (once the calls other threads "
           "have in flight on the registry returned).")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](PyRegistry& self, nb::args) { self.close(); });
}

}  // namespace megaring::python
