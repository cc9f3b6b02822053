// soma::Scalar: a number that remembers its kind (bool, integer or floating point), like
// libtorch's c10::Scalar. Ops that take a number take a Scalar, so `x_int * 2` stays int64 and
// `x_int * 2.5` is float32 (the kind takes part in type promotion, see soma::result_type).
//
//   soma::Scalar s = 3;      // integral (int64)
//   soma::Scalar f = 0.5f;   // floating (double)
//   soma::Scalar b = true;   // boolean
#pragma once

#include <cstdint>
#include <iosfwd>
#include <type_traits>

#include "soma/core/dtype.h"

namespace soma {

class Scalar {
 public:
  enum class Kind : uint8_t { Bool, Int, Float };

  Scalar() : Scalar(int64_t{0}) {}
  Scalar(bool v) : kind_(Kind::Bool), i_(v ? 1 : 0) {}
  /// Any integer type except bool; unsigned values above INT64_MAX wrap like a cast.
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Scalar(T v) : kind_(Kind::Int), i_(static_cast<int64_t>(v)) {}
  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Scalar(T v) : kind_(Kind::Float), d_(static_cast<double>(v)) {}
  Scalar(BFloat16 v) : kind_(Kind::Float), d_(static_cast<float>(v)) {}
  Scalar(Half v) : kind_(Kind::Float), d_(static_cast<float>(v)) {}

  Kind kind() const { return kind_; }
  bool is_boolean() const { return kind_ == Kind::Bool; }
  /// Integral kind; bool counts only when include_bool is true (like c10::Scalar::isIntegral).
  bool is_integral(bool include_bool) const {
    return kind_ == Kind::Int || (include_bool && kind_ == Kind::Bool);
  }
  bool is_floating_point() const { return kind_ == Kind::Float; }
  /// The dtype of a tensor holding this number exactly: bool, int64 or float64.
  DType type() const {
    return kind_ == Kind::Float ? kFloat64 : kind_ == Kind::Int ? kInt64 : kBool;
  }

  double to_double() const { return kind_ == Kind::Float ? d_ : static_cast<double>(i_); }
  int64_t to_long() const { return kind_ == Kind::Float ? static_cast<int64_t>(d_) : i_; }
  bool to_bool() const { return kind_ == Kind::Float ? d_ != 0 : i_ != 0; }
  /// The value converted to T like a cast (integers wrap; a floating value truncates towards
  /// zero and must fit in int64 when T is an integer type; bfloat16/float16 round to nearest
  /// even, through float as c10 does).
  template <typename T>
  T to() const {
    if constexpr (std::is_same_v<T, bool>)
      return to_bool();
    else if constexpr (std::is_integral_v<T>)
      return static_cast<T>(to_long());
    else
      return kind_ == Kind::Float ? static_cast<T>(d_) : static_cast<T>(i_);
  }

 private:
  Kind kind_;
  union {
    int64_t i_;
    double d_;
  };
};

/// Prints the value: "3", "0.5", "true".
std::ostream& operator<<(std::ostream& os, const Scalar& s);

}  // namespace soma
