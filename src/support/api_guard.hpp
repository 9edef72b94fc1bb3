// SPDX-License-Identifier: Apache-2.0
// Internal: the public API's one exception guard. Every public entry point
// that can fail returns `MR_API_GUARD(expression yielding a Status)`, or
// `detail::guarded(callable returning a Status)` where a body reads better
// as a lambda, so no exception escapes it (runtime.hpp: errors are values).
#pragma once

#include <exception>
#include <new>
#include <string>
#include <utility>

#include "megaring/status.hpp"
#include "support/log.hpp"

namespace megaring::detail {

// Runs `fn` and turns an exception escaping it into a Status. What `fn`
// logs reaches the user's log callback once the outermost guarded call on
// this thread returns, after `fn` let go of every lock (LogHold).
template <class Fn>
Status guarded(Fn&& fn) noexcept {
  const LogHold hold;
  try {
    return std::forward<Fn>(fn)();
  } catch (const std::bad_alloc&) {
    return Status(Result::kOutOfMemory, "host allocation failed");
  } catch (const std::exception& e) {
    return Status(Result::kInternal, std::string("unexpected exception: ") + e.what());
  } catch (...) {
    return Status(Result::kInternal, "unexpected exception");
  }
}

}  // namespace megaring::detail

#define MR_API_GUARD(expr) \
  return ::megaring::detail::guarded([&]() -> ::megaring::Status { return expr; });
