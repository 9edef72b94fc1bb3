// SPDX-License-Identifier: Apache-2.0
// call_sliced (common.hpp): every blocking call of the binding waits in
// slices with the GIL released and checks for signals between them, so
// that Ctrl-C interrupts it.
#include <algorithm>
#include <chrono>

#include "common.hpp"

namespace megaring::python {

Status call_sliced(Nanoseconds timeout, const std::function<Status(Nanoseconds)>& fn,
                   SliceRanOut slice_ran_out) {
  // Short enough for Ctrl-C to feel immediate; long enough that the calls
  // (and the events they count: a publish refused by a full ring counts
  // one per slice) stay few.
  constexpr Nanoseconds kSlice = std::chrono::milliseconds(100);
  using Clock = std::chrono::steady_clock;
  const bool forever = timeout == kForever;
  // to_timeout gives at most about a century (or kForever): no overflow.
  const Clock::time_point deadline = forever ? Clock::time_point::max() : Clock::now() + timeout;
  for (;;) {
    Nanoseconds slice = kSlice;
    bool last = false;
    if (!forever) {
      const Clock::time_point now = Clock::now();
      const Nanoseconds left = deadline > now ? Nanoseconds(deadline - now) : Nanoseconds(0);
      last = left <= kSlice;
      slice = std::min(left, kSlice);
    }
    Status st;
    {
      nb::gil_scoped_release release;
      st = fn(slice);
    }
    if (last || !slice_ran_out(st)) return st;
    if (PyErr_CheckSignals() != 0) throw nb::python_error();  // the handler raised (Ctrl-C)
  }
}

}  // namespace megaring::python
