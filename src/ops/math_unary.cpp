// toolkit: math. Floating functions (sin ... erf, reciprocal, rsqrt), rounding (floor, ceil,
// round, sign), square, atan2 and lerp. Every backward closure is written with soma ops on the
// inputs as captured (or the output re-attached with autograd::attach_output), so the gradients
// are differentiable again (create_graph, gradgradcheck).
#include <cmath>
#include <numbers>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "ops/map.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/reduce.h"

namespace soma {

using autograd::attach_output;
using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using ops::map1;

namespace {

void check_defined(const Tensor& t, const char* op) {
  SOMA_CHECK(t.defined(), op, ": called with an undefined tensor");
}

// x in its floating dtype, or converted to float32 (integer and bool inputs, as torch).
Tensor as_floating(const Tensor& x) {
  return is_floating(x.dtype()) ? x : x.to(kFloat32);
}

// out = f(x) for a floating x (already converted by as_floating).
template <typename F>
Tensor float_map(const Tensor& x, const char* op, F f) {
  return detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
    return map1<T>(x, [f](T v) { return static_cast<T>(f(v)); });
  });
}

// The common shape of a floating unary op: convert, map, record `backward(x, y, g)` where y is
// the output (attached when the backward is recorded).
template <typename F, typename B>
Tensor unary(const Tensor& input, const char* op, F f, B backward, bool needs_output) {
  check_defined(input, op);
  const Tensor x = as_floating(input);
  Tensor out = float_map(x, op, f);
  if (needs_grad(x)) {
    const Tensor y = needs_output ? out.detach() : Tensor();
    record(
        out, op, {x},
        [x, y, backward](const Tensor& g) -> Grads {
          return {backward(x, y.defined() ? attach_output(y) : y, g)};
        },
        needs_output ? std::vector<Tensor>{x, out} : std::vector<Tensor>{x});
  }
  return out;
}

// Rounding and sign: zero gradient (as torch), integer dtypes kept.
Tensor zero_grad_op(Tensor out, const Tensor& x, const char* op) {
  if (needs_grad(x)) record(out, op, {x}, [](const Tensor& g) -> Grads { return {zeros_like(g)}; });
  return out;
}

template <typename F>
Tensor rounding(const Tensor& x, const char* op, F f) {
  check_defined(x, op);
  if (!is_floating(x.dtype())) {
    SOMA_CHECK(x.dtype() != kBool, op, ": not implemented for bool tensors (shape ", x.shape(),
               ")");
    return x.clone();  // integers are already whole (torch returns a copy)
  }
  return zero_grad_op(float_map(x, op, f), x, op);
}

}  // namespace

Tensor sin(const Tensor& x) {
  return unary(
      x, "sin", [](auto v) { return std::sin(v); },
      [](const Tensor& x, const Tensor&, const Tensor& g) { return g * cos(x); }, false);
}

Tensor cos(const Tensor& x) {
  return unary(
      x, "cos", [](auto v) { return std::cos(v); },
      [](const Tensor& x, const Tensor&, const Tensor& g) { return -(g * sin(x)); }, false);
}

Tensor tan(const Tensor& x) {
  // d tan / dx = 1 + tan^2
  return unary(
      x, "tan", [](auto v) { return std::tan(v); },
      [](const Tensor&, const Tensor& y, const Tensor& g) { return g * (y * y + 1.0); }, true);
}

Tensor log1p(const Tensor& x) {
  return unary(
      x, "log1p", [](auto v) { return std::log1p(v); },
      [](const Tensor& x, const Tensor&, const Tensor& g) { return g / (x + 1.0); }, false);
}

Tensor expm1(const Tensor& x) {
  return unary(
      x, "expm1", [](auto v) { return std::expm1(v); },
      [](const Tensor&, const Tensor& y, const Tensor& g) { return g * (y + 1.0); }, true);
}

Tensor log2(const Tensor& x) {
  return unary(
      x, "log2", [](auto v) { return std::log2(v); },
      [](const Tensor& x, const Tensor&, const Tensor& g) { return g / (x * std::numbers::ln2); },
      false);
}

Tensor log10(const Tensor& x) {
  return unary(
      x, "log10", [](auto v) { return std::log10(v); },
      [](const Tensor& x, const Tensor&, const Tensor& g) { return g / (x * std::numbers::ln10); },
      false);
}

Tensor erf(const Tensor& x) {
  // d erf / dx = 2 / sqrt(pi) * exp(-x^2)
  return unary(
      x, "erf", [](auto v) { return std::erf(v); },
      [](const Tensor& x, const Tensor&, const Tensor& g) {
        return g * (exp(-(x * x)) * (2.0 * std::numbers::inv_sqrtpi));
      },
      false);
}

Tensor reciprocal(const Tensor& x) {
  // d (1/x) / dx = -1/x^2 = -y^2
  return unary(
      x, "reciprocal", [](auto v) { return decltype(v)(1) / v; },
      [](const Tensor&, const Tensor& y, const Tensor& g) { return -(g * (y * y)); }, true);
}

Tensor rsqrt(const Tensor& x) {
  // d x^(-1/2) / dx = -1/2 x^(-3/2) = -1/2 y^3
  return unary(
      x, "rsqrt", [](auto v) { return decltype(v)(1) / std::sqrt(v); },
      [](const Tensor&, const Tensor& y, const Tensor& g) { return g * (y * y * y) * -0.5; }, true);
}

Tensor floor(const Tensor& x) {
  return rounding(x, "floor", [](auto v) { return std::floor(v); });
}

Tensor ceil(const Tensor& x) {
  return rounding(x, "ceil", [](auto v) { return std::ceil(v); });
}

Tensor round(const Tensor& x) {
  // half to even, like torch.round (std::nearbyint in the default rounding mode)
  return rounding(x, "round", [](auto v) { return std::nearbyint(v); });
}

Tensor sign(const Tensor& x) {
  check_defined(x, "sign");
  if (x.dtype() == kBool) return x.clone();
  Tensor out = detail::dispatch_all(x.dtype(), [&]<typename T>() {
    return map1<T>(x, [](T v) { return static_cast<T>((T(0) < v) - (v < T(0))); });
  });
  return zero_grad_op(out, x, "sign");
}

Tensor square(const Tensor& x) {
  check_defined(x, "square");
  const Tensor v = x.dtype() == kBool ? x.to(kInt64) : x;
  return v * v;  // the gradient 2 g x comes from mul
}

Tensor atan2(const Tensor& a, const Tensor& b) {
  check_defined(a, "atan2");
  check_defined(b, "atan2");
  DType ct = result_type(a, b);
  if (!is_floating(ct)) ct = kFloat32;
  const Tensor ac = a.to(ct), bc = b.to(ct);
  Tensor out = detail::dispatch_float(ct, "atan2", [&]<typename T>() {
    return ops::map2<T>(
        ac, bc, [](T y, T x) { return std::atan2(y, x); }, "atan2");
  });
  if (needs_grad(ac, bc)) {
    record(out, "atan2", {ac, bc},
           [a = ac, b = bc, ra = ac.requires_grad(),
            rb = bc.requires_grad()](const Tensor& g) -> Grads {
             // d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)
             const Tensor r = g / (a * a + b * b);
             return {ra ? sum_to(r * b, a.shape()) : Tensor(),
                     rb ? sum_to(-(r * a), b.shape()) : Tensor()};
           },
           {ac, bc});
  }
  return out;
}

namespace {

void check_lerp(const Tensor& start, const Tensor& end, const Tensor* weight) {
  check_defined(start, "lerp");
  check_defined(end, "lerp");
  SOMA_CHECK(is_floating(start.dtype()), "lerp: expected a floating-point start, got ",
             start.dtype(), " (shape ", start.shape(), ")");
  SOMA_CHECK(end.dtype() == start.dtype(), "lerp: expected dtype ", start.dtype(),
             " for `end` but got dtype ", end.dtype());
  if (weight != nullptr) {
    check_defined(*weight, "lerp");
    SOMA_CHECK(weight->dtype() == start.dtype(), "lerp: expected dtype ", start.dtype(),
               " for `weight` but got dtype ", weight->dtype());
  }
}

// torch's lerp: start + w (end - start) for |w| < 0.5, else end - (end - start)(1 - w).
template <typename T>
T lerp_value(T s, T e, T w) {
  return std::abs(w) < T(0.5) ? s + w * (e - s) : e - (e - s) * (T(1) - w);
}

}  // namespace

Tensor lerp(const Tensor& start, const Tensor& end, const Scalar& weight) {
  check_lerp(start, end, nullptr);
  const double w = weight.to_double();
  Tensor out = detail::dispatch_float(start.dtype(), "lerp", [&]<typename T>() {
    return ops::map2<T>(
        start, end, [w](T s, T e) { return lerp_value<T>(s, e, static_cast<T>(w)); }, "lerp");
  });
  if (needs_grad(start, end)) {
    record(out, "lerp", {start, end},
           [ss = start.shape(), se = end.shape(), rs = start.requires_grad(),
            re = end.requires_grad(), w](const Tensor& g) -> Grads {
             return {rs ? sum_to(g * (1.0 - w), ss) : Tensor(), re ? sum_to(g * w, se) : Tensor()};
           });
  }
  return out;
}

Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight) {
  check_lerp(start, end, &weight);
  const Shape shape = broadcast_shapes(broadcast_shapes(start.shape(), end.shape(), "lerp"),
                                       weight.shape(), "lerp");
  Tensor out = detail::make_tensor(shape, start.dtype());
  detail::dispatch_float(start.dtype(), "lerp", [&]<typename T>() {
    ops::apply3<T, T, T>(out, start, end, weight,
                         [](T s, T e, T w) { return lerp_value(s, e, w); });
  });
  if (needs_grad(start, end, weight)) {
    record(out, "lerp", {start, end, weight},
           [start, end, weight, rs = start.requires_grad(), re = end.requires_grad(),
            rw = weight.requires_grad()](const Tensor& g) -> Grads {
             return {rs ? sum_to(g * rsub(weight, 1), start.shape()) : Tensor(),
                     re ? sum_to(g * weight, end.shape()) : Tensor(),
                     rw ? sum_to(g * (end - start), weight.shape()) : Tensor()};
           },
           {start, end, weight});
  }
  return out;
}

// ---- method forms --------------------------------------------------------------------------
Tensor Tensor::sin() const {
  return soma::sin(*this);
}
Tensor Tensor::cos() const {
  return soma::cos(*this);
}
Tensor Tensor::tan() const {
  return soma::tan(*this);
}
Tensor Tensor::atan2(const Tensor& other) const {
  return soma::atan2(*this, other);
}
Tensor Tensor::log1p() const {
  return soma::log1p(*this);
}
Tensor Tensor::expm1() const {
  return soma::expm1(*this);
}
Tensor Tensor::log2() const {
  return soma::log2(*this);
}
Tensor Tensor::log10() const {
  return soma::log10(*this);
}
Tensor Tensor::erf() const {
  return soma::erf(*this);
}
Tensor Tensor::floor() const {
  return soma::floor(*this);
}
Tensor Tensor::ceil() const {
  return soma::ceil(*this);
}
Tensor Tensor::round() const {
  return soma::round(*this);
}
Tensor Tensor::sign() const {
  return soma::sign(*this);
}
Tensor Tensor::reciprocal() const {
  return soma::reciprocal(*this);
}
Tensor Tensor::rsqrt() const {
  return soma::rsqrt(*this);
}
Tensor Tensor::square() const {
  return soma::square(*this);
}
Tensor Tensor::lerp(const Tensor& end, const Scalar& weight) const {
  return soma::lerp(*this, end, weight);
}
Tensor Tensor::lerp(const Tensor& end, const Tensor& weight) const {
  return soma::lerp(*this, end, weight);
}

}  // namespace soma
