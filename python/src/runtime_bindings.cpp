// SPDX-License-Identifier: Apache-2.0
// megaring.Runtime: create from keyword arguments, publish, wait (with the
// GIL released), stats, buffers, shutdown.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runtime_core.hpp"

namespace megaring::python {

PyRuntime::~PyRuntime() {
  nb::gil_scoped_release release;
  runtime_.reset();
}

namespace {

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "cpu") return Backend::kCpu;
  if (name == "cuda") return Backend::kCuda;
  raise_invalid("backend must be 'auto', 'cpu' or 'cuda', not '" + name + "'");
}

template <typename T>
void set_field(T* field, nb::handle value, const char* key) {
  const std::string what = std::string("config '") + key + "'";
  if constexpr (std::is_same_v<T, bool>) {
    if (!nb::try_cast<bool>(value, *field, false)) raise_invalid(what + " must be True or False");
  } else {
    *field = to_int<T>(value, what.c_str());
  }
}

Config parse_config(const std::string& backend, const nb::kwargs& options) {
  Config c;
  c.backend = parse_backend(backend);
  for (auto [key_obj, value] : options) {
    const std::string key = nb::cast<std::string>(key_obj);
    const char* k = key.c_str();
    if (key == "device") set_field(&c.device, value, k);
    else if (key == "ring_capacity") set_field(&c.ring_capacity, value, k);
    else if (key == "workers") set_field(&c.workers, value, k);
    else if (key == "max_buffers") set_field(&c.max_buffers, value, k);
    else if (key == "max_tenants") set_field(&c.max_tenants, value, k);
    else if (key == "staging_arena_bytes") set_field(&c.staging_arena_bytes, value, k);
    else if (key == "max_regions") set_field(&c.max_regions, value, k);
    else if (key == "initial_ticket") set_field(&c.initial_ticket, value, k);
    else if (key == "poll_backoff_min_ns") set_field(&c.poll_backoff_min_ns, value, k);
    else if (key == "poll_backoff_max_ns") set_field(&c.poll_backoff_max_ns, value, k);
    else if (key == "fetch_warps") set_field(&c.fetch_warps, value, k);
    else if (key == "producer_rings") set_field(&c.producer_rings, value, k);
    else if (key == "heartbeat_interval_ns") set_field(&c.heartbeat_interval_ns, value, k);
    else if (key == "force_eager_module_loading") set_field(&c.force_eager_module_loading, value, k);
    else if (key == "timeline_capacity") set_field(&c.timeline_capacity, value, k);
    else if (key == "count_costs") set_field(&c.count_costs, value, k);
    else if (key == "dump_on_wait_timeout") set_field(&c.dump_on_wait_timeout, value, k);
    else if (key == "abort_timeout") c.abort_timeout = to_timeout(value);
    else if (key == "control_timeout") c.control_timeout = to_timeout(value);
    else raise_invalid("unknown config '" + key + "'");
  }
  if (c.device < 0) raise_invalid("config 'device' must be >= 0");
  return c;
}

nb::dict stats_dict(const RuntimeStats& s) {
  nb::dict d;
  d["published"] = s.published;
  d["done_count"] = s.done_count;
  d["reaped"] = s.reaped;
  d["completed_ok"] = s.completed_ok;
  d["faulted"] = s.faulted;
  d["aborted"] = s.aborted;
  d["revoked"] = s.revoked;
  nb::list faults;
  for (uint64_t f : s.faults_by_code) faults.append(f);
  d["faults_by_code"] = faults;
  d["ring_full_events"] = s.ring_full_events;
  d["protocol_errors"] = s.protocol_errors;
  d["parked_results"] = s.parked_results;
  return d;
}

Ticket publish(PyRuntime& self, nb::handle op, nb::args args, bool keep, bool block,
               nb::handle timeout) {
  const SlotRequest request = to_request(op, args);
  Ticket ticket;
  check(publish_sliced(publish_options(keep, block, timeout), [&](const PublishOptions& slice) {
    return self.runtime().publish(request, &ticket, slice);
  }));
  return ticket;
}

std::vector<Ticket> publish_batch(PyRuntime& self, nb::handle slots, bool keep, bool block,
                                  nb::handle timeout) {
  const std::vector<SlotRequest> requests = slot_batch(slots);
  Ticket first;
  check(publish_sliced(publish_options(keep, block, timeout), [&](const PublishOptions& slice) {
    return self.runtime().publish_batch(requests.data(), static_cast<uint32_t>(requests.size()),
                                        &first, slice);
  }));
  return batch_tickets(first, requests.size());
}

}  // namespace

PublishOptions publish_options(bool keep, bool block, nb::handle timeout) {
  PublishOptions o;
  o.keep_result = keep;
  o.on_full = block ? OnFull::kWait : OnFull::kFail;
  o.timeout = to_timeout(timeout);
  return o;
}

std::vector<SlotRequest> slot_batch(nb::handle slots) {
  std::vector<SlotRequest> requests;
  for (nb::handle s : slots) {
    if (!nb::isinstance<SlotRequest>(s)) raise_invalid("publish_batch takes a sequence of megaring.Slot");
    requests.push_back(nb::cast<SlotRequest>(s));
  }
  if (requests.size() > UINT32_MAX) raise_invalid("batch too large");
  return requests;
}

std::vector<Ticket> batch_tickets(const Ticket& first, size_t count) {
  std::vector<Ticket> tickets(count);
  for (size_t i = 0; i < count; ++i) tickets[i] = Ticket{first.value + i, first.kept};
  return tickets;
}

// A publish waiting for ring space ends a slice with kTimeout having
// reserved nothing (the wait comes before the reservation, on the runtime's
// ring and a producer's alike), so the next slice is a fresh publish.
Status publish_sliced(const PublishOptions& options,
                      const std::function<Status(const PublishOptions&)>& publish_once) {
  return call_sliced(options.timeout, [&](Nanoseconds slice) {
    PublishOptions o = options;
    o.timeout = slice;
    return publish_once(o);
  });
}

static Completion wait_ticket(PyRuntime& self, const Ticket& ticket, nb::handle timeout) {
  Completion c;
  check(call_sliced(to_timeout(timeout),
                     [&](Nanoseconds t) { return self.runtime().wait(ticket, &c, t); }));
  return c;
}

void bind_runtime(nb::module_& m) {
  nb::class_<PyRuntime>(m, "Runtime", "A megaring runtime: one persistent consumer and its rings.")
      .def("__init__", [](PyRuntime* self, const std::string& backend, nb::kwargs options) {
        const Config config = parse_config(backend, options);
        std::unique_ptr<Runtime> rt;
        Status st;
        {
          nb::gil_scoped_release release;
          st = Runtime::create(config, &rt);
        }
        check(st);
        new (self) PyRuntime(std::move(rt), config.device);
      }, nb::arg("backend") = "auto", nb::arg("options"))
      .def_prop_ro("backend", [](PyRuntime& s) { return std::string(backend_name(s.runtime().backend())); })
      .def_prop_ro("capacity", [](PyRuntime& s) { return s.runtime().capacity(); })
      .def_prop_ro("consumer_units", [](PyRuntime& s) { return s.runtime().consumer_units(); })
      .def_prop_ro("device_name", [](PyRuntime& s) { return std::string(s.runtime().device_name()); })
      .def_prop_ro("device", &PyRuntime::device)
      .def_prop_ro("done_count", [](PyRuntime& s) { return s.runtime().done_count(); })
      .def("publish", &publish, nb::arg("op"), nb::arg("args"), nb::kw_only(),
           nb::arg("keep") = false, nb::arg("block") = true, nb::arg("timeout").none() = nb::none())
      .def("publish_batch", &publish_batch, nb::arg("slots"), nb::kw_only(), nb::arg("keep") = false,
           nb::arg("block") = true, nb::arg("timeout").none() = nb::none())
      .def("wait", &wait_ticket, nb::arg("ticket"), nb::arg("timeout").none() = nb::none())
      .def("wait_done", [](PyRuntime& self, const Ticket& ticket, nb::handle timeout) {
        check(call_sliced(to_timeout(timeout),
                          [&](Nanoseconds t) { return self.runtime().wait_done(ticket, t); }));
      }, nb::arg("ticket"), nb::arg("timeout").none() = nb::none())
      .def("release", [](PyRuntime& self, const Ticket& ticket) {
        check(self.runtime().release(ticket));
      }, nb::arg("ticket"))
      .def("call", [](PyRuntime& self, nb::handle op, nb::args args, nb::handle timeout) {
        const Ticket ticket = publish(self, op, args, true, true, nb::none());
        try {
          return wait_ticket(self, ticket, timeout);
        } catch (...) {
          (void)self.runtime().release(ticket);  // interrupted or timed out: drop the result
          throw;
        }
      }, nb::arg("op"), nb::arg("args"), nb::kw_only(), nb::arg("timeout").none() = nb::none())
      .def("stats", [](PyRuntime& self) {
        RuntimeStats s;
        {
          nb::gil_scoped_release release;
          s = self.runtime().stats();
        }
        return stats_dict(s);
      })
      .def("consumer_counters", [](PyRuntime& self) {
        ConsumerCounters c;
        check(self.runtime().consumer_counters(&c));
        nb::dict d;
        d["fetch_rounds"] = c.fetch_rounds;
        d["tickets_fetched"] = c.tickets_fetched;
        d["header_rounds"] = c.header_rounds;
        d["idle_polls"] = c.idle_polls;
        d["flushes"] = c.flushes;
        d["records_written"] = c.records_written;
        return d;
      })
      .def("control_stats", [](PyRuntime& self) {
        ControlStats c;
        check(self.runtime().control_stats(&c));
        nb::dict d;
        d["operations"] = c.operations;
        d["rolled_back"] = c.rolled_back;
        d["cancelled"] = c.cancelled;
        d["last_ns"] = c.last_ns;
        d["max_ns"] = c.max_ns;
        d["total_ns"] = c.total_ns;
        return d;
      }, "Control operations (set_grants, ...) since create: applied, rolled back, cancelled, times.")
      .def("suspend", [](PyRuntime& self, nb::handle timeout) {
        // Sliced, the GIL released: a slice that times out leaves the
        // runtime suspending, and the next one waits again (Runtime::suspend).
        check(call_sliced(to_timeout(timeout),
                          [&](Nanoseconds t) { return self.runtime().suspend(t); }));
      }, nb::arg("timeout").none() = nb::none(),
         "Stops the consumer once what it staged has completed, rings and tables intact: "
         "no megaring kernel runs until resume(), so torch.cuda.synchronize() and "
         "empty_cache() return. Slots published meanwhile wait. Raises Timeout if a "
         "staged slot still runs (the runtime stays suspending).")
      .def("resume", [](PyRuntime& self) {
        // Not sliced: Runtime::resume takes no timeout (it waits only for a
        // suspension in progress to end), so Ctrl-C waits for it.
        Status st;
        {
          nb::gil_scoped_release release;
          st = self.runtime().resume();
        }
        check(st);
      }, "Starts the consumer again where each ring stopped (after suspend()).")
      .def_prop_ro("consumer_phase", [](PyRuntime& s) {
        return std::string(consumer_phase_name(s.runtime().consumer_phase()));
      }, "'live', 'suspending' or 'suspended' ('live' once the runtime has stopped).")
      .def_prop_ro("is_suspended", [](PyRuntime& s) {
        return s.runtime().consumer_phase() == ConsumerPhase::kSuspended;
      })
      .def("open_producer", &open_producer, nb::arg("priority") = "normal", nb::keep_alive<0, 1>(),
           "A Producer: a ring of its own (Runtime(producer_rings=N)) of class "
           "'normal', 'critical' or 'bulk'.")
      .def("create_region", &runtime_create_region, nb::arg("policy"), nb::arg("nbytes"),
           nb::keep_alive<0, 1>(),
           "A staging region ('immutable', 'append_only' or 'mutable') of the staging arena.")
      .def("shutdown", [](PyRuntime& self, nb::handle timeout) {
        // Not sliced: a shutdown whose timeout passes aborts (runtime.hpp),
        // so a slice cannot run out without a side effect; Ctrl-C waits for
        // it (bounded by `timeout`, 30 s by default).
        Status st;
        {
          nb::gil_scoped_release release;
          st = self.runtime().shutdown(to_timeout(timeout));
        }
        if (st) self.set_stopped();  // kTimeout: it aborted, but maybe not stopped
        check(st);
      }, nb::arg("timeout").none() = 30.0)
      .def("alloc_buffer", [](PyRuntime& self, uint64_t nbytes) { return alloc_buffer(self, nbytes); },
           nb::arg("nbytes"), nb::keep_alive<0, 1>(),
           "Zero-filled memory for slots (host memory on the CPU backend, device memory on a GPU).")
      .def("register_buffer", [](PyRuntime& self, nb::handle tensor) { return register_buffer(self, tensor); },
           nb::arg("tensor"), nb::keep_alive<0, 1>(),
           "A caller's contiguous DLPack tensor (numpy, torch, cupy) as a buffer, without a copy.")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](nb::handle self, nb::args) { self.attr("shutdown")(); })
      .def("abort", [](PyRuntime& self) {
        Status st;
        {
          nb::gil_scoped_release release;
          st = self.runtime().abort();
        }
        if (st) self.set_stopped();
        check(st);
      });
  bind_buffer(m);
  bind_producer(m);
}

}  // namespace megaring::python
