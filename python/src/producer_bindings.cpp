// SPDX-License-Identifier: Apache-2.0
// megaring.Producer (Runtime.open_producer): a ring of its own, of a
// priority class, published to and waited on as the Runtime is. The C++
// Producer serves one thread at a time, so the binding serialises Python
// threads on a mutex, always taken with the GIL released (a thread waiting
// for it never holds the GIL the holder needs back); close() destroys the
// Producer under the same mutex, so a call racing it finds it closed
// (InvalidArgument), never a destroyed object. The Python Producer keeps its
// Runtime alive (keep_alive), so a Producer never outlives its runtime.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "megaring/producer.hpp"
#include "runtime_core.hpp"

namespace megaring::python {
namespace {

Priority parse_priority(const std::string& name) {
  if (name == "normal") return Priority::kNormal;
  if (name == "critical") return Priority::kCritical;
  if (name == "bulk") return Priority::kBulk;
  raise_invalid("priority must be 'normal', 'critical' or 'bulk', not '" + name + "'");
}

std::string priority_name(Priority p) {
  switch (p) {
    case Priority::kNormal: return "normal";
    case Priority::kCritical: return "critical";
    case Priority::kBulk: return "bulk";
  }
  return "unknown";
}

class PyProducer {
 public:
  explicit PyProducer(std::unique_ptr<Producer> producer) : producer_(std::move(producer)) {}
  ~PyProducer() { close(); }
  PyProducer(const PyProducer&) = delete;
  PyProducer& operator=(const PyProducer&) = delete;

  // fn(producer) under the mutex; the caller has released the GIL.
  template <class Fn>
  Status locked(Fn&& fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!producer_) return Status(Result::kInvalidArgument, "the producer is closed");
    return fn(*producer_);
  }
  // The same, releasing the GIL first; raises on failure.
  template <class Fn>
  void run(Fn&& fn) {
    Status st;
    {
      nb::gil_scoped_release release;
      st = locked(fn);
    }
    check(st);
  }
  // Gives the ring back (slots in flight still complete); idempotent.
  void close() {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mutex_);
    producer_.reset();
  }
  bool closed() {
    nb::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mutex_);
    return producer_ == nullptr;
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<Producer> producer_;
};

// Sliced as Runtime.publish is (publish_sliced), the mutex taken per slice.
Ticket publish(PyProducer& self, nb::handle op, nb::args args, bool keep, bool block,
               nb::handle timeout) {
  const SlotRequest request = to_request(op, args);
  Ticket ticket;
  check(publish_sliced(publish_options(keep, block, timeout), [&](const PublishOptions& slice) {
    return self.locked([&](Producer& p) { return p.publish(request, &ticket, slice); });
  }));
  return ticket;
}

std::vector<Ticket> publish_batch(PyProducer& self, nb::handle slots, bool keep, bool block,
                                  nb::handle timeout) {
  const std::vector<SlotRequest> requests = slot_batch(slots);
  Ticket first;
  check(publish_sliced(publish_options(keep, block, timeout), [&](const PublishOptions& slice) {
    return self.locked([&](Producer& p) {
      return p.publish_batch(requests.data(), static_cast<uint32_t>(requests.size()), &first, slice);
    });
  }));
  return batch_tickets(first, requests.size());
}

// Sliced as Runtime.wait is (the GIL released, Ctrl-C between slices); the
// mutex is taken per slice, so other threads' calls run in between.
Completion wait_ticket(PyProducer& self, const Ticket& ticket, nb::handle timeout) {
  Completion c;
  check(call_sliced(to_timeout(timeout), [&](Nanoseconds slice) {
    return self.locked([&](Producer& p) { return p.wait(ticket, &c, slice); });
  }));
  return c;
}

}  // namespace

nb::object open_producer(PyRuntime& rt, const std::string& priority) {
  const Priority p = parse_priority(priority);
  std::unique_ptr<Producer> producer;
  Status st;
  {
    nb::gil_scoped_release release;
    st = rt.runtime().open_producer(&producer, p);
  }
  check(st);
  return nb::cast(new PyProducer(std::move(producer)), nb::rv_policy::take_ownership);
}

void bind_producer(nb::module_& m) {
  nb::class_<PyProducer>(m, "Producer",
                         "A ring of its own (Runtime.open_producer): publish and wait as on the "
                         "Runtime; its tickets count on its own ring.")
      .def("publish", &publish, nb::arg("op"), nb::arg("args"), nb::kw_only(),
           nb::arg("keep") = false, nb::arg("block") = true, nb::arg("timeout").none() = nb::none())
      .def("publish_batch", &publish_batch, nb::arg("slots"), nb::kw_only(), nb::arg("keep") = false,
           nb::arg("block") = true, nb::arg("timeout").none() = nb::none())
      .def("wait", &wait_ticket, nb::arg("ticket"), nb::arg("timeout").none() = nb::none())
      .def("wait_done", [](PyProducer& self, const Ticket& ticket, nb::handle timeout) {
        check(call_sliced(to_timeout(timeout), [&](Nanoseconds slice) {
          return self.locked([&](Producer& p) { return p.wait_done(ticket, slice); });
        }));
      }, nb::arg("ticket"), nb::arg("timeout").none() = nb::none())
      .def("release", [](PyProducer& self, const Ticket& ticket) {
        self.run([&](Producer& p) { return p.release(ticket); });
      }, nb::arg("ticket"))
      .def("call", [](PyProducer& self, nb::handle op, nb::args args, nb::handle timeout) {
        const Ticket ticket = publish(self, op, args, true, true, nb::none());
        try {
          return wait_ticket(self, ticket, timeout);
        } catch (...) {
          // Interrupted or timed out: drop the result (the producer may be closed by now).
          nb::gil_scoped_release release;
          (void)self.locked([&](Producer& p) { return p.release(ticket); });
          throw;
        }
      }, nb::arg("op"), nb::arg("args"), nb::kw_only(), nb::arg("timeout").none() = nb::none())
      .def_prop_ro("done_count", [](PyProducer& self) {
        uint64_t done = 0;
        self.run([&](Producer& p) { done = p.done_count(); return Status::ok(); });
        return done;
      }, "This ring's DONE_COUNT (its tickets below it have completed).")
      .def_prop_ro("ring", [](PyProducer& self) {
        uint32_t ring = 0;
        self.run([&](Producer& p) { ring = p.ring(); return Status::ok(); });
        return ring;
      }, "Its ring, 1 .. producer_rings.")
      .def_prop_ro("priority", [](PyProducer& self) {
        Priority priority = Priority::kNormal;
        self.run([&](Producer& p) { priority = p.priority(); return Status::ok(); });
        return priority_name(priority);
      }, "'normal', 'critical' or 'bulk': open_producer's, or the last set_priority.")
      .def("set_priority", [](PyProducer& self, const std::string& name) {
        const Priority priority = parse_priority(name);
        self.run([&](Producer& p) { return p.set_priority(priority); });  // a control operation: may wait
      }, nb::arg("priority"), "Changes the ring's class while the runtime runs.")
      .def_prop_ro("closed", &PyProducer::closed)
      .def("close", &PyProducer::close, "Gives the ring back; slots in flight still complete.")
      .def("__enter__", [](nb::handle self) { return nb::borrow(self); })
      .def("__exit__", [](PyProducer& self, nb::args) { self.close(); })
      .def("__repr__", [](PyProducer& self) {
        std::string s = "Producer(";
        {
          nb::gil_scoped_release release;
          Status st = self.locked([&](Producer& p) {
            s += "ring=" + std::to_string(p.ring()) + ", priority='" + priority_name(p.priority()) + "')";
            return Status::ok();
          });
          if (!st) s += "closed)";
        }
        return s;
      });
}

}  // namespace megaring::python
