// SPDX-License-Identifier: Apache-2.0
// What a README `body` snippet may assume (tests/readme/extract.py): the
// API's headers, namespace megaring, and the README's check(), which stops
// the program at the first error.
#pragma once

#include <megaring/runtime.hpp>
#include <megaring/tenant.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

using namespace megaring;

// The README's check(): the one Status of the whole API, tenant calls included.
inline void check(const Status& st) {
  if (!st) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    std::exit(1);
  }
}
