// Internal: the public API's one exception guard. Every public entry point
// that can fail returns `MR_API_GUARD(expression yielding a Status)`, so no
// exception escapes it (runtime.hpp: errors are values).
#pragma once

#include <exception>
#include <new>
#include <string>

#include "megaring/status.hpp"

#define MR_API_GUARD(expr)                                                                \
  try {                                                                                   \
    return expr;                                                                          \
  } catch (const std::bad_alloc&) {                                                       \
    return ::megaring::Status(::megaring::Result::kOutOfMemory, "host allocation failed"); \
  } catch (const std::exception& e) {                                                     \
    return ::megaring::Status(::megaring::Result::kInternal,                              \
                              std::string("unexpected exception: ") + e.what());          \
  } catch (...) {                                                                         \
    return ::megaring::Status(::megaring::Result::kInternal, "unexpected exception");     \
  }
