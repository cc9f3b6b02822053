// Activations and softmax, forward and backward side by side. A plain backward runs a fused
// elementwise kernel over (grad, saved tensor), e.g. relu: dx = y > 0 ? g : 0; when the closure
// runs with grad mode on (backward with create_graph) it computes the same gradient from
// differentiable soma ops instead, so second derivatives work.
#include "soma/ops/activation.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "ops/map.h"
#include "ops/trace.h"
#include "soma/autograd/grad_mode.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using ops::map1;
using ops::map2;

namespace {

// The fused backward dx = df(g, s) over the saved tensor s (x or y).
template <typename DF>
Tensor fused_grad(const Tensor& g, const Tensor& s, DF df, const char* op, int64_t grain) {
  return detail::dispatch_float(g.dtype(), op, [&]<typename T>() {
    return map2<T>(
        g, s, [df](T gv, T sv) { return static_cast<T>(df(gv, sv)); }, op, grain);
  });
}

// y = f(x). Plain backward: dx = df(g, s), s = x or y (save_output). With grad mode on
// (create_graph): dx = slow(g, s) from differentiable ops, s = x as-is or y re-attached.
// `grain`: kCheapGrain for the piecewise-linear ones (a compare and a select per element).
template <typename F, typename DF, typename SLOW>
Tensor activation(const Tensor& x, const char* op, bool save_output, F f, DF df, SLOW slow,
                  int64_t grain = kernels::cpu::kParallelGrain) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
  Tensor out = detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
    return map1<T>(
        x, [f](T v) { return static_cast<T>(f(v)); }, grain);
  });
  if (needs_grad(x)) {
    if (save_output) {
      record(out, op, {x},
             [y = out.detach(), df, slow, op, grain](const Tensor& g) -> Grads {
               if (autograd::is_grad_enabled()) return {slow(g, autograd::attach_output(y))};
               return {fused_grad(g, y, df, op, grain)};
             },
             {out});
    } else {
      record(out, op, {x},
             [x, df, slow, op, grain](const Tensor& g) -> Grads {
               if (autograd::is_grad_enabled()) return {slow(g, x)};
               return {fused_grad(g, x, df, op, grain)};
             },
             {x});
    }
  }
  return out;
}

// For a piecewise-linear f: the derivative df(1, s) is piecewise constant, so with grad mode on
// dx = g * df(1, s) with that derivative as a constant tensor (its own derivative is 0).
template <typename DF>
auto constant_slope(DF df, const char* op) {
  return [df, op](const Tensor& g, const Tensor& s) {
    const Tensor slope = detail::dispatch_float(s.dtype(), op, [&]<typename T>() {
      return map1<T>(s.detach(), [df](T v) { return static_cast<T>(df(T(1), v)); });
    });
    return g * slope;
  };
}

// min(x, 0), with a zero gradient where x > 0 (keeps exp of the negative part finite).
Tensor negative_part(const Tensor& x) {
  return where(gt(x, 0), zeros({}, x.dtype()), x);
}

template <typename T>
T stable_sigmoid(T v) {
  // split by sign so exp never overflows
  return v >= 0 ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v));
}

template <typename T>
T stable_softplus(T v) {  // log(1 + e^v)
  return std::max(v, T(0)) + std::log1p(std::exp(-std::abs(v)));
}

// erf as a differentiable op (for gelu's gradient): d erf(x) = 2/sqrt(pi) e^(-x^2).
Tensor erf_op(const Tensor& x) {
  Tensor out = detail::dispatch_float(
      x.dtype(), "erf", [&]<typename T>() { return map1<T>(x, [](T v) { return std::erf(v); }); });
  if (needs_grad(x))
    record(out, "erf", {x},
           [x](const Tensor& g) -> Grads {
             return {g * (exp(-(x * x)) * (2.0 * std::numbers::inv_sqrtpi))};
           },
           {x});
  return out;
}

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// scale * elu(x, alpha) with input_scale 1/input_scale (PyTorch's elu family).
Tensor elu_impl(const Tensor& x, double alpha, double scale, double input_scale, const char* op) {
  return activation(
      x, op, false,
      [=](auto v) {
        using T = decltype(v);
        return v > 0 ? static_cast<T>(scale * v)
                     : static_cast<T>(scale * alpha * std::expm1(v * input_scale));
      },
      [=](auto g, auto v) {
        using T = decltype(v);
        return v > 0 ? static_cast<T>(g * scale)
                     : static_cast<T>(g * scale * alpha * input_scale * std::exp(v * input_scale));
      },
      [=](const Tensor& g, const Tensor& xs) {
        return where(gt(xs, 0), g * scale,
                     g * exp(negative_part(xs) * input_scale) * (scale * alpha * input_scale));
      });
}

}  // namespace

Tensor relu(const Tensor& x) {
  trace::Scope ts;
  auto df = [](auto g, auto y) { return y > 0 ? g : decltype(g)(0); };
  Tensor out = activation(
      x, "relu", true, [](auto v) { return v < 0 ? decltype(v)(0) : v; },  // NaN passes through
      df, constant_slope(df, "relu"), kernels::cpu::kCheapGrain);
  if (ts) ts.record("relu", {x}, out);
  return out;
}

Tensor sigmoid(const Tensor& x) {
  trace::Scope ts;
  Tensor out = activation(
      x, "sigmoid", true, [](auto v) { return stable_sigmoid(v); },
      [](auto g, auto y) { return g * y * (decltype(y)(1) - y); },
      [](const Tensor& g, const Tensor& y) { return g * (y * (1.0 - y)); });
  if (ts) ts.record("sigmoid", {x}, out);
  return out;
}

Tensor tanh(const Tensor& x) {
  trace::Scope ts;
  Tensor out = activation(
      x, "tanh", true, [](auto v) { return std::tanh(v); },
      [](auto g, auto y) { return g * (decltype(y)(1) - y * y); },
      [](const Tensor& g, const Tensor& y) { return g * (1.0 - y * y); });
  if (ts) ts.record("tanh", {x}, out);
  return out;
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  trace::Scope ts;
  auto df = [negative_slope](auto g, auto v) {
    return v > 0 ? g : static_cast<decltype(g)>(g * negative_slope);
  };
  Tensor out = activation(
      x, "leaky_relu", false,
      [negative_slope](auto v) { return v > 0 ? v : static_cast<decltype(v)>(v * negative_slope); },
      df, constant_slope(df, "leaky_relu"), kernels::cpu::kCheapGrain);
  if (ts) ts.record("leaky_relu", {x}, out, {{"negative_slope", negative_slope}});
  return out;
}

Tensor gelu(const Tensor& x) {
  trace::Scope ts;
  // gelu(x) = x Phi(x);  gelu'(x) = Phi(x) + x phi(x)
  constexpr double kPdf = 0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2;  // 1/sqrt(2 pi)
  Tensor out = activation(
      x, "gelu", false,
      [](auto v) {
        using T = decltype(v);
        return static_cast<T>(v * T(0.5) * (T(1) + std::erf(v * T(std::numbers::sqrt2 / 2))));
      },
      [](auto g, auto v) {
        using T = decltype(v);
        const T cdf = T(0.5) * (T(1) + std::erf(v * T(std::numbers::sqrt2 / 2)));
        const T pdf = std::exp(T(-0.5) * v * v) * T(kPdf);
        return g * (cdf + v * pdf);
      },
      [](const Tensor& g, const Tensor& xs) {
        const Tensor cdf = (erf_op(xs * (std::numbers::sqrt2 / 2)) + 1.0) * 0.5;
        const Tensor pdf = exp(xs * xs * -0.5) * kPdf;
        return g * (cdf + xs * pdf);
      });
  if (ts) ts.record("gelu", {x}, out);
  return out;
}

Tensor elu(const Tensor& x, double alpha) {
  return elu_impl(x, alpha, 1.0, 1.0, "elu");
}

Tensor selu(const Tensor& x) {
  return elu_impl(x, kSeluAlpha, kSeluScale, 1.0, "selu");
}

Tensor celu(const Tensor& x, double alpha) {
  SOMA_CHECK(alpha != 0.0, "celu: alpha cannot be 0");
  return elu_impl(x, alpha, 1.0, 1.0 / alpha, "celu");
}

Tensor silu(const Tensor& x) {
  return activation(
      x, "silu", false, [](auto v) { return v * stable_sigmoid(v); },
      [](auto g, auto v) {
        using T = decltype(v);
        const T s = stable_sigmoid(v);
        return g * s * (T(1) + v * (T(1) - s));
      },
      [](const Tensor& g, const Tensor& xs) {
        const Tensor s = sigmoid(xs);
        return g * (s * (xs * (1.0 - s) + 1.0));
      });
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  return activation(
      x, "softplus", false,
      [beta, threshold](auto v) {
        using T = decltype(v);
        const T bv = static_cast<T>(v * beta);
        return bv > threshold ? v : static_cast<T>(stable_softplus(bv) / beta);
      },
      [beta, threshold](auto g, auto v) {
        using T = decltype(v);
        const T bv = static_cast<T>(v * beta);
        return bv > threshold ? g : g * stable_sigmoid(bv);
      },
      [beta, threshold](const Tensor& g, const Tensor& xs) {
        const Tensor bx = xs * beta;
        return where(gt(bx, threshold), g, g * sigmoid(bx));
      });
}

Tensor mish(const Tensor& x) {
  return activation(
      x, "mish", false, [](auto v) { return v * std::tanh(stable_softplus(v)); },
      [](auto g, auto v) {
        using T = decltype(v);
        const T t = std::tanh(stable_softplus(v));
        return g * (t + v * stable_sigmoid(v) * (T(1) - t * t));
      },
      [](const Tensor& g, const Tensor& xs) {
        const Tensor t = soma::tanh(softplus(xs));
        return g * (t + xs * sigmoid(xs) * (1.0 - t * t));
      });
}

Tensor hardtanh(const Tensor& x, double min_val, double max_val) {
  auto df = [min_val, max_val](auto g, auto v) {
    return v <= min_val || v >= max_val ? decltype(g)(0) : g;
  };
  return activation(
      x, "hardtanh", false,
      [min_val, max_val](auto v) {
        using T = decltype(v);
        return std::min(std::max(v, static_cast<T>(min_val)), static_cast<T>(max_val));
      },
      df, constant_slope(df, "hardtanh"), kernels::cpu::kCheapGrain);
}

Tensor hardsigmoid(const Tensor& x) {
  auto df = [](auto g, auto v) {
    using T = decltype(v);
    // PyTorch's kernel multiplies by the float constant 1/6 in every dtype
    return v > T(-3) && v < T(3) ? static_cast<T>(g * static_cast<T>(1.0f / 6.0f)) : T(0);
  };
  return activation(
      x, "hardsigmoid", false,
      [](auto v) {
        using T = decltype(v);
        return v <= T(-3) ? T(0) : v >= T(3) ? T(1) : static_cast<T>(v / T(6) + T(0.5));
      },
      df, constant_slope(df, "hardsigmoid"), kernels::cpu::kCheapGrain);
}

Tensor hardswish(const Tensor& x) {
  return activation(
      x, "hardswish", false,
      [](auto v) {
        using T = decltype(v);
        return v <= T(-3) ? T(0) : v >= T(3) ? v : static_cast<T>(v * (v + T(3)) / T(6));
      },
      [](auto g, auto v) {
        using T = decltype(v);
        return v < T(-3) ? T(0) : v <= T(3) ? static_cast<T>(g * (v / T(3) + T(0.5))) : g;
      },
      [](const Tensor& g, const Tensor& xs) {
        const Tensor zero = zeros({}, xs.dtype());
        return where(lt(xs, -3.0), zero, where(le(xs, 3.0), g * (xs / 3.0 + 0.5), g));
      });
}

Tensor log_sigmoid(const Tensor& x) {
  return activation(
      x, "log_sigmoid", false,
      [](auto v) {
        using T = decltype(v);
        return std::min(v, T(0)) - std::log1p(std::exp(-std::abs(v)));
      },
      [](auto g, auto v) { return g * stable_sigmoid(-v); },
      [](const Tensor& g, const Tensor& xs) { return g * sigmoid(-xs); });
}

Tensor prelu(const Tensor& x, const Tensor& weight) {
  SOMA_CHECK(x.defined() && weight.defined(), "prelu: called with an undefined tensor");
  SOMA_CHECK(is_floating(x.dtype()) && x.dtype() == weight.dtype(),
             "prelu: input and weight must have the same floating-point dtype, got ", x.dtype(),
             " and ", weight.dtype());
  SOMA_CHECK(weight.dim() <= 1, "prelu: weight must be 0-D or 1-D, got shape ", weight.shape());
  const int64_t channels = x.dim() >= 2 ? x.size(1) : 1;
  const int64_t n = weight.numel();
  SOMA_CHECK(n == 1 || n == channels,
             "prelu: Mismatch of parameter numbers and input channel size. Found parameter "
             "numbers = ",
             n, " and channel size = ", channels, ".");
  // w reshaped to [C, 1, ..., 1] broadcasts over dim 1; where/mul carry both gradients.
  Shape wshape;
  if (n > 1) {
    wshape.push_back(n);
    for (int64_t k = 2; k < x.dim(); ++k) wshape.push_back(1);
  }
  const Tensor w = reshape(weight, wshape);
  return where(gt(x, 0), x, w * x);
}

Tensor glu(const Tensor& x, int64_t dim) {
  SOMA_CHECK(x.defined(), "glu: called with an undefined tensor");
  SOMA_CHECK(x.dim() > 0, "glu: glu does not support scalars because halving size must be even");
  SOMA_CHECK(is_floating(x.dtype()), "glu: input must be float32 or float64, got ", x.dtype());
  const int64_t d = detail::wrap_dim(dim, x.dim(), "glu");
  const int64_t n = x.size(d), h = n / 2;
  SOMA_CHECK(n % 2 == 0, "glu: Halving dimension must be even, but dimension ", d, " is size ", n);
  Tensor out;
  {
    NoGradGuard no_grad;
    const Tensor xd = x.detach();
    out = narrow(xd, d, 0, h) * sigmoid(narrow(xd, d, h, h));
  }
  if (needs_grad(x)) {
    // d/da = g s,  d/db = g a s (1 - s),  s = sigmoid(b): the halves are read with narrow and
    // the gradient joined with cat, whose backward pass is a narrow again.
    record(out, "glu", {x},
           [x, d, h](const Tensor& g) -> Grads {
             const Tensor a = narrow(x, d, 0, h), s = sigmoid(narrow(x, d, h, h));
             return {cat({g * s, g * a * s * (1.0 - s)}, d)};
           },
           {x});
  }
  return out;
}

namespace {

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log, const char* op) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
  const int64_t d = detail::wrap_dim(dim, x.dim(), op);
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t k = 0; k < x.dim(); ++k) {
    if (k < d) outer *= x.size(k);
    if (k == d) n = x.size(k);
    if (k > d) inner *= x.size(k);
  }
  const Tensor xc = x.contiguous();
  Tensor out = detail::make_tensor(x.shape(), x.dtype());
  detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
    kernels::call<kernels::SoftmaxForward<T>>(xc.data<T>(), out.data<T>(), outer, n, inner, log);
  });
  if (needs_grad(x)) {
    record(out, op, {x},
           [y = out.detach(), d, outer, n, inner, log, op](const Tensor& g) -> Grads {
             if (autograd::is_grad_enabled()) {
               // softmax: dx = y (g - sum(g y));  log_softmax: dx = g - e^y sum(g)
               const Tensor ya = autograd::attach_output(y);
               if (log) return {g - exp(ya) * sum(g, d, true)};
               return {ya * (g - sum(g * ya, d, true))};
             }
             const Tensor gc = g.contiguous();
             Tensor dx = detail::make_tensor(y.shape(), y.dtype());
             detail::dispatch_float(y.dtype(), op, [&]<typename T>() {
               kernels::call<kernels::SoftmaxBackward<T>>(y.data<T>(), gc.data<T>(), dx.data<T>(),
                                                          outer, n, inner, log);
             });
             return {dx};
           },
           {out});
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  trace::Scope ts;
  Tensor out = softmax_impl(x, dim, false, "softmax");
  if (ts) ts.record("softmax", {x}, out, {{"dim", dim}});
  return out;
}
Tensor log_softmax(const Tensor& x, int64_t dim) {
  trace::Scope ts;
  Tensor out = softmax_impl(x, dim, true, "log_softmax");
  if (ts) ts.record("log_softmax", {x}, out, {{"dim", dim}});
  return out;
}
Tensor softmin(const Tensor& x, int64_t dim) {
  SOMA_CHECK(x.defined(), "softmin: called with an undefined tensor");
  SOMA_CHECK(is_floating(x.dtype()), "softmin: input must be float32 or float64, got ", x.dtype());
  return softmax(-x, dim);
}

Tensor Tensor::relu() const {
  return soma::relu(*this);
}
Tensor Tensor::sigmoid() const {
  return soma::sigmoid(*this);
}
Tensor Tensor::tanh() const {
  return soma::tanh(*this);
}
Tensor Tensor::softmax(int64_t dim) const {
  return soma::softmax(*this, dim);
}
Tensor Tensor::log_softmax(int64_t dim) const {
  return soma::log_softmax(*this, dim);
}
Tensor Tensor::softmin(int64_t dim) const {
  return soma::softmin(*this, dim);
}
Tensor Tensor::prelu(const Tensor& weight) const {
  return soma::prelu(*this, weight);
}

}  // namespace soma
