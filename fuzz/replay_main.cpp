// SPDX-License-Identifier: Apache-2.0
// Replays a libFuzzer target's inputs without libFuzzer: calls
// LLVMFuzzerTestOneInput once on every file named on the command line, and on
// every regular file of each directory named (sorted, not recursive). Built
// with any compiler (the normal g++ build, the sanitizer CI builds), so seed
// corpora and reproducers run as ordinary ctest tests.
//
//   megaring_<name>_fuzz_replay DIR_OR_FILE...
//
// Fails when given nothing, a path that does not exist, or a directory with
// no file in it; a failing input ends the process (the target traps).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace fs = std::filesystem;

static bool run_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // A copy of exactly the input's size: reads past it are caught by ASan.
  std::vector<uint8_t> input(bytes);
  std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), input.size());
  LLVMFuzzerTestOneInput(input.empty() ? nullptr : input.data(), input.size());
  return true;
}

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  size_t ran = 0;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(arg, ec))
        if (entry.is_regular_file()) files.push_back(entry.path());
      if (ec) {
        std::fprintf(stderr, "replay: cannot list %s: %s\n", arg.c_str(), ec.message().c_str());
        return 1;
      }
      if (files.empty()) {
        std::fprintf(stderr, "replay: %s holds no input\n", arg.c_str());
        return 1;
      }
      std::sort(files.begin(), files.end());
      for (const auto& file : files) {
        if (!run_file(file)) return 1;
        ++ran;
      }
    } else if (fs::is_regular_file(arg, ec)) {
      if (!run_file(arg)) return 1;
      ++ran;
    } else {
      std::fprintf(stderr, "replay: %s: no such file or directory\n", arg.c_str());
      return 1;
    }
  }
  std::printf("replay: ran %zu inputs\n", ran);
  return 0;
}
