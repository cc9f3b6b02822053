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
    case kInt8:
      return f.template operator()<int8_t>();
    case kInt32:
      return f.template operator()<int32_t>();
    case kBFloat16:
      return f.template operator()<BFloat16>();
    case kFloat16:
      return f.template operator()<Half>();
  }
  fail("dispatch: unknown dtype");
}

/// The five dtypes soma had before int8/int32/bfloat16/float16 (float32, float64, int64, bool,
/// uint8): for ops whose kernels exist only for those; other dtypes are an error naming `op`.
template <typename F>
decltype(auto) dispatch_classic(DType dtype, const char* op, F&& f) {
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
    default:
      fail(op, ": not implemented for dtype ", dtype,
           " (supported: float32, float64, int64, bool, uint8)");
  }
}

/// float32, float64, int64 (arithmetic); other dtypes are an error naming `op`.
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
      fail(op, ": not implemented for dtype ", dtype, " (supported: float32, float64, int64)");
  }
}

}  // namespace soma::detail
