// SPDX-License-Identifier: Apache-2.0
// Command lines of the samples: `--flag value` or `--flag=value`, numbers
// with a range, a backend name. Whatever it cannot parse is reported with a
// usage line and exit status 2; --help (-h) prints the usage and exits 0.
//
//   sample_cli::Cli cli(argc, argv, "[--threads 1..64]");
//   uint64_t threads = 4;
//   while (cli.next()) {
//     if (cli.flag() == "--threads") cli.number(1, 64, &threads);
//     else cli.unknown();
//   }
//   if (cli.done()) return cli.exit_code();
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include <megaring/runtime.hpp>

namespace sample_cli {

class Cli {
 public:
  Cli(int argc, char** argv, const char* usage) : argc_(argc), argv_(argv), usage_(usage) {}

  // Moves to the next option; false at the end, after --help or an error.
  bool next() {
    if (exit_code_ >= 0 || index_ >= argc_) return false;
    const std::string arg = argv_[index_++];
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: %s %s\n", argv_[0], usage_);
      exit_code_ = 0;
      return false;
    }
    const size_t eq = arg.find('=');
    inline_value_ = arg.rfind("--", 0) == 0 && eq != std::string::npos;
    flag_ = inline_value_ ? arg.substr(0, eq) : arg;
    value_ = inline_value_ ? arg.substr(eq + 1) : std::string();
    return true;
  }
  const std::string& flag() const { return flag_; }

  // The option's value, or an error if it has none.
  bool text(std::string* out) {
    if (!inline_value_) {
      if (index_ >= argc_) return error(flag_ + " needs a value");
      value_ = argv_[index_++];
    }
    *out = value_;
    return true;
  }
  // A decimal number in [min, max]: no sign, no spaces, no trailing text.
  bool number(uint64_t min, uint64_t max, uint64_t* out) {
    std::string v;
    if (!text(&v)) return false;
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
      return error(flag_ + " needs a number, got '" + v + "'");
    errno = 0;
    const unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
    if (errno == ERANGE || n < min || n > max)
      return error(flag_ + " must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                   "], got " + v);
    *out = n;
    return true;
  }
  // auto, cuda (or gpu) or cpu.
  bool backend(megaring::Backend* out) {
    std::string v;
    if (!text(&v)) return false;
    if (v == "auto") *out = megaring::Backend::kAuto;
    else if (v == "cuda" || v == "gpu") *out = megaring::Backend::kCuda;
    else if (v == "cpu") *out = megaring::Backend::kCpu;
    else return error("--backend must be auto, cuda (or gpu) or cpu, got '" + v + "'");
    return true;
  }
  // One of `words`.
  bool one_of(std::initializer_list<const char*> words, std::string* out) {
    std::string v;
    if (!text(&v)) return false;
    std::string list;
    for (const char* w : words) {
      if (v == w) {
        *out = v;
        return true;
      }
      list += list.empty() ? w : std::string(" or ") + w;
    }
    return error(flag_ + " must be " + list + ", got '" + v + "'");
  }
  bool unknown() { return error("unknown option '" + flag_ + "'"); }
  // After the loop: options that parse alone but not together; returns the
  // exit code (2) for main.
  int refuse(const std::string& what) {
    error(what);
    return exit_code_;
  }

  // After the loop: whether main should return exit_code() now.
  bool done() const { return exit_code_ >= 0; }
  int exit_code() const { return exit_code_; }

 private:
  bool error(const std::string& what) {
    std::fprintf(stderr, "%s: %s\nusage: %s %s\n", argv_[0], what.c_str(), argv_[0], usage_);
    exit_code_ = 2;
    return false;
  }

  int argc_;
  char** argv_;
  const char* usage_;
  int index_ = 1;
  std::string flag_, value_;
  bool inline_value_ = false;
  int exit_code_ = -1;  // -1: carry on; 0: --help printed; 2: error printed
};

}  // namespace sample_cli
