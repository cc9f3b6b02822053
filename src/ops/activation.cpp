// Activations and softmax, forward and backward side by side. Backward passes are fused
// elementwise kernels over (grad, saved tensor), e.g. relu: dx = y > 0 ? g : 0.
#include "soma/ops/activation.h"

#include <cmath>
#include <numbers>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "ops/map.h"

namespace soma {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using ops::map1;
using ops::map2;

namespace {

// y = f(x) with backward dx = df(g, saved) where saved is x or y (save_output).
template <typename F, typename DF>
Tensor activation(const Tensor& x, const char* op, bool save_output, F f, DF df) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
  Tensor out = detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
    return map1<T>(x, [f](T v) { return static_cast<T>(f(v)); });
  });
  if (needs_grad(x)) {
    const Tensor saved = save_output ? out.detach() : x.detach();
    record(out, op, {x},
           [saved, df, op](const Tensor& g) -> Grads {
             return {detail::dispatch_float(g.dtype(), op, [&]<typename T>() {
               return map2<T>(g, saved, [df](T gv, T s) { return static_cast<T>(df(gv, s)); });
             })};
           },
           {saved});
  }
  return out;
}

}  // namespace

Tensor relu(const Tensor& x) {
  return activation(
      x, "relu", true, [](auto v) { return v < 0 ? decltype(v)(0) : v; },  // NaN passes through
      [](auto g, auto y) { return y > 0 ? g : decltype(g)(0); });
}

Tensor sigmoid(const Tensor& x) {
  return activation(
      x, "sigmoid", true,
      [](auto v) {
        using T = decltype(v);
        // split by sign so exp never overflows
        return v >= 0 ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v));
      },
      [](auto g, auto y) { return g * y * (decltype(y)(1) - y); });
}

Tensor tanh(const Tensor& x) {
  return activation(
      x, "tanh", true, [](auto v) { return std::tanh(v); },
      [](auto g, auto y) { return g * (decltype(y)(1) - y * y); });
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return activation(
      x, "leaky_relu", false,
      [negative_slope](auto v) { return v > 0 ? v : static_cast<decltype(v)>(v * negative_slope); },
      [negative_slope](auto g, auto v) {
        return v > 0 ? g : static_cast<decltype(g)>(g * negative_slope);
      });
}

Tensor gelu(const Tensor& x) {
  // gelu(x) = x Phi(x);  gelu'(x) = Phi(x) + x phi(x)
  return activation(
      x, "gelu", false,
      [](auto v) {
        using T = decltype(v);
        return static_cast<T>(v * T(0.5) * (T(1) + std::erf(v * T(std::numbers::sqrt2 / 2))));
      },
      [](auto g, auto v) {
        using T = decltype(v);
        const T cdf = T(0.5) * (T(1) + std::erf(v * T(std::numbers::sqrt2 / 2)));
        const T pdf =
            std::exp(T(-0.5) * v * v) * T(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);
        return g * (cdf + v * pdf);
      });
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
           [y = out.detach(), outer, n, inner, log, op](const Tensor& g) -> Grads {
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
  return softmax_impl(x, dim, false, "softmax");
}
Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_impl(x, dim, true, "log_softmax");
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

}  // namespace soma
