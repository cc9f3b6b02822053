// Calls a generic lambda `f.template operator()<T>()` with T the C++ type of `dtype`.
#pragma once

#include "soma/core/error.h"
#include "soma/core/tensor.h"

namespace soma::detail {

/// float32 / float64 only; other dtypes are an error naming `op`.
template <typename F>
decltype(auto) dispatch_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case kFloat32:
      return f.template operator()<float>();
    case kFloat64:
      return f.template operator()<double>();
    default:
      fail(op, ": expected a floating-point tensor (float32 or float64), got ", dtype);
  }
}

/// Every dtype.
template <typename F>
decltype(auto) dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case kFloat32:
      return f.template operator()<float>();
    case kFloat64:
      return f.template operator()<double>();
    case kInt64:
      return f.template operator()<int64_t>();
    case kBool:
      return f.template operator()<bool>();
    case kUInt8:
      return f.template operator()<uint8_t>();
  }
  fail("dispatch: unknown dtype");
}

/// float32, float64, int64 (arithmetic); bool is an error naming `op`.
template <typename F>
decltype(auto) dispatch_numeric(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case kFloat32:
      return f.template operator()<float>();
    case kFloat64:
      return f.template operator()<double>();
    case kInt64:
      return f.template operator()<int64_t>();
    default:
      fail(op, ": expected a numeric tensor, got ", dtype);
  }
}

}  // namespace soma::detail
