// Element conversion between soma's dtypes (Tensor::to, copies, item), as PyTorch converts:
// a cast, with the cases C++ leaves undefined given a defined result.
//
//   * to bool: nonzero is true (NaN is true).
//   * floating (float32/64, bfloat16, float16) to float16/bfloat16: round to nearest even
//     (float64 goes through float32, as c10 does); to float32/64: the usual C++ conversion.
//   * integer to integer: wrap modulo 2^bits (two's complement), like C++20's conversion.
//   * floating to integer: truncate toward zero. Values the target cannot hold give what
//     PyTorch gives on x86-64 (cvttss2si): for int64 targets, NaN, +-inf and values outside
//     int64 become INT64_MIN; for narrower targets (int32, int8, uint8) the value is first
//     truncated to int32 (NaN, +-inf and values outside int32 become INT32_MIN) and then
//     wrapped to the target's width (300.5 -> int8 44, -1.5 -> uint8 255). PyTorch's result
//     for these is platform-defined; soma's is the same on every platform.
#pragma once

#include <cstdint>
#include <type_traits>

#include "soma/core/half.h"

namespace soma::detail {

template <typename T>
inline constexpr bool is_float_like_v = std::is_floating_point_v<T> || is_reduced_float_v<T>;

template <typename D, typename S>
D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<D, bool>) {
    if constexpr (is_reduced_float_v<S>)
      return static_cast<float>(v) != 0.0f;
    else
      return v != S(0);
  } else if constexpr (std::is_integral_v<D> && is_float_like_v<S>) {
    using F = std::conditional_t<std::is_same_v<S, double>, double, float>;
    const F f = static_cast<F>(v);
    if constexpr (sizeof(D) == 8) {
      if (!(f >= F(-9223372036854775808.0) && f < F(9223372036854775808.0))) return INT64_MIN;
      return static_cast<D>(f);
    } else {
      int32_t i = INT32_MIN;
      if (f > F(-2147483649.0) && f < F(2147483648.0)) i = static_cast<int32_t>(f);
      return static_cast<D>(i);
    }
  } else if constexpr (is_reduced_float_v<D> && std::is_same_v<S, bool>) {
    return D(v ? 1.0f : 0.0f);
  } else if constexpr (is_reduced_float_v<D>) {
    return D(static_cast<float>(v));
  } else {
    return static_cast<D>(v);
  }
}

}  // namespace soma::detail
