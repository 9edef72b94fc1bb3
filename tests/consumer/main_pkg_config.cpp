// SPDX-License-Identifier: Apache-2.0
// The installed C++ API built with pkg-config flags alone (no CMake):
//   c++ -std=c++17 main_pkg_config.cpp $(pkg-config --cflags --libs megaring)
// A NOP through the CPU backend; exits 0 when its result comes back.
#include <megaring/runtime.hpp>

#include <cstdio>

int main() {
  megaring::Config config;
  config.backend = megaring::Backend::kCpu;
  std::unique_ptr<megaring::Runtime> rt;
  megaring::Status st = megaring::Runtime::create(config, &rt);
  megaring::Completion c;
  if (st) st = rt->call(megaring::ops::nop(77), &c);
  if (st && !(c.ok() && c.result == 77)) st = megaring::Status(megaring::Result::kInternal, "bad NOP");
  if (st) st = rt->shutdown();
  if (!st) {
    std::fprintf(stderr, "consumer_pkg_config: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("consumer_pkg_config: OK\n");
  return 0;
}
