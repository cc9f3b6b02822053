// Helpers for the io tests: a temporary directory removed at scope exit, directory listings,
// exception-message checks and bitwise tensor comparison. Header-only (only *_test.cpp files
// are compiled into soma_tests).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace iotest {

/// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "soma_io_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  /// Names of the entries, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    for (auto& e : std::filesystem::directory_iterator(path_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

/// The message of the soma::Error that `f` throws, or "<no error>" / "<other exception: ...>".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const soma::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception: ") + e.what() + ">";
  }
  return "<no error>";
}

/// Same shape, dtype and bytes (so NaN payloads and -0.0 count).
inline ::testing::AssertionResult same_tensor(const soma::Tensor& a, const soma::Tensor& b) {
  if (a.dtype() != b.dtype())
    return ::testing::AssertionFailure()
           << "dtype " << soma::dtype_name(a.dtype()) << " vs " << soma::dtype_name(b.dtype());
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure()
           << "shape " << soma::shape_str(a.shape()) << " vs " << soma::shape_str(b.shape());
  soma::Tensor ca = a.detach().contiguous(), cb = b.detach().contiguous();
  const size_t n = static_cast<size_t>(a.numel()) * soma::element_size(a.dtype());
  auto bytes = [](const soma::Tensor& t) -> const void* {
    switch (t.dtype()) {
      case soma::kFloat32:
        return t.data<float>();
      case soma::kFloat64:
        return t.data<double>();
      case soma::kInt64:
        return t.data<int64_t>();
      case soma::kBool:
        return t.data<bool>();
      case soma::kUInt8:
        return t.data<uint8_t>();
      case soma::kInt8:
        return t.data<int8_t>();
      case soma::kInt32:
        return t.data<int32_t>();
      case soma::kBFloat16:
        return t.data<soma::BFloat16>();
      case soma::kFloat16:
        return t.data<soma::Half>();
    }
    return nullptr;
  };
  if (n > 0 && std::memcmp(bytes(ca), bytes(cb), n) != 0)
    return ::testing::AssertionFailure() << "values differ: " << a << " vs " << b;
  return ::testing::AssertionSuccess();
}

}  // namespace iotest
