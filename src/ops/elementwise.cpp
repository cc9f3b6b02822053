// Elementwise arithmetic, math functions, comparisons and in-place ops: forward and backward
// side by side. Backward of a broadcast input sums the gradient back to its shape (sum_to).
//
// Binary ops follow torch.result_type: both operands are converted to the promoted dtype
// (differentiably, so each input's gradient comes back in its own dtype) and the kernel runs in
// that dtype. Integer kernels wrap around like two's complement (as PyTorch's do) and never
// divide by zero: integer division by zero is a soma::Error, INT64_MIN / -1 wraps.
#include "soma/ops/elementwise.h"

#include <atomic>
#include <cmath>
#include <optional>
#include <type_traits>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "core/overlap.h"
#include "kernels/cpu/exp.h"
#include "kernels/kernels.h"
#include "ops/map.h"
#include "ops/trace.h"
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

// ---- type promotion ------------------------------------------------------------------------
namespace {

// torch's ResultTypeState: the promoted dtype of each category of operand. A Python-style
// number counts as the default dtype (float32) when floating, else int64 or bool.
struct ResultTypeState {
  std::optional<DType> dim, zero_dim, scalar;
};

void update(std::optional<DType>& slot, DType d) {
  slot = slot ? promote_types(*slot, d) : d;
}
void update(ResultTypeState& s, const Tensor& t) {
  update(t.dim() > 0 ? s.dim : s.zero_dim, t.dtype());
}
void update(ResultTypeState& s, const Scalar& v) {
  update(s.scalar, v.is_floating_point() ? kFloat32 : v.type());
}

// A lower-priority category changes the result only when it is of a higher kind (bool <
// integral < floating) than the higher-priority one; then the two dtypes promote.
std::optional<DType> combine(std::optional<DType> higher, std::optional<DType> lower) {
  if (!higher) return lower;
  if (!lower || is_floating(*higher)) return higher;
  if (*higher == kBool || is_floating(*lower)) return promote_types(*higher, *lower);
  return higher;
}

DType finish(const ResultTypeState& s) {
  return *combine(s.dim, combine(s.zero_dim, s.scalar));
}

void check_defined(const Tensor& t, const char* op) {
  SOMA_CHECK(t.defined(), op, ": called with an undefined tensor");
}

}  // namespace

DType result_type(const Tensor& a, const Tensor& b) {
  check_defined(a, "result_type");
  check_defined(b, "result_type");
  ResultTypeState s;
  update(s, a);
  update(s, b);
  return finish(s);
}

DType result_type(const Tensor& a, const Scalar& b) {
  check_defined(a, "result_type");
  ResultTypeState s;
  update(s, a);
  update(s, b);
  return finish(s);
}

DType result_type(const Scalar& a, const Tensor& b) {
  return result_type(b, a);
}

// ---- binary kernels ------------------------------------------------------------------------
namespace {

enum class BinOp { Add, Sub, Mul, Div, DivTrunc, DivFloor, Remainder, Fmod, Max, Min };

const char* rounding_name(BinOp op) {
  return op == BinOp::DivTrunc ? "trunc" : "floor";
}

// Add, sub, mul, max and min are bound by memory: they go parallel later (kCheapGrain).
int64_t grain_of(BinOp op) {
  return op == BinOp::Add || op == BinOp::Sub || op == BinOp::Mul || op == BinOp::Max ||
                 op == BinOp::Min
             ? kernels::cpu::kCheapGrain
             : kernels::cpu::kParallelGrain;
}

bool is_rounding(BinOp op) {
  return op == BinOp::DivTrunc || op == BinOp::DivFloor || op == BinOp::Remainder ||
         op == BinOp::Fmod;
}

// Two's complement wrap-around for int64 and int32 (no signed-overflow UB); bool, uint8 and int8
// compute in int and narrow back (bool: nonzero is true), floating types as usual (bfloat16 and
// float16 compute in float and round once).
template <typename T>
T wrap_add(T x, T y) {
  if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>)
    return static_cast<T>(static_cast<std::make_unsigned_t<T>>(x) +
                          static_cast<std::make_unsigned_t<T>>(y));
  else if constexpr (std::is_same_v<T, bool>)
    return x || y;
  else
    return static_cast<T>(x + y);
}
template <typename T>
T wrap_sub(T x, T y) {
  if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>)
    return static_cast<T>(static_cast<std::make_unsigned_t<T>>(x) -
                          static_cast<std::make_unsigned_t<T>>(y));
  else if constexpr (std::is_same_v<T, bool>)
    return x != y;  // never reached: sub rejects bool operands
  else
    return static_cast<T>(x - y);
}
template <typename T>
T wrap_mul(T x, T y) {
  if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, int32_t>)
    return static_cast<T>(static_cast<std::make_unsigned_t<T>>(x) *
                          static_cast<std::make_unsigned_t<T>>(y));
  else if constexpr (std::is_same_v<T, bool>)
    return x && y;
  else
    return static_cast<T>(x * y);
}

// Integer division helpers; the divisor is never 0 here (checked before the loop). A signed
// division by -1 is a negation, so INT64_MIN / -1 wraps to INT64_MIN instead of trapping.
template <typename T>
T int_div_trunc(T a, T b) {
  if constexpr (std::is_signed_v<T>)
    if (b == -1) return wrap_sub(T(0), a);
  return static_cast<T>(a / b);
}
template <typename T>
T int_div_floor(T a, T b) {
  if constexpr (std::is_signed_v<T>) {
    if (b == -1) return wrap_sub(T(0), a);
    const T q = a / b, r = a % b;
    return r != 0 && ((r < 0) != (b < 0)) ? static_cast<T>(q - 1) : q;
  }
  return static_cast<T>(a / b);
}
template <typename T>
T int_fmod(T a, T b) {
  if constexpr (std::is_signed_v<T>)
    if (b == -1) return T(0);
  return static_cast<T>(a % b);
}
template <typename T>
T int_remainder(T a, T b) {
  T r = int_fmod(a, b);
  if constexpr (std::is_signed_v<T>)
    if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
  return r;
}

// Python's floor division for floating point, as PyTorch computes it (c10::div_floor_floating):
// from fmod, so that a == b * q + remainder(a, b) holds as closely as possible.
template <typename T>
T float_div_floor(T a, T b) {
  if (b == 0) return a / b;
  // Every intermediate is stored as T: bfloat16/float16 round after each step, as torch's
  // c10::BFloat16/c10::Half arithmetic and Vectorized<BFloat16> do (no change for float/double).
  const T mod = std::fmod(a, b);
  const T diff = a - mod;
  T div = diff / b;
  if (mod != 0 && (b < 0) != (mod < 0)) div -= T(1);
  if (div == 0) return std::copysign(T(0), a / b);
  T floordiv = std::floor(div);
  if (T(div - floordiv) > T(0.5)) floordiv += T(1);
  return floordiv;
}
template <typename T>
T float_remainder(T a, T b) {
  T mod = std::fmod(a, b);
  if (mod != 0 && (b < 0) != (mod < 0)) mod += b;
  return mod;
}

// Calls run(f) with the scalar kernel f(T, T) -> T of `op`; `alpha` scales the second operand
// of add and sub.
template <typename T, typename Run>
decltype(auto) with_kernel(BinOp op, T alpha, Run&& run) {
  constexpr bool kInt = std::is_integral_v<T>;
  switch (op) {
    case BinOp::Add:
      if (alpha == T(1)) return run([](T x, T y) { return wrap_add(x, y); });
      // torch 1.13: bfloat16 runs Vectorized<BFloat16>::fmadd (float fma, one rounding);
      // float16 runs c10::Half's a + alpha * b (alpha * b rounds to float16 first), as below.
      if constexpr (std::is_same_v<T, BFloat16>)
        return run([a = float(alpha)](T x, T y) { return T(std::fma(float(y), a, float(x))); });
      else
        return run([alpha](T x, T y) { return wrap_add(x, wrap_mul(alpha, y)); });
    case BinOp::Sub:
      if (alpha == T(1)) return run([](T x, T y) { return wrap_sub(x, y); });
      if constexpr (std::is_same_v<T, BFloat16>)  // torch: add with -alpha (see Add)
        return run([a = float(alpha)](T x, T y) { return T(std::fma(float(y), -a, float(x))); });
      else
        return run([alpha](T x, T y) { return wrap_sub(x, wrap_mul(alpha, y)); });
    case BinOp::Mul:
      return run([](T x, T y) { return wrap_mul(x, y); });
    case BinOp::Div:  // true division: floating types only (integers were promoted)
      if constexpr (kInt) break;
      return run([](T x, T y) { return static_cast<T>(x / y); });
    case BinOp::DivTrunc:
      if constexpr (kInt)
        return run([](T x, T y) { return int_div_trunc(x, y); });
      else
        return run([](T x, T y) { return static_cast<T>(std::trunc(x / y)); });
    case BinOp::DivFloor:
      if constexpr (kInt)
        return run([](T x, T y) { return int_div_floor(x, y); });
      else
        return run([](T x, T y) { return float_div_floor(x, y); });
    case BinOp::Remainder:
      if constexpr (kInt)
        return run([](T x, T y) { return int_remainder(x, y); });
      else
        return run([](T x, T y) { return float_remainder(x, y); });
    case BinOp::Fmod:
      if constexpr (kInt)
        return run([](T x, T y) { return int_fmod(x, y); });
      else
        return run([](T x, T y) { return static_cast<T>(std::fmod(x, y)); });
    case BinOp::Max:
    case BinOp::Min: {
      const bool is_max = op == BinOp::Max;
      return run([is_max](T x, T y) {
        if (x != x) return x;  // NaN propagates
        if (y != y) return y;
        return is_max ? (x > y ? x : y) : (x < y ? x : y);
      });
    }
  }
  detail::fail("elementwise: internal error: no kernel for this dtype");
}

// Whether the integer tensor `t` holds a zero (the divisor check before an integer division).
template <typename T>
bool has_zero(const Tensor& t) {
  if constexpr (!std::is_integral_v<T>) {
    return false;
  } else {
    const Shape& strides = t.strides();
    auto loop = ops::make_loop<1>(t.shape(), {&strides});
    const T* p = ops::ptr<T>(t);
    std::atomic<bool> found{false};
    ops::for_each_row<1>(loop, [&](const int64_t* off, int64_t n, const int64_t* st) {
      const T* a = p + off[0];
      bool z = false;
      for (int64_t i = 0; i < n; ++i) z |= a[i * st[0]] == 0;
      if (z) found.store(true, std::memory_order_relaxed);
    });
    return found.load();
  }
}

// The dtype `op` computes in, from the promoted dtype `ct` of its operands; throws where
// PyTorch does (bool subtraction, rounding ops on bool, a float alpha for integers).
DType compute_dtype(BinOp op, DType ct, DType da, DType db, const Scalar& alpha, const char* name) {
  switch (op) {
    case BinOp::Sub:
      SOMA_CHECK(da != kBool && db != kBool, name, ": subtraction with a bool operand (dtypes ", da,
                 " and ", db, ") is not supported, as in PyTorch; to invert a mask use ",
                 "eq(mask, false)");
      [[fallthrough]];
    case BinOp::Add:
      SOMA_CHECK(!alpha.is_boolean() || ct == kBool, name,
                 ": a boolean alpha is only supported for bool results, got ", ct);
      SOMA_CHECK(is_floating(ct) || alpha.is_integral(true), name, ": for integral inputs (result ",
                 ct, ") alpha must not be a floating point ", "number, got alpha=", alpha);
      return ct;
    case BinOp::Div:
      return is_floating(ct) ? ct : kFloat32;  // true division: integers give the default dtype
    default:
      if (is_rounding(op))
        SOMA_CHECK(ct != kBool, name, ": not implemented for bool operands (dtypes ", da, " and ",
                   db, ")");
      return ct;
  }
}

void check_divisor(BinOp op, const Tensor& divisor, const char* name) {
  if (!is_rounding(op) || is_floating(divisor.dtype())) return;
  const bool zero =
      detail::dispatch_all(divisor.dtype(), [&]<typename T>() { return has_zero<T>(divisor); });
  if (!zero) return;
  if (op == BinOp::DivTrunc || op == BinOp::DivFloor)
    detail::fail(name, ": integer division by zero (ZeroDivisionError; divisor of shape ",
                 divisor.shape(), " and dtype ", divisor.dtype(), ", rounding_mode='",
                 rounding_name(op), "')");
  detail::fail(name, ": integer division by zero (ZeroDivisionError; divisor of shape ",
               divisor.shape(), " and dtype ", divisor.dtype(), ")");
}

// op(a, b) over the broadcast shape; a and b already have dtype `ct` (no autograd here).
Tensor binary_kernel(BinOp op, const Tensor& a, const Tensor& b, DType ct, const Scalar& alpha,
                     const char* name) {
  check_divisor(op, b, name);
  return detail::dispatch_all(ct, [&]<typename T>() {
    return with_kernel<T>(op, alpha.to<T>(),
                          [&](auto f) { return map2<T>(a, b, f, name, grain_of(op)); });
  });
}

// out = f(x) for a floating-point x.
template <typename F>
Tensor unary_float(const Tensor& x, const char* op, F f) {
  check_defined(x, op);
  // integer and bool inputs compute in float32, like PyTorch
  const Tensor xf = is_floating(x.dtype()) ? x : x.to(kFloat32);
  return detail::dispatch_float(xf.dtype(), op, [&]<typename T>() {
    return map1<T>(xf, [f](T v) { return static_cast<T>(f(v)); });
  });
}

// A 0-d tensor of dtype `dtype` holding `s` (converted like a cast).
Tensor scalar_tensor(const Scalar& s, DType dtype) {
  return full({}, s, dtype);
}

}  // namespace

// ---- arithmetic ----------------------------------------------------------------------------
namespace {

// Gradient `g` (of the broadcast output) summed back to `shape`.
Tensor grad_to(const Tensor& g, const Shape& shape) {
  return sum_to(g, shape);
}

// The autograd-aware forward shared by every tensor-tensor arithmetic op: converts both
// operands to the compute dtype (recording the conversion, so gradients return in each
// input's dtype) and runs the kernel. `ac`/`bc` receive the converted operands.
Tensor binary(BinOp op, const Tensor& a, const Tensor& b, const Scalar& alpha, const char* name,
              Tensor* ac, Tensor* bc) {
  check_defined(a, name);
  check_defined(b, name);
  const DType ct = compute_dtype(op, result_type(a, b), a.dtype(), b.dtype(), alpha, name);
  *ac = a.to(ct);
  *bc = b.to(ct);
  return binary_kernel(op, *ac, *bc, ct, alpha, name);
}

// The same with a number as the second operand; `ac` receives the converted tensor and `sc`
// the number as a 0-d tensor of the compute dtype.
Tensor binary(BinOp op, const Tensor& a, const Scalar& b, const Scalar& alpha, const char* name,
              Tensor* ac, Tensor* sc) {
  check_defined(a, name);
  const DType ct = compute_dtype(op, result_type(a, b), a.dtype(), b.type(), alpha, name);
  *ac = a.to(ct);
  *sc = scalar_tensor(b, ct);
  return binary_kernel(op, *ac, *sc, ct, alpha, name);
}

// A number on the left: b op a.
Tensor binary(BinOp op, const Scalar& b, const Tensor& a, const Scalar& alpha, const char* name,
              Tensor* sc, Tensor* ac) {
  check_defined(a, name);
  const DType ct = compute_dtype(op, result_type(b, a), b.type(), a.dtype(), alpha, name);
  *ac = a.to(ct);
  *sc = scalar_tensor(b, ct);
  return binary_kernel(op, *sc, *ac, ct, alpha, name);
}

// Zero gradients for the rounding divisions (piecewise constant, as in PyTorch).
Grads zero_grads(const Tensor& g, const Shape& sa, const Shape& sb, bool ra, bool rb) {
  return {ra ? zeros(sa, g.dtype()) : Tensor(), rb ? zeros(sb, g.dtype()) : Tensor()};
}

enum class Rounding { None, Trunc, Floor };

Rounding parse_rounding(std::optional<std::string_view> mode, const char* op) {
  if (!mode) return Rounding::None;
  if (*mode == "trunc") return Rounding::Trunc;
  if (*mode == "floor") return Rounding::Floor;
  detail::fail(op, ": expected rounding_mode to be one of None, 'trunc', or 'floor' but found '",
               *mode, "'");
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  trace::Scope ts;
  Tensor ac, bc;
  Tensor out = binary(BinOp::Add, a, b, alpha, "add", &ac, &bc);
  if (needs_grad(ac, bc)) {
    record(
        out, "add", {ac, bc},
        [sa = a.shape(), sb = b.shape(), ra = ac.requires_grad(), rb = bc.requires_grad(),
         alpha](const Tensor& g) -> Grads {
          const bool one = alpha.to_double() == 1.0;
          return {ra ? grad_to(g, sa) : Tensor(), rb ? grad_to(one ? g : g * alpha, sb) : Tensor()};
        });
  }
  if (ts) ts.record("add", {a, b}, out, {{"alpha", alpha.to_double()}});
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  trace::Scope ts;
  Tensor ac, bc;
  Tensor out = binary(BinOp::Sub, a, b, alpha, "sub", &ac, &bc);
  if (needs_grad(ac, bc)) {
    record(out, "sub", {ac, bc},
           [sa = a.shape(), sb = b.shape(), ra = ac.requires_grad(), rb = bc.requires_grad(),
            alpha](const Tensor& g) -> Grads {
             return {ra ? grad_to(g, sa) : Tensor(),
                     rb ? grad_to(g * -alpha.to_double(), sb) : Tensor()};
           });
  }
  if (ts) ts.record("sub", {a, b}, out, {{"alpha", alpha.to_double()}});
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  trace::Scope ts;
  Tensor ac, bc;
  Tensor out = binary(BinOp::Mul, a, b, 1, "mul", &ac, &bc);
  if (needs_grad(ac, bc)) {
    record(out, "mul", {ac, bc},
           [a = ac, b = bc, ra = ac.requires_grad(),
            rb = bc.requires_grad()](const Tensor& g) -> Grads {
             return {ra ? grad_to(g * b, a.shape()) : Tensor(),
                     rb ? grad_to(g * a, b.shape()) : Tensor()};
           },
           {ac, bc});
  }
  if (ts) ts.record("mul", {a, b}, out);
  return out;
}

namespace {

// div, div(rounding_mode), floor_divide, remainder and fmod of two tensors.
Tensor divide(BinOp op, const Tensor& a, const Tensor& b, const char* name) {
  Tensor ac, bc;
  Tensor out = binary(op, a, b, 1, name, &ac, &bc);
  if (!needs_grad(ac, bc)) return out;
  const bool ra = ac.requires_grad(), rb = bc.requires_grad();
  switch (op) {
    case BinOp::Div:
      record(out, name, {ac, bc},
             [a = ac, b = bc, ra, rb](const Tensor& g) -> Grads {
               // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
               return {ra ? grad_to(g / b, a.shape()) : Tensor(),
                       rb ? grad_to(-(g * a) / (b * b), b.shape()) : Tensor()};
             },
             {ac, bc});
      break;
    case BinOp::DivTrunc:
    case BinOp::DivFloor:
      if (std::string_view(name) == "floor_divide") {
        record(out, name, {ac, bc}, [](const Tensor&) -> Grads {
          detail::fail("floor_divide: the derivative of floor_divide is not implemented (as in ",
                       "PyTorch); use div(a, b, \"floor\"), whose gradient is zero");
        });
      } else {
        record(out, name, {ac, bc}, [sa = a.shape(), sb = b.shape(), ra, rb](const Tensor& g) {
          return zero_grads(g, sa, sb, ra, rb);
        });
      }
      break;
    case BinOp::Remainder:
    case BinOp::Fmod:
      // d/da = 1; d/db = -(a / b rounded: floor for remainder, trunc for fmod)
      record(out, name, {ac, bc},
             [a = ac, b = bc, ra, rb,
              mode = op == BinOp::Remainder ? "floor" : "trunc"](const Tensor& g) -> Grads {
               return {ra ? grad_to(g, a.shape()) : Tensor(),
                       rb ? grad_to(-(g * soma::div(a, b, mode)), b.shape()) : Tensor()};
             },
             {ac, bc});
      break;
    default:
      break;
  }
  return out;
}

// The same with a number as divisor.
Tensor divide(BinOp op, const Tensor& a, const Scalar& b, const char* name) {
  Tensor ac, sc;
  Tensor out = binary(op, a, b, 1, name, &ac, &sc);
  if (!needs_grad(ac)) return out;
  switch (op) {
    case BinOp::Div:
      record(out, name, {ac}, [sc](const Tensor& g) -> Grads { return {g / sc}; });
      break;
    case BinOp::DivTrunc:
    case BinOp::DivFloor:
      if (std::string_view(name) == "floor_divide") {
        record(out, name, {ac}, [](const Tensor&) -> Grads {
          detail::fail("floor_divide: the derivative of floor_divide is not implemented (as in ",
                       "PyTorch); use div(a, b, \"floor\"), whose gradient is zero");
        });
      } else {
        record(out, name, {ac},
               [s = a.shape()](const Tensor& g) -> Grads { return {zeros(s, g.dtype())}; });
      }
      break;
    default:  // remainder, fmod: d/da = 1
      record(out, name, {ac}, [](const Tensor& g) -> Grads { return {g}; });
      break;
  }
  return out;
}

BinOp rounding_op(Rounding r) {
  return r == Rounding::None    ? BinOp::Div
         : r == Rounding::Trunc ? BinOp::DivTrunc
                                : BinOp::DivFloor;
}

}  // namespace

Tensor div(const Tensor& a, const Tensor& b, std::optional<std::string_view> rounding_mode) {
  trace::Scope ts;
  Tensor out = divide(rounding_op(parse_rounding(rounding_mode, "div")), a, b, "div");
  if (ts) ts.record(rounding_mode ? "div_rounding" : "div", {a, b}, out);
  return out;
}
Tensor div(const Tensor& a, const Scalar& b, std::optional<std::string_view> rounding_mode) {
  trace::Scope ts;
  Tensor out = divide(rounding_op(parse_rounding(rounding_mode, "div")), a, b, "div");
  if (ts) ts.record(rounding_mode ? "div_rounding" : "div", {a}, out, {{"other", b.to_double()}});
  return out;
}
Tensor floor_divide(const Tensor& a, const Tensor& b) {
  return divide(BinOp::DivFloor, a, b, "floor_divide");
}
Tensor floor_divide(const Tensor& a, const Scalar& b) {
  return divide(BinOp::DivFloor, a, b, "floor_divide");
}
Tensor remainder(const Tensor& a, const Tensor& b) {
  return divide(BinOp::Remainder, a, b, "remainder");
}
Tensor remainder(const Tensor& a, const Scalar& b) {
  return divide(BinOp::Remainder, a, b, "remainder");
}
Tensor fmod(const Tensor& a, const Tensor& b) {
  return divide(BinOp::Fmod, a, b, "fmod");
}
Tensor fmod(const Tensor& a, const Scalar& b) {
  return divide(BinOp::Fmod, a, b, "fmod");
}

Tensor add(const Tensor& a, const Scalar& b, const Scalar& alpha) {
  trace::Scope ts;
  Tensor ac, sc;
  Tensor out = binary(BinOp::Add, a, b, alpha, "add", &ac, &sc);
  if (needs_grad(ac)) record(out, "add", {ac}, [](const Tensor& g) -> Grads { return {g}; });
  if (ts) ts.record("add", {a}, out, {{"other", b.to_double() * alpha.to_double()}});
  return out;
}

Tensor sub(const Tensor& a, const Scalar& b, const Scalar& alpha) {
  trace::Scope ts;
  Tensor ac, sc;
  Tensor out = binary(BinOp::Sub, a, b, alpha, "sub", &ac, &sc);
  if (needs_grad(ac)) record(out, "sub", {ac}, [](const Tensor& g) -> Grads { return {g}; });
  if (ts) ts.record("sub", {a}, out, {{"other", b.to_double() * alpha.to_double()}});
  return out;
}

Tensor mul(const Tensor& a, const Scalar& b) {
  trace::Scope ts;
  Tensor ac, sc;
  Tensor out = binary(BinOp::Mul, a, b, 1, "mul", &ac, &sc);
  if (needs_grad(ac)) record(out, "mul", {ac}, [sc](const Tensor& g) -> Grads { return {g * sc}; });
  if (ts) ts.record("mul", {a}, out, {{"other", b.to_double()}});
  return out;
}

Tensor rsub(const Tensor& a, const Scalar& b, const Scalar& alpha) {
  // b - alpha * a
  trace::Scope ts;
  Tensor sc, ac;
  check_defined(a, "rsub");
  const DType ct = compute_dtype(BinOp::Sub, result_type(a, b), b.type(), a.dtype(), alpha, "rsub");
  ac = a.to(ct);
  sc = scalar_tensor(b, ct);
  Tensor out = detail::dispatch_all(ct, [&]<typename T>() {
    const T al = alpha.to<T>();
    return map2<T>(
        sc, ac, [al](T s, T x) { return wrap_sub(s, wrap_mul(al, x)); }, "rsub");
  });
  if (needs_grad(ac))
    record(out, "rsub", {ac},
           [alpha](const Tensor& g) -> Grads { return {g * -alpha.to_double()}; });
  if (ts) ts.record("rsub", {a}, out, {{"other", b.to_double()}, {"alpha", alpha.to_double()}});
  return out;
}

namespace {

// 1 / a in a's dtype, or float32 for integers (torch.reciprocal).
Tensor reciprocal(const Tensor& a, const char* name) {
  Tensor sc, ac;
  Tensor out = binary(BinOp::Div, Scalar(1), a, 1, name, &sc, &ac);
  if (needs_grad(ac)) {
    // d(1/a)/da = -1/a^2 = -out^2
    record(out, "reciprocal", {ac},
           [y = out.detach()](const Tensor& g) -> Grads {
             const Tensor r = autograd::attach_output(y);
             return {-(g * (r * r))};
           },
           {out});
  }
  return out;
}

}  // namespace

Tensor rdiv(const Tensor& a, const Scalar& b) {
  // b / a computed as reciprocal(a) * b, as PyTorch's Tensor.__rtruediv__ does (the rounding
  // differs from a true b / a in the last bit).
  return mul(reciprocal(a, "rdiv"), b);
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
Tensor operator+(const Tensor& a, const Scalar& b) {
  return add(a, b);
}
Tensor operator-(const Tensor& a, const Scalar& b) {
  return sub(a, b);
}
Tensor operator*(const Tensor& a, const Scalar& b) {
  return mul(a, b);
}
Tensor operator/(const Tensor& a, const Scalar& b) {
  return div(a, b);
}
Tensor operator+(const Scalar& a, const Tensor& b) {
  return add(b, a);
}
Tensor operator-(const Scalar& a, const Tensor& b) {
  return rsub(b, a);
}
Tensor operator*(const Scalar& a, const Tensor& b) {
  return mul(b, a);
}
Tensor operator/(const Scalar& a, const Tensor& b) {
  return rdiv(b, a);
}
Tensor operator-(const Tensor& a) {
  return neg(a);
}
// ---- math functions ------------------------------------------------------------------------
namespace {

// dispatch_numeric plus int8, int32, bfloat16 and float16 (neg and abs: generic code, no
// registry kernel behind it); bool and uint8 are an error naming `op`.
template <typename F>
decltype(auto) dispatch_signed(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case kInt8:
      return f.template operator()<int8_t>();
    case kInt32:
      return f.template operator()<int32_t>();
    case kBFloat16:
      return f.template operator()<BFloat16>();
    case kFloat16:
      return f.template operator()<Half>();
    default:
      return detail::dispatch_numeric(dtype, op, std::forward<F>(f));
  }
}

}  // namespace

Tensor neg(const Tensor& x) {
  trace::Scope ts;
  SOMA_CHECK(x.defined(), "neg: called with an undefined tensor");
  Tensor out = dispatch_signed(x.dtype(), "neg", [&]<typename T>() {
    return map1<T>(x, [](T v) {
      if constexpr (std::is_integral_v<T>)
        return wrap_sub(T(0), v);  // -INT_MIN wraps, as in torch
      else
        return static_cast<T>(-v);  // -0.0 for 0.0
    });
  });
  if (needs_grad(x)) record(out, "neg", {x}, [](const Tensor& g) -> Grads { return {-g}; });
  if (ts) ts.record("neg", {x}, out);
  return out;
}

// e^x for float32 in PyTorch's bits (kernels/cpu/exp.h), contiguous rows 16 lanes at a time.
Tensor exp_float32(const Tensor& x) {
  Tensor out = detail::make_tensor(x.shape(), kFloat32);
  const Shape sx = ops::broadcast_strides(x, out.shape());
  auto loop = ops::make_loop<2>(out.shape(), {&out.strides(), &sx});
  float* po = ops::mutable_ptr<float>(out);
  const float* px = ops::ptr<float>(x);
  ops::for_each_row<2>(loop, [&](const int64_t* off, int64_t n, const int64_t* st) {
    if (st[0] == 1 && st[1] == 1) return kernels::cpu::exp_float(px + off[1], po + off[0], n);
    for (int64_t i = 0; i < n; ++i)
      po[off[0] + i * st[0]] = kernels::cpu::exp_float(px[off[1] + i * st[1]]);
  });
  return out;
}

Tensor exp(const Tensor& x) {
  Tensor out = x.defined() && x.dtype() == kFloat32
                   ? exp_float32(x)
                   : unary_float(x, "exp", [](auto v) { return std::exp(v); });
  if (needs_grad(x))
    record(
        out, "exp", {x},
        [y = out.detach()](const Tensor& g) -> Grads { return {g * autograd::attach_output(y)}; },
        {out});
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = unary_float(x, "log", [](auto v) { return std::log(v); });
  if (needs_grad(x))
    record(out, "log", {x}, [x](const Tensor& g) -> Grads { return {g / x}; }, {x});
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = unary_float(x, "sqrt", [](auto v) { return std::sqrt(v); });
  if (needs_grad(x))
    record(out, "sqrt", {x},
           [y = out.detach()](const Tensor& g) -> Grads {
             return {g / (autograd::attach_output(y) * 2.0)};
           },
           {out});
  return out;
}

Tensor abs(const Tensor& x) {
  SOMA_CHECK(x.defined(), "abs: called with an undefined tensor");
  Tensor out = dispatch_signed(x.dtype(), "abs", [&]<typename T>() {
    return map1<T>(x, [](T v) {
      if constexpr (std::is_integral_v<T>)
        return v < T(0) ? wrap_sub(T(0), v) : v;  // abs(INT_MIN) wraps to INT_MIN, as in torch
      else if constexpr (is_reduced_float_v<T>)
        return T(std::abs(static_cast<float>(v)));
      else
        return std::abs(v);  // abs(-0.0) is +0.0, as in torch
    });
  });
  if (needs_grad(x)) {
    record(out, "abs", {x}, [x](const Tensor& g) -> Grads { return {g * sign(x)}; }, {x});
  }
  return out;
}

Tensor pow(const Tensor& x, double exponent) {
  check_defined(x, "pow");
  if (is_integral(x.dtype(), /*include_bool=*/false) && exponent >= 0 &&
      exponent == std::floor(exponent)) {
    // an integer tensor to a whole power stays integral (torch), wrapping like mul
    const auto e = static_cast<uint64_t>(exponent);
    return detail::dispatch_all(x.dtype(), [&]<typename T>() {
      return map1<T>(x, [e](T v) {
        T r = 1, b = v;
        for (uint64_t k = e; k > 0; k >>= 1) {
          if (k & 1) r = wrap_mul(r, b);
          b = wrap_mul(b, b);
        }
        return r;
      });
    });
  }
  Tensor out = unary_float(x, "pow", [exponent](auto v) {
    return exponent == 2.0 ? v * v : std::pow(v, static_cast<decltype(v)>(exponent));
  });
  if (needs_grad(x)) {
    record(out, "pow", {x},
           [x, e = exponent](const Tensor& g) -> Grads {
             // d x^e / dx = e x^(e-1), and 0 for e == 0 (as PyTorch)
             if (e == 0.0) return {zeros_like(g)};
             if (e == 1.0) return {g};
             if (e == 2.0) return {g * (x * 2.0)};
             return {g * (pow(x, e - 1.0) * e)};
           },
           {x});
  }
  return out;
}

Tensor pow(const Tensor& x, const Tensor& exponent) {
  check_defined(x, "pow");
  check_defined(exponent, "pow");
  SOMA_CHECK(x.dtype() == exponent.dtype(), "pow: dtypes ", x.dtype(), " and ", exponent.dtype(),
             " differ (shapes ", x.shape(), " and ", exponent.shape(), "); convert one with .to()");
  Tensor out = detail::dispatch_float(x.dtype(), "pow", [&]<typename T>() {
    return map2<T>(
        x, exponent, [](T a, T e) { return std::pow(a, e); }, "pow");
  });
  if (needs_grad(x, exponent)) {
    record(out, "pow", {x, exponent},
           [x, e = exponent, y = out.detach(), rx = x.requires_grad(),
            re = exponent.requires_grad()](const Tensor& g) -> Grads {
             Tensor grad_x, grad_e;
             const Tensor zero = zeros({}, g.dtype());
             if (rx) {
               // d x^e / dx = e x^(e-1), taken as 0 where e == 0 (as PyTorch)
               grad_x = sum_to(g * where(eq(e, 0), zero, e * pow(x, e - 1.0)), x.shape());
             }
             if (re) {
               // d x^e / de = x^e ln x, taken as 0 where x == 0 and e >= 0 (as PyTorch)
               const Tensor mask = eq(x, 0) * ge(e, 0);
               grad_e =
                   sum_to(g * where(mask, zero, autograd::attach_output(y) * log(x)), e.shape());
             }
             return {grad_x, grad_e};
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
           [x, min, max](const Tensor& g) -> Grads {
             // 1 inside [min, max] (bounds included), 0 outside
             const Tensor inside = ge(x, min) * le(x, max);
             return {where(inside, g, zeros({}, g.dtype()))};
           },
           {x});
  }
  return out;
}

namespace {

// maximum / minimum: the gradient goes to the larger (smaller) input, split evenly at ties.
Tensor extremum(const Tensor& a, const Tensor& b, bool is_max, const char* op) {
  Tensor ac, bc;
  Tensor out = binary(is_max ? BinOp::Max : BinOp::Min, a, b, 1, op, &ac, &bc);
  if (needs_grad(ac, bc)) {
    record(out, op, {ac, bc},
           [a = ac, b = bc, is_max, ra = ac.requires_grad(),
            rb = bc.requires_grad()](const Tensor& g) -> Grads {
             // weight of a: 1 where a wins, 0.5 at ties, 0 where b wins (a constant mask)
             const Tensor wins = is_max ? gt(a, b) : lt(a, b);
             const Tensor wa = wins.to(g.dtype()) + eq(a, b).to(g.dtype()) * 0.5;
             return {ra ? sum_to(g * wa, a.shape()) : Tensor(),
                     rb ? sum_to(g * rsub(wa, 1), b.shape()) : Tensor()};
           },
           {ac, bc});
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
  SOMA_CHECK(condition.defined(), "where: called with an undefined condition");
  check_defined(a, "where");
  check_defined(b, "where");
  const DType ct = result_type(a, b);
  const Tensor ac = a.to(ct), bc = b.to(ct);
  const Tensor cond = condition.to(kBool);
  const Shape shape =
      broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = detail::make_tensor(shape, ct);
  detail::dispatch_all(ct, [&]<typename T>() {
    ops::apply3<T, bool, T>(out, cond, ac, bc, [](bool c, T x, T y) { return c ? x : y; });
  });
  if (needs_grad(ac, bc)) {
    record(out, "where", {ac, bc},
           [cond, sa = a.shape(), sb = b.shape(), ra = ac.requires_grad(),
            rb = bc.requires_grad()](const Tensor& g) -> Grads {
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

enum class CmpOp { Eq, Ne, Gt, Lt, Ge, Le };

template <typename T, typename Run>
decltype(auto) with_compare(CmpOp op, Run&& run) {
  switch (op) {
    case CmpOp::Eq:
      return run([](T x, T y) { return x == y; });
    case CmpOp::Ne:
      return run([](T x, T y) { return x != y; });
    case CmpOp::Gt:
      return run([](T x, T y) { return x > y; });
    case CmpOp::Lt:
      return run([](T x, T y) { return x < y; });
    case CmpOp::Ge:
      return run([](T x, T y) { return x >= y; });
    case CmpOp::Le:
      break;
  }
  return run([](T x, T y) { return x <= y; });
}

// a and b (already of dtype ct) compared elementwise: a bool mask, outside the graph.
Tensor compare_kernel(CmpOp op, const Tensor& a, const Tensor& b, DType ct, const char* name) {
  return detail::dispatch_all(ct, [&]<typename T>() {
    return with_compare<T>(op, [&](auto f) { return map2<T, bool>(a, b, f, name); });
  });
}

Tensor compare(CmpOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_defined(a, name);
  check_defined(b, name);
  const DType ct = result_type(a, b);
  return compare_kernel(op, a.detach().to(ct), b.detach().to(ct), ct, name);
}

Tensor compare(CmpOp op, const Tensor& a, const Scalar& b, const char* name) {
  check_defined(a, name);
  const DType ct = result_type(a, b);
  return compare_kernel(op, a.detach().to(ct), scalar_tensor(b, ct), ct, name);
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) {
  return compare(CmpOp::Eq, a, b, "eq");
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return compare(CmpOp::Ne, a, b, "ne");
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return compare(CmpOp::Gt, a, b, "gt");
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return compare(CmpOp::Lt, a, b, "lt");
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return compare(CmpOp::Ge, a, b, "ge");
}
Tensor le(const Tensor& a, const Tensor& b) {
  return compare(CmpOp::Le, a, b, "le");
}
Tensor eq(const Tensor& a, const Scalar& b) {
  return compare(CmpOp::Eq, a, b, "eq");
}
Tensor ne(const Tensor& a, const Scalar& b) {
  return compare(CmpOp::Ne, a, b, "ne");
}
Tensor gt(const Tensor& a, const Scalar& b) {
  return compare(CmpOp::Gt, a, b, "gt");
}
Tensor lt(const Tensor& a, const Scalar& b) {
  return compare(CmpOp::Lt, a, b, "lt");
}
Tensor ge(const Tensor& a, const Scalar& b) {
  return compare(CmpOp::Ge, a, b, "ge");
}
Tensor le(const Tensor& a, const Scalar& b) {
  return compare(CmpOp::Le, a, b, "le");
}

// ---- in-place ops --------------------------------------------------------------------------
namespace {

// In-place writes bypass the graph, so they are allowed only where no gradient can be lost.
void check_inplace(const Tensor& self, const char* op, const Tensor* other = nullptr) {
  SOMA_CHECK(self.defined(), op, ": called on an undefined tensor");
  if (other != nullptr) check_defined(*other, op);
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

// The result of an in-place op is computed in `ct` and written into self: PyTorch refuses a
// cast that would lose the result's kind (floating into integral, anything into bool).
void check_cast(DType ct, const Tensor& self, const char* op) {
  SOMA_CHECK(can_cast(ct, self.dtype()), op, ": result type ", ct,
             " can't be cast to the desired output type ", self.dtype(), " (tensor of shape ",
             self.shape(), "); use the out-of-place op, or convert with .to()");
}

// self = op(self, o), o of dtype ct and broadcastable to self's shape.
void inplace_compute(Tensor& self, const Tensor& o, BinOp op, DType ct, const Scalar& alpha,
                     const char* name) {
  check_divisor(op, o, name);
  if (ct == self.dtype()) {
    detail::dispatch_all(ct, [&]<typename T>() {
      with_kernel<T>(op, alpha.to<T>(),
                     [&](auto f) { ops::apply2<T, T>(self, self, o, f, grain_of(op)); });
    });
  } else {
    Tensor r = binary_kernel(op, self.detach().to(ct), o, ct, alpha, name);
    kernels::call<kernels::Copy>(self, r);
  }
  bump_version(self);
}

// self = op(self, other), other broadcast to self's shape.
Tensor& inplace(Tensor& self, const Tensor& other, BinOp op, const Scalar& alpha,
                const char* name) {
  check_inplace(self, name, &other);
  SOMA_CHECK(broadcast_shapes(self.shape(), other.shape(), name) == self.shape(), name, ": shape ",
             other.shape(), " cannot be broadcast to the shape ", self.shape(), " of the tensor");
  detail::check_no_internal_overlap(self, name);
  detail::check_no_partial_overlap(self, other, name);
  const DType ct =
      compute_dtype(op, result_type(self, other), self.dtype(), other.dtype(), alpha, name);
  check_cast(ct, self, name);
  inplace_compute(self, other.detach().to(ct), op, ct, alpha, name);
  return self;
}

// self = op(self, number).
Tensor& inplace(Tensor& self, const Scalar& other, BinOp op, const Scalar& alpha,
                const char* name) {
  check_inplace(self, name);
  detail::check_no_internal_overlap(self, name);
  const DType ct =
      compute_dtype(op, result_type(self, other), self.dtype(), other.type(), alpha, name);
  check_cast(ct, self, name);
  inplace_compute(self, scalar_tensor(other, ct), op, ct, alpha, name);
  return self;
}

}  // namespace

Tensor& Tensor::add_(const Tensor& other, const Scalar& alpha) {
  return inplace(*this, other, BinOp::Add, alpha, "add_");
}
Tensor& Tensor::add_(const Scalar& other, const Scalar& alpha) {
  return inplace(*this, other, BinOp::Add, alpha, "add_");
}
Tensor& Tensor::sub_(const Tensor& other, const Scalar& alpha) {
  return inplace(*this, other, BinOp::Sub, alpha, "sub_");
}
Tensor& Tensor::sub_(const Scalar& other, const Scalar& alpha) {
  return inplace(*this, other, BinOp::Sub, alpha, "sub_");
}
Tensor& Tensor::mul_(const Tensor& other) {
  return inplace(*this, other, BinOp::Mul, 1, "mul_");
}
Tensor& Tensor::mul_(const Scalar& other) {
  return inplace(*this, other, BinOp::Mul, 1, "mul_");
}
Tensor& Tensor::div_(const Tensor& other, std::optional<std::string_view> rounding_mode) {
  return inplace(*this, other, rounding_op(parse_rounding(rounding_mode, "div_")), 1, "div_");
}
Tensor& Tensor::div_(const Scalar& other, std::optional<std::string_view> rounding_mode) {
  return inplace(*this, other, rounding_op(parse_rounding(rounding_mode, "div_")), 1, "div_");
}
Tensor& Tensor::floor_divide_(const Tensor& other) {
  return inplace(*this, other, BinOp::DivFloor, 1, "floor_divide_");
}
Tensor& Tensor::floor_divide_(const Scalar& other) {
  return inplace(*this, other, BinOp::DivFloor, 1, "floor_divide_");
}
Tensor& Tensor::remainder_(const Tensor& other) {
  return inplace(*this, other, BinOp::Remainder, 1, "remainder_");
}
Tensor& Tensor::remainder_(const Scalar& other) {
  return inplace(*this, other, BinOp::Remainder, 1, "remainder_");
}
Tensor& Tensor::fmod_(const Tensor& other) {
  return inplace(*this, other, BinOp::Fmod, 1, "fmod_");
}
Tensor& Tensor::fmod_(const Scalar& other) {
  return inplace(*this, other, BinOp::Fmod, 1, "fmod_");
}
Tensor& Tensor::zero_() {
  return fill_(0);
}
Tensor& Tensor::fill_(const Scalar& value) {
  check_inplace(*this, "fill_");
  detail::check_no_internal_overlap(*this, "fill_");
  const Tensor v = full({}, value, dtype());  // checks that an integer dtype can hold value
  const Tensor src = detail::make_view(v, shape(), Shape(static_cast<size_t>(dim()), 0), 0);
  kernels::call<kernels::Copy>(*this, src);
  bump_version(*this);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_", &src);
  SOMA_CHECK(broadcast_shapes(shape(), src.shape(), "copy_") == shape(), "copy_: shape ",
             src.shape(), " cannot be broadcast to the shape ", shape(), " of the tensor");
  detail::check_no_internal_overlap(*this, "copy_");
  const TensorImpl& d = *impl();
  const TensorImpl& s = *src.impl();
  if (d.storage == s.storage && d.offset == s.offset && d.shape == s.shape &&
      d.strides == s.strides && d.dtype == s.dtype)
    return *this;  // copying a tensor onto itself (as PyTorch, nothing to do)
  detail::check_no_partial_overlap(*this, src, "copy_");
  const Tensor view =
      detail::make_view(src, shape(), ops::broadcast_strides(src, shape()), src.impl()->offset);
  kernels::call<kernels::Copy>(*this, view);
  bump_version(*this);
  return *this;
}

// ---- method forms --------------------------------------------------------------------------
Tensor Tensor::add(const Tensor& other, const Scalar& alpha) const {
  return soma::add(*this, other, alpha);
}
Tensor Tensor::add(const Scalar& other, const Scalar& alpha) const {
  return soma::add(*this, other, alpha);
}
Tensor Tensor::sub(const Tensor& other, const Scalar& alpha) const {
  return soma::sub(*this, other, alpha);
}
Tensor Tensor::sub(const Scalar& other, const Scalar& alpha) const {
  return soma::sub(*this, other, alpha);
}
Tensor Tensor::mul(const Tensor& other) const {
  return soma::mul(*this, other);
}
Tensor Tensor::mul(const Scalar& other) const {
  return soma::mul(*this, other);
}
Tensor Tensor::div(const Tensor& other, std::optional<std::string_view> rounding_mode) const {
  return soma::div(*this, other, rounding_mode);
}
Tensor Tensor::div(const Scalar& other, std::optional<std::string_view> rounding_mode) const {
  return soma::div(*this, other, rounding_mode);
}
Tensor Tensor::floor_divide(const Tensor& other) const {
  return soma::floor_divide(*this, other);
}
Tensor Tensor::floor_divide(const Scalar& other) const {
  return soma::floor_divide(*this, other);
}
Tensor Tensor::remainder(const Tensor& other) const {
  return soma::remainder(*this, other);
}
Tensor Tensor::remainder(const Scalar& other) const {
  return soma::remainder(*this, other);
}
Tensor Tensor::fmod(const Tensor& other) const {
  return soma::fmod(*this, other);
}
Tensor Tensor::fmod(const Scalar& other) const {
  return soma::fmod(*this, other);
}
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
Tensor Tensor::eq(const Scalar& o) const {
  return soma::eq(*this, o);
}
Tensor Tensor::ne(const Scalar& o) const {
  return soma::ne(*this, o);
}
Tensor Tensor::gt(const Scalar& o) const {
  return soma::gt(*this, o);
}
Tensor Tensor::lt(const Scalar& o) const {
  return soma::lt(*this, o);
}
Tensor Tensor::ge(const Scalar& o) const {
  return soma::ge(*this, o);
}
Tensor Tensor::le(const Scalar& o) const {
  return soma::le(*this, o);
}

}  // namespace soma
