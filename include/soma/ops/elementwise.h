// Elementwise ops with NumPy broadcasting (shapes are aligned from the right; a size-1 or
// missing dimension stretches). Binary ops need equal dtypes; a double scalar takes the
// tensor's dtype. Differentiable for float32 and float64.
//
//   soma::Tensor y = x * w + b;        // [B, N] * [N] + [1, N] -> [B, N]
#pragma once

#include "soma/core/tensor.h"

namespace soma {

/// The broadcast shape of `a` and `b`; `op` names the caller in the error.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a + alpha * b
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a - alpha * b
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
/// b - a (for double - Tensor).
Tensor rsub(const Tensor& a, double b);
/// b / a (for double / Tensor).
Tensor rdiv(const Tensor& a, double b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);  // gradient sign(x) (0 at 0, like PyTorch)
Tensor pow(const Tensor& x, double exponent);
Tensor pow(const Tensor& x,
           const Tensor& exponent);  // broadcasting; gradient wrt exponent x^e ln x
/// Limits to [min, max]; gradient 1 inside (bounds included), 0 outside.
Tensor clamp(const Tensor& x, double min, double max);
/// Elementwise max/min; at ties the gradient is split half and half (like PyTorch).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
/// condition ? a : b, all three broadcast; condition is bool (or any dtype: nonzero = true).
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

/// Comparisons return bool masks and are not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);

}  // namespace soma
