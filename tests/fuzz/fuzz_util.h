// Shared by the libFuzzer targets: every reader takes a path, so each input is written to a
// per-process scratch file first. A target may throw soma::Error (the input was rejected, as
// it should be); anything else escaping, a crash or a sanitizer report is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "soma/core/error.h"

namespace soma::fuzz {

/// Writes the input to /dev/shm (or /tmp) under a name unique to this process, ending `suffix`.
inline std::string scratch_file(const uint8_t* data, size_t size, const std::string& suffix) {
  static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string path = dir + "/soma-fuzz-" + std::to_string(getpid()) + suffix;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) __builtin_trap();  // the harness itself is broken
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  return path;
}

/// Runs f(); soma::Error (a rejected input) is the expected way to fail.
template <typename F>
void expect_ok_or_error(F&& f) {
  try {
    f();
  } catch (const soma::Error&) {
  }
}

}  // namespace soma::fuzz
