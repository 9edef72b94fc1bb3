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

// Status or TenantStatus: both convert to bool and have to_string().
template <class AnyStatus>
void check(const AnyStatus& st) {
  if (!st) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    std::exit(1);
  }
}
