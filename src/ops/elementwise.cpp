// Elementwise arithmetic, math functions, comparisons and in-place ops: forward and backward
// side by side. Backward of a broadcast input sums the gradient back to its shape (sum_to).
#include "soma/ops/elementwise.h"

#include <cmath>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/cpu/copy.h"
#include "ops/map.h"
#include "soma/ops/reduce.h"

namespace soma {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using ops::map1;
using ops::map2;

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    SOMA_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
               " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  SOMA_CHECK(a.defined() && b.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(a.dtype() == b.dtype(), op, ": dtypes ", a.dtype(), " and ", b.dtype(),
             " differ (shapes ", a.shape(), " and ", b.shape(), "); convert one with .to()");
}

// out = f(a, b) over the broadcast shape, for numeric dtypes.
template <typename F>
Tensor arith(const Tensor& a, const Tensor& b, const char* op, F f) {
  check_same_dtype(a, b, op);
  return detail::dispatch_numeric(a.dtype(), op, [&]<typename T>() {
    return map2<T>(
        a, b, [f](T x, T y) { return static_cast<T>(f(x, y)); }, op);
  });
}

// out = f(x) for a floating-point x.
template <typename F>
Tensor unary_float(const Tensor& x, const char* op, F f) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
  return detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
    return map1<T>(x, [f](T v) { return static_cast<T>(f(v)); });
  });
}

// Scalar op on a tensor; an int64 tensor accepts only integral scalars.
template <typename F>
Tensor scalar_op(const Tensor& a, double s, const char* op, F f) {
  SOMA_CHECK(a.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(is_floating(a.dtype()) || s == std::floor(s), op, ": scalar ", s,
             " is not an integer but the tensor is ", a.dtype());
  return detail::dispatch_numeric(a.dtype(), op, [&]<typename T>() {
    const T v = static_cast<T>(s);
    return map1<T>(a, [f, v](T x) { return static_cast<T>(f(x, v)); });
  });
}

}  // namespace

// ---- arithmetic ----------------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  Tensor out = alpha == 1.0 ? arith(a, b, "add", [](auto x, auto y) { return x + y; })
                            : arith(a, b, "add", [alpha](auto x, auto y) {
                                return x + static_cast<decltype(x)>(alpha) * y;
                              });
  if (needs_grad(a, b)) {
    record(out, "add", {a, b},
           [sa = a.shape(), sb = b.shape(), ra = a.requires_grad(), rb = b.requires_grad(),
            alpha](const Tensor& g) -> Grads {
             return {ra ? sum_to(g, sa) : Tensor(),
                     rb ? sum_to(alpha == 1.0 ? g : g * alpha, sb) : Tensor()};
           });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  Tensor out = arith(a, b, "sub",
                     [alpha](auto x, auto y) { return x - static_cast<decltype(x)>(alpha) * y; });
  if (needs_grad(a, b)) {
    record(out, "sub", {a, b},
           [sa = a.shape(), sb = b.shape(), ra = a.requires_grad(), rb = b.requires_grad(),
            alpha](const Tensor& g) -> Grads {
             return {ra ? sum_to(g, sa) : Tensor(), rb ? sum_to(g * -alpha, sb) : Tensor()};
           });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = arith(a, b, "mul", [](auto x, auto y) { return x * y; });
  if (needs_grad(a, b)) {
    record(out, "mul", {a, b},
           [a = a.detach(), b = b.detach(), ra = a.requires_grad(),
            rb = b.requires_grad()](const Tensor& g) -> Grads {
             return {ra ? sum_to(g * b, a.shape()) : Tensor(),
                     rb ? sum_to(g * a, b.shape()) : Tensor()};
           },
           {a, b});
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = arith(a, b, "div", [](auto x, auto y) { return x / y; });
  if (needs_grad(a, b)) {
    record(out, "div", {a, b},
           [a = a.detach(), b = b.detach(), ra = a.requires_grad(),
            rb = b.requires_grad()](const Tensor& g) -> Grads {
             // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
             return {ra ? sum_to(g / b, a.shape()) : Tensor(),
                     rb ? sum_to(-(g * a) / (b * b), b.shape()) : Tensor()};
           },
           {a, b});
  }
  return out;
}

Tensor add(const Tensor& a, double b) {
  Tensor out = scalar_op(a, b, "add", [](auto x, auto s) { return x + s; });
  if (needs_grad(a)) record(out, "add", {a}, [](const Tensor& g) -> Grads { return {g}; });
  return out;
}

Tensor sub(const Tensor& a, double b) {
  Tensor out = scalar_op(a, b, "sub", [](auto x, auto s) { return x - s; });
  if (needs_grad(a)) record(out, "sub", {a}, [](const Tensor& g) -> Grads { return {g}; });
  return out;
}

Tensor mul(const Tensor& a, double b) {
  Tensor out = scalar_op(a, b, "mul", [](auto x, auto s) { return x * s; });
  if (needs_grad(a)) record(out, "mul", {a}, [b](const Tensor& g) -> Grads { return {g * b}; });
  return out;
}

Tensor div(const Tensor& a, double b) {
  Tensor out = scalar_op(a, b, "div", [](auto x, auto s) { return x / s; });
  if (needs_grad(a)) record(out, "div", {a}, [b](const Tensor& g) -> Grads { return {g / b}; });
  return out;
}

Tensor rsub(const Tensor& a, double b) {
  Tensor out = scalar_op(a, b, "rsub", [](auto x, auto s) { return s - x; });
  if (needs_grad(a)) record(out, "rsub", {a}, [](const Tensor& g) -> Grads { return {-g}; });
  return out;
}

Tensor rdiv(const Tensor& a, double b) {
  Tensor out = scalar_op(a, b, "rdiv", [](auto x, auto s) { return s / x; });
  if (needs_grad(a)) {
    // d(s/a)/da = -s/a^2 = -out/a
    record(out, "rdiv", {a},
           [a = a.detach(), y = out.detach()](const Tensor& g) -> Grads { return {-(g * y) / a}; },
           {a, out});
  }
  return out;
}

Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
Tensor operator+(const Tensor& a, double b) {
  return add(a, b);
}
Tensor operator-(const Tensor& a, double b) {
  return sub(a, b);
}
Tensor operator*(const Tensor& a, double b) {
  return mul(a, b);
}
Tensor operator/(const Tensor& a, double b) {
  return div(a, b);
}
Tensor operator+(double a, const Tensor& b) {
  return add(b, a);
}
Tensor operator-(double a, const Tensor& b) {
  return rsub(b, a);
}
Tensor operator*(double a, const Tensor& b) {
  return mul(b, a);
}
Tensor operator/(double a, const Tensor& b) {
  return rdiv(b, a);
}
Tensor operator-(const Tensor& a) {
  return neg(a);
}

// ---- math functions ------------------------------------------------------------------------
Tensor neg(const Tensor& x) {
  SOMA_CHECK(x.defined(), "neg: called with an undefined tensor");
  Tensor out = detail::dispatch_numeric(x.dtype(), "neg", [&]<typename T>() {
    return map1<T>(x, [](T v) { return static_cast<T>(-v); });
  });
  if (needs_grad(x)) record(out, "neg", {x}, [](const Tensor& g) -> Grads { return {-g}; });
  return out;
}

Tensor exp(const Tensor& x) {
  Tensor out = unary_float(x, "exp", [](auto v) { return std::exp(v); });
  if (needs_grad(x))
    record(out, "exp", {x}, [y = out.detach()](const Tensor& g) -> Grads { return {g * y}; },
           {out});
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = unary_float(x, "log", [](auto v) { return std::log(v); });
  if (needs_grad(x))
    record(out, "log", {x}, [x = x.detach()](const Tensor& g) -> Grads { return {g / x}; }, {x});
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_float(x, "sqrt", [](auto v) { return std::sqrt(v); });
  if (needs_grad(x))
    record(out, "sqrt", {x},
           [y = out.detach()](const Tensor& g) -> Grads { return {g / (y * 2.0)}; }, {out});
  return out;
}

Tensor abs(const Tensor& x) {
  SOMA_CHECK(x.defined(), "abs: called with an undefined tensor");
  Tensor out = detail::dispatch_numeric(x.dtype(), "abs", [&]<typename T>() {
    return map1<T>(x, [](T v) { return v < 0 ? static_cast<T>(-v) : v; });
  });
  if (needs_grad(x)) {
    record(out, "abs", {x},
           [x = x.detach()](const Tensor& g) -> Grads {
             return {detail::dispatch_float(g.dtype(), "abs backward", [&]<typename T>() {
               return map2<T>(g, x, [](T gv, T v) { return v > 0 ? gv : v < 0 ? -gv : T(0); });
             })};
           },
           {x});
  }
  return out;
}

Tensor pow(const Tensor& x, double exponent) {
  Tensor out = unary_float(x, "pow", [exponent](auto v) {
    return exponent == 2.0 ? v * v : std::pow(v, static_cast<decltype(v)>(exponent));
  });
  if (needs_grad(x)) {
    record(out, "pow", {x},
           [x = x.detach(), e = exponent](const Tensor& g) -> Grads {
             // d x^e / dx = e x^(e-1), and 0 for e == 0 (as PyTorch)
             return {detail::dispatch_float(g.dtype(), "pow backward", [&]<typename T>() {
               return map2<T>(g, x, [e](T gv, T v) {
                 return e == 0.0 ? T(0)
                                 : static_cast<T>(gv * e * std::pow(v, static_cast<T>(e - 1)));
               });
             })};
           },
           {x});
  }
  return out;
}

Tensor pow(const Tensor& x, const Tensor& exponent) {
  check_same_dtype(x, exponent, "pow");
  Tensor out = detail::dispatch_float(x.dtype(), "pow", [&]<typename T>() {
    return map2<T>(
        x, exponent, [](T a, T e) { return std::pow(a, e); }, "pow");
  });
  if (needs_grad(x, exponent)) {
    record(out, "pow", {x, exponent},
           [x = x.detach(), e = exponent.detach(), y = out.detach(), rx = x.requires_grad(),
            re = exponent.requires_grad()](const Tensor& g) -> Grads {
             return detail::dispatch_float(g.dtype(), "pow backward", [&]<typename T>() -> Grads {
               Tensor gx, ge;
               if (rx) {
                 Tensor d = map2<T>(x, e, [](T a, T p) {
                   return p == 0 ? T(0) : static_cast<T>(p * std::pow(a, p - 1));
                 });
                 gx = sum_to(g * d, x.shape());
               }
               if (re) {
                 // d x^e / de = x^e ln x, taken as 0 where x == 0 and e >= 0 (as PyTorch)
                 Tensor lx =
                     map2<T>(x, e, [](T a, T p) { return a == 0 && p >= 0 ? T(0) : std::log(a); });
                 ge = sum_to(g * y * lx, e.shape());
               }
               return {gx, ge};
             });
           },
           {x, exponent, out});
  }
  return out;
}

Tensor clamp(const Tensor& x, double min, double max) {
  SOMA_CHECK(!(min > max), "clamp: min (", min, ") is greater than max (", max, ")");
  SOMA_CHECK(x.defined(), "clamp: called with an undefined tensor");
  Tensor out = detail::dispatch_numeric(x.dtype(), "clamp", [&]<typename T>() {
    const T lo = static_cast<T>(min), hi = static_cast<T>(max);
    return map1<T>(x, [lo, hi](T v) { return v < lo ? lo : (v > hi ? hi : v); });
  });
  if (needs_grad(x)) {
    record(out, "clamp", {x},
           [x = x.detach(), min, max](const Tensor& g) -> Grads {
             return {detail::dispatch_float(g.dtype(), "clamp backward", [&]<typename T>() {
               return map2<T>(g, x, [min, max](T gv, T v) {
                 return v >= static_cast<T>(min) && v <= static_cast<T>(max) ? gv : T(0);
               });
             })};
           },
           {x});
  }
  return out;
}

namespace {

// maximum / minimum: the gradient goes to the larger (smaller) input, split evenly at ties.
Tensor extremum(const Tensor& a, const Tensor& b, bool is_max, const char* op) {
  Tensor out = arith(a, b, op, [is_max](auto x, auto y) {
    if (x != x) return x;  // NaN propagates
    if (y != y) return y;
    return is_max ? (x > y ? x : y) : (x < y ? x : y);
  });
  if (needs_grad(a, b)) {
    record(out, op, {a, b},
           [a = a.detach(), b = b.detach(), is_max, ra = a.requires_grad(),
            rb = b.requires_grad()](const Tensor& g) -> Grads {
             return detail::dispatch_float(
                 g.dtype(), "maximum backward", [&]<typename T>() -> Grads {
                   // weight of a: 1 where a wins, 0.5 at ties, 0 where b wins
                   Tensor wa = map2<T>(a, b, [is_max](T x, T y) {
                     return x == y ? T(0.5) : ((x > y) == is_max ? T(1) : T(0));
                   });
                   return {ra ? sum_to(g * wa, a.shape()) : Tensor(),
                           rb ? sum_to(g * rsub(wa, 1.0), b.shape()) : Tensor()};
                 });
           },
           {a, b});
  }
  return out;
}

}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return extremum(a, b, true, "maximum");
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return extremum(a, b, false, "minimum");
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  check_same_dtype(a, b, "where");
  SOMA_CHECK(condition.defined(), "where: called with an undefined condition");
  const Tensor cond = condition.to(kBool);
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = detail::make_tensor(shape, a.dtype());
  detail::dispatch_all(a.dtype(), [&]<typename T>() {
    ops::apply3<T, bool, T>(out, cond, a, b, [](bool c, T x, T y) { return c ? x : y; });
  });
  if (needs_grad(a, b)) {
    record(out, "where", {a, b},
           [cond, sa = a.shape(), sb = b.shape(), ra = a.requires_grad(),
            rb = b.requires_grad()](const Tensor& g) -> Grads {
             Tensor z = zeros({}, g.dtype());
             return {ra ? sum_to(where(cond, g, z), sa) : Tensor(),
                     rb ? sum_to(where(cond, z, g), sb) : Tensor()};
           },
           {cond});
  }
  return out;
}

// ---- comparisons ---------------------------------------------------------------------------
namespace {

template <typename F>
Tensor compare(const Tensor& a, const Tensor& b, const char* op, F f) {
  check_same_dtype(a, b, op);
  return detail::dispatch_all(a.dtype(), [&]<typename T>() {
    return map2<T, bool>(
        a, b, [f](T x, T y) { return f(x, y); }, op);
  });
}

Tensor scalar_like(const Tensor& a, double b) {
  return full({}, b, a.dtype());
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) {
  return compare(a, b, "eq", std::equal_to<>());
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return compare(a, b, "ne", std::not_equal_to<>());
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return compare(a, b, "gt", std::greater<>());
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return compare(a, b, "lt", std::less<>());
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return compare(a, b, "ge", std::greater_equal<>());
}
Tensor le(const Tensor& a, const Tensor& b) {
  return compare(a, b, "le", std::less_equal<>());
}
Tensor eq(const Tensor& a, double b) {
  return eq(a, scalar_like(a, b));
}
Tensor ne(const Tensor& a, double b) {
  return ne(a, scalar_like(a, b));
}
Tensor gt(const Tensor& a, double b) {
  return gt(a, scalar_like(a, b));
}
Tensor lt(const Tensor& a, double b) {
  return lt(a, scalar_like(a, b));
}
Tensor ge(const Tensor& a, double b) {
  return ge(a, scalar_like(a, b));
}
Tensor le(const Tensor& a, double b) {
  return le(a, scalar_like(a, b));
}

// ---- in-place ops --------------------------------------------------------------------------
namespace {

// In-place writes bypass the graph, so they are allowed only where no gradient can be lost.
void check_inplace(const Tensor& self, const char* op, const Tensor* other = nullptr) {
  SOMA_CHECK(self.defined(), op, ": called on an undefined tensor");
  if (!autograd::is_grad_enabled()) return;
  if (self.requires_grad()) {
    SOMA_CHECK(!self.is_leaf(), op, ": a leaf tensor that requires grad (shape ", self.shape(),
               ") cannot be modified in place outside NoGradGuard");
    detail::fail(op, ": in-place operation on a tensor of shape ", self.shape(),
                 " that is part of the autograd graph is not supported; use the out-of-place op");
  }
  SOMA_CHECK(other == nullptr || !other->requires_grad(), op,
             ": in-place operation with an operand that requires grad (shape ", other->shape(),
             ") is not supported outside NoGradGuard");
}

void bump_version(const Tensor& t) {
  ++t.impl()->storage->version;
}

// self = f(self, other) with `other` broadcast to self's shape and converted to its dtype.
template <typename F>
Tensor& inplace(Tensor& self, const Tensor& other, const char* op, F f) {
  check_inplace(self, op, &other);
  SOMA_CHECK(other.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(broadcast_shapes(self.shape(), other.shape(), op) == self.shape(), op, ": shape ",
             other.shape(), " cannot be broadcast to the shape ", self.shape(), " of the tensor");
  const Tensor o = other.to(self.dtype());
  detail::dispatch_numeric(self.dtype(), op, [&]<typename T>() {
    ops::apply2<T, T>(self, self, o, [f](T x, T y) { return static_cast<T>(f(x, y)); });
  });
  bump_version(self);
  return self;
}

}  // namespace

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  return inplace(*this, other, "add_",
                 [alpha](auto x, auto y) { return x + static_cast<decltype(x)>(alpha) * y; });
}
Tensor& Tensor::sub_(const Tensor& other, double alpha) {
  return inplace(*this, other, "sub_",
                 [alpha](auto x, auto y) { return x - static_cast<decltype(x)>(alpha) * y; });
}
Tensor& Tensor::mul_(const Tensor& other) {
  return inplace(*this, other, "mul_", [](auto x, auto y) { return x * y; });
}
Tensor& Tensor::div_(const Tensor& other) {
  return inplace(*this, other, "div_", [](auto x, auto y) { return x / y; });
}
Tensor& Tensor::add_(double v) {
  return add_(full({}, v, dtype()));
}
Tensor& Tensor::sub_(double v) {
  return sub_(full({}, v, dtype()));
}
Tensor& Tensor::mul_(double v) {
  return mul_(full({}, v, dtype()));
}
Tensor& Tensor::div_(double v) {
  return inplace(*this, full({}, v, kFloat64), "div_",
                 [v](auto x, auto) { return static_cast<decltype(x)>(x / v); });
}
Tensor& Tensor::zero_() {
  return fill_(0.0);
}
Tensor& Tensor::fill_(double value) {
  return copy_(full({}, value, dtype()));
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_", &src);
  SOMA_CHECK(src.defined(), "copy_: called with an undefined tensor");
  SOMA_CHECK(broadcast_shapes(shape(), src.shape(), "copy_") == shape(), "copy_: shape ",
             src.shape(), " cannot be broadcast to the shape ", shape(), " of the tensor");
  const Tensor view =
      detail::make_view(src, shape(), ops::broadcast_strides(src, shape()), src.impl()->offset);
  kernels::cpu::copy(*this, view);
  bump_version(*this);
  return *this;
}

// ---- method forms --------------------------------------------------------------------------
Tensor Tensor::neg() const {
  return soma::neg(*this);
}
Tensor Tensor::exp() const {
  return soma::exp(*this);
}
Tensor Tensor::log() const {
  return soma::log(*this);
}
Tensor Tensor::sqrt() const {
  return soma::sqrt(*this);
}
Tensor Tensor::abs() const {
  return soma::abs(*this);
}
Tensor Tensor::pow(double e) const {
  return soma::pow(*this, e);
}
Tensor Tensor::pow(const Tensor& e) const {
  return soma::pow(*this, e);
}
Tensor Tensor::clamp(double lo, double hi) const {
  return soma::clamp(*this, lo, hi);
}
Tensor Tensor::eq(const Tensor& o) const {
  return soma::eq(*this, o);
}
Tensor Tensor::ne(const Tensor& o) const {
  return soma::ne(*this, o);
}
Tensor Tensor::gt(const Tensor& o) const {
  return soma::gt(*this, o);
}
Tensor Tensor::lt(const Tensor& o) const {
  return soma::lt(*this, o);
}
Tensor Tensor::ge(const Tensor& o) const {
  return soma::ge(*this, o);
}
Tensor Tensor::le(const Tensor& o) const {
  return soma::le(*this, o);
}

}  // namespace soma
