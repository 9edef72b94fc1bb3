// SPDX-License-Identifier: Apache-2.0
// MEGARING_DEBUG and MEGARING_DEBUG_FILE as a user sets them: ctest runs
// this program with the variables it names (tests/CMakeLists.txt) and
// matches what it prints. It creates a CPU-backend runtime, runs one slot,
// shuts down, then, if MEGARING_DEBUG_FILE is set, prints that file (its
// %p replaced) after a "file:" line, and last "probe done".
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include <megaring/runtime.hpp>

int main() {
  using namespace megaring;
  Config config;
  config.backend = Backend::kCpu;
  std::unique_ptr<Runtime> rt;
  Status st = Runtime::create(config, &rt);
  Completion c;
  if (st) st = rt->call(ops::nop(1), &c, std::chrono::seconds(60));
  if (st) st = rt->shutdown(std::chrono::seconds(60));
  if (!st) {
    std::cout << "probe failed: " << st.to_string() << std::endl;
    return 1;
  }
  if (const char* pattern = std::getenv("MEGARING_DEBUG_FILE")) {
    std::string name;
    for (const char* p = pattern; *p != '\0'; ++p) {
      if (p[0] == '%' && p[1] == 'p') {
        name += std::to_string(static_cast<long>(getpid()));
        ++p;
      } else {
        name += *p;
      }
    }
    std::ifstream in(name);
    std::cout << "file: " << (in ? "opened" : "missing") << "\n" << in.rdbuf() << std::flush;
    std::remove(name.c_str());
  }
  std::cout << "probe done" << std::endl;
  return 0;
}
