// Elementwise ops with NumPy broadcasting (shapes are aligned from the right; a size-1 or
// missing dimension stretches). Differentiable for float32 and float64.
//
// Mixed dtypes promote like PyTorch (torch.result_type): the operands are converted to the
// promoted dtype and the op runs in it; each input's gradient comes back in its own dtype.
// A number (soma::Scalar) or a 0-d tensor only raises the kind of the result (bool < integral
// < floating), never the size within a kind:
//
//   int64 [N] + int64 [N]   -> int64        int64 [N] * 2         -> int64
//   int64 [N] + float32 [N] -> float32      int64 [N] * 2.5       -> float32 (default dtype)
//   float32 [N] + float64 [N] -> float64    float32 [N] + float64 0-d -> float32
//   uint8 [N] + 300         -> uint8 (wraps) bool [N] + 1         -> int64
//   int64 [N] / int64 [N]   -> float32 (true division; div(a, b, "floor") stays int64)
//
//   soma::Tensor y = x * w + b;        // [B, N] * [N] + [1, N] -> [B, N]
#pragma once

#include <optional>
#include <string_view>

#include "soma/core/tensor.h"

namespace soma {

/// The broadcast shape of `a` and `b`; `op` names the caller in the error.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

/// The dtype of a binary op's result (torch.result_type): dimensioned tensors first, then 0-d
/// tensors, then numbers; a later category counts only if it is of a higher kind.
DType result_type(const Tensor& a, const Tensor& b);
DType result_type(const Tensor& a, const Scalar& b);
DType result_type(const Scalar& a, const Tensor& b);

/// a + alpha * b. alpha must be integral for integral results and bool only for bool ones.
Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha = 1);
Tensor add(const Tensor& a, const Scalar& b, const Scalar& alpha = 1);
/// a - alpha * b; a bool operand is an error (as in PyTorch).
Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha = 1);
Tensor sub(const Tensor& a, const Scalar& b, const Scalar& alpha = 1);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Scalar& b);
/// a / b. Without rounding_mode: true division (integers give float32). "trunc" rounds
/// towards zero, "floor" towards -inf; both keep integer dtypes, where a zero divisor throws
/// (PyTorch's ZeroDivisionError) and INT64_MIN / -1 wraps to INT64_MIN. Rounded results have
/// a zero gradient.
Tensor div(const Tensor& a, const Tensor& b,
           std::optional<std::string_view> rounding_mode = std::nullopt);
Tensor div(const Tensor& a, const Scalar& b,
           std::optional<std::string_view> rounding_mode = std::nullopt);
/// div(a, b, "floor") (PyTorch >= 1.13 semantics); not differentiable (backward throws, as in
/// PyTorch).
Tensor floor_divide(const Tensor& a, const Tensor& b);
Tensor floor_divide(const Tensor& a, const Scalar& b);
/// Python's %: a - floor(a / b) * b, with the sign of the divisor. Gradient 1 wrt a and
/// -floor(a / b) wrt b.
Tensor remainder(const Tensor& a, const Tensor& b);
Tensor remainder(const Tensor& a, const Scalar& b);
/// C's fmod: a - trunc(a / b) * b, with the sign of the dividend. Gradient 1 wrt a and
/// -trunc(a / b) wrt b.
Tensor fmod(const Tensor& a, const Tensor& b);
Tensor fmod(const Tensor& a, const Scalar& b);
/// b - alpha * a (for Scalar - Tensor).
Tensor rsub(const Tensor& a, const Scalar& b, const Scalar& alpha = 1);
/// b / a (for Scalar / Tensor), true division computed as reciprocal(a) * b like PyTorch.
Tensor rdiv(const Tensor& a, const Scalar& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, const Scalar& b);
Tensor operator-(const Tensor& a, const Scalar& b);
Tensor operator*(const Tensor& a, const Scalar& b);
Tensor operator/(const Tensor& a, const Scalar& b);
Tensor operator+(const Scalar& a, const Tensor& b);
Tensor operator-(const Scalar& a, const Tensor& b);
Tensor operator*(const Scalar& a, const Tensor& b);
Tensor operator/(const Scalar& a, const Tensor& b);
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
/// Elementwise max/min (promoting like add); at ties the gradient is split half and half (like
/// PyTorch).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
/// condition ? a : b, all three broadcast, a and b promoted; condition is bool (or any dtype:
/// nonzero = true).
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// ---- toolkit: math (src/ops/math_unary.cpp) ------------------------------------------------
// Floating functions: an integer or bool input is computed in float32 (like torch); float32 and
// float64 stay. Their gradients are built from soma ops, so they are differentiable again.
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tan(const Tensor& x);
/// atan2(a, b): the angle of (b, a), broadcasting and promoting like div.
Tensor atan2(const Tensor& a, const Tensor& b);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor log2(const Tensor& x);
Tensor log10(const Tensor& x);
Tensor erf(const Tensor& x);
/// 1 / x (integers give float32).
Tensor reciprocal(const Tensor& x);
/// 1 / sqrt(x) (integers give float32).
Tensor rsqrt(const Tensor& x);
/// Rounding keeps integer dtypes (a copy) and has a zero gradient. round() rounds half to even
/// (like torch.round, without decimals).
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
Tensor round(const Tensor& x);
/// -1, 0 or 1 in x's dtype (bool stays bool); zero gradient.
Tensor sign(const Tensor& x);
/// x * x in x's dtype (bool gives int64, like torch).
Tensor square(const Tensor& x);
/// start + weight * (end - start); start, end (and a tensor weight) share one floating dtype
/// and broadcast.
Tensor lerp(const Tensor& start, const Tensor& end, const Scalar& weight);
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight);

/// Comparisons return bool masks, compare in the promoted dtype (int64 [0, 1] < 0.5 is
/// [true, false]) and are not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Scalar& b);
Tensor ne(const Tensor& a, const Scalar& b);
Tensor gt(const Tensor& a, const Scalar& b);
Tensor lt(const Tensor& a, const Scalar& b);
Tensor ge(const Tensor& a, const Scalar& b);
Tensor le(const Tensor& a, const Scalar& b);

/// |a - b| <= atol + rtol * |b| elementwise (broadcasting), in float64; equal infinities are
/// close, nan is close to nan only with equal_nan (torch.isclose). Returns a bool tensor.
Tensor isclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8,
               bool equal_nan = false);
/// Whether every element of isclose(a, b, ...) holds (torch.allclose).
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8,
              bool equal_nan = false);
/// Same shape and the same values (torch.equal; dtypes may differ, values compare exactly).
bool equal(const Tensor& a, const Tensor& b);

}  // namespace soma
