// nn::functional::batch_norm, layer_norm, group_norm: fused forward kernels (statistics in one
// pass per channel, then one affine pass), backward side by side. The batch-norm training
// backward is fused when it runs without create_graph; otherwise (and for layer/group norm)
// the closures compute the gradient from differentiable ops on the inputs as they are, so
// double backward works.
//
// With xhat = (x - mean) * rstd over a statistics set of M elements, y = xhat * w + b:
//   dx = rstd * (dy w - mean(dy w) - xhat * mean(dy w xhat)),  dw = sum dy xhat,  db = sum dy.
#include "soma/nn/normalization.h"

#include <cmath>
#include <numeric>
#include <optional>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "nn/functional/normalization_internal.h"
#include "ops/trace.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma::nn {
namespace {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

int64_t product(const Shape& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= s[i];
  return p;
}

void check_float(const Tensor& x, const char* op, const char* what) {
  SOMA_CHECK(x.defined(), op, ": ", what, " is an undefined tensor");
  SOMA_CHECK(x.dtype() == kFloat32 || x.dtype() == kFloat64, op, ": expected a floating-point ",
             what, " (float32 or float64), got ", x.dtype());
}

// An optional per-channel tensor (weight, bias, running stats) of `n` elements and the input's
// dtype.
void check_vector(const Tensor& t, int64_t n, DType dtype, const char* op, const char* what) {
  if (!t.defined()) return;
  SOMA_CHECK(t.numel() == n, op, ": ", what, " should contain ", n, " elements not ", t.numel());
  SOMA_CHECK(t.dtype() == dtype, op, ": ", what, " dtype ", t.dtype(), " differs from input dtype ",
             dtype);
}

// [1, C, 1, ...] for an input of rank `dim`: broadcasts a per-channel vector.
Shape channel_shape(int64_t C, int64_t dim) {
  Shape s(static_cast<size_t>(dim), 1);
  s[1] = C;
  return s;
}

// Contiguous values of an optional vector, or `fill` repeated n times.
template <typename T>
std::vector<T> values_or(const Tensor& t, int64_t n, T fill) {
  if (!t.defined()) return std::vector<T>(static_cast<size_t>(n), fill);
  const Tensor c = t.detach().contiguous();
  return std::vector<T>(c.data<T>(), c.data<T>() + n);
}

Tensor from_values(const std::vector<double>& v, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  soma::detail::dispatch_float(dtype, "normalization", [&]<typename T>() {
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<T>(v[i]);
  });
  return t;
}

// The differentiable gradient of normalisation over dims `dims` of x (already shaped so that
// g, x and wb (the weight broadcast, or undefined) line up): returns dx, and sum(g * xhat) over
// `dims` in *dyxhat.
Tensor composed_backward(const Tensor& g, const Tensor& x, const Tensor& wb,
                         const std::vector<int64_t>& dims, double eps, Tensor* dyxhat) {
  const Tensor mu = mean(x, dims, true);
  const Tensor xc = x - mu;
  const Tensor rstd = rsqrt(mean(xc * xc, dims, true) + eps);
  const Tensor xhat = xc * rstd;
  const Tensor gw = wb.defined() ? g * wb : g;
  if (dyxhat) *dyxhat = g * xhat;
  return rstd * (gw - mean(gw, dims, true) - xhat * mean(gw * xhat, dims, true));
}

}  // namespace

// ---- batch_norm ------------------------------------------------------------------------------
Tensor detail::batch_norm_train(const Tensor& input, const Tensor& running_mean,
                                const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                                double momentum, double eps, const StatsReduce* reduce,
                                const char* op) {
  const Shape shape = input.shape();
  const int64_t N = shape[0], C = shape[1], B = product(shape, 2, shape.size());
  const int64_t local = N * B;
  const DType dtype = input.dtype();
  const Tensor x = input.detach().contiguous();
  // Per-channel mean and biased variance (local, then combined over processes).
  std::vector<double> mean_v(C), var_v(C);
  double count = static_cast<double>(local);
  soma::detail::dispatch_float(dtype, op, [&]<typename T>() {
    std::vector<T> m(C, T(0)), v(C, T(0));
    if (local > 0) kernels::call<kernels::NormStats<T>>(x.data<T>(), N, C, B, m.data(), v.data());
    for (int64_t c = 0; c < C; ++c) mean_v[c] = m[c], var_v[c] = v[c];
  });
  if (reduce) {
    // count, sum[C], sum of squares[C]
    std::vector<double> packed(static_cast<size_t>(1 + 2 * C));
    packed[0] = count;
    for (int64_t c = 0; c < C; ++c) {
      packed[1 + c] = count * mean_v[c];
      packed[1 + C + c] = count * (var_v[c] + mean_v[c] * mean_v[c]);
    }
    (*reduce)(packed);
    count = packed[0];
    for (int64_t c = 0; c < C && count > 0; ++c) {
      mean_v[c] = packed[1 + c] / count;
      var_v[c] = std::max(0.0, packed[1 + C + c] / count - mean_v[c] * mean_v[c]);
    }
  }
  SOMA_CHECK(count > 1, op, ": Expected more than 1 value per channel when training, got input ",
             "size ", shape);
  // Running statistics: running = (1 - m) running + m batch, the unbiased variance.
  {
    NoGradGuard no_grad;
    if (running_mean.defined()) {
      Tensor rm = running_mean;
      rm.mul_(1.0 - momentum).add_(from_values(mean_v, {C}, dtype).view(rm.shape()), momentum);
    }
    if (running_var.defined()) {
      std::vector<double> unbiased(var_v);
      for (double& v : unbiased) v *= count / (count - 1);
      Tensor rv = running_var;
      rv.mul_(1.0 - momentum).add_(from_values(unbiased, {C}, dtype).view(rv.shape()), momentum);
    }
  }
  std::vector<double> rstd_v(C);
  for (int64_t c = 0; c < C; ++c) rstd_v[c] = 1.0 / std::sqrt(var_v[c] + eps);
  Tensor out = empty(shape, dtype);
  soma::detail::dispatch_float(dtype, op, [&]<typename T>() {
    const std::vector<T> w = values_or<T>(weight, C, T(1)), b = values_or<T>(bias, C, T(0));
    std::vector<T> mu(C), scale(C);
    for (int64_t c = 0; c < C; ++c) {
      mu[c] = static_cast<T>(mean_v[c]);
      scale[c] = static_cast<T>(w[c] * rstd_v[c]);
    }
    if (local > 0)
      kernels::call<kernels::NormAffine<T>>(x.data<T>(), out.data<T>(), N, C, B, mu.data(),
                                            scale.data(), b.data());
  });
  if (!needs_grad(input, weight, bias)) return out;
  const bool rx = input.requires_grad(), rw = weight.defined() && weight.requires_grad(),
             rb = bias.defined() && bias.requires_grad();
  const std::string name = op;
  std::optional<StatsReduce> red;
  if (reduce) red = *reduce;
  record(out, "batch_norm", {input, weight, bias},
         [input, weight, x, mean_v, rstd_v, count, eps, rx, rw, rb, N, C, B, name,
          red](const Tensor& g) -> Grads {
           Tensor dx, dw, db;
           if (autograd::is_grad_enabled()) {
             SOMA_CHECK(!red || count == static_cast<double>(N * B), name,
                        ": double backward (create_graph) with statistics over several processes "
                        "is not supported");
             const Tensor x3 = reshape(input, {N, C, B});
             const Tensor g3 = reshape(g, {N, C, B});
             const Tensor wb = weight.defined() ? reshape(weight, {1, C, 1}) : Tensor();
             Tensor dyxhat;
             const Tensor d = composed_backward(g3, x3, wb, {0, 2}, eps, &dyxhat);
             if (rx) dx = reshape(d, input.shape());
             if (rw) dw = reshape(sum(dyxhat, {0, 2}), weight.shape());
             if (rb) db = sum(g3, {0, 2});
             return {dx, dw, db};
           }
           const Tensor gc = g.contiguous();
           const int64_t local = N * B;
           soma::detail::dispatch_float(g.dtype(), name.c_str(), [&]<typename T>() {
             std::vector<T> mean_t(C), sdy(C, T(0)), sdyx(C, T(0));
             for (int64_t c = 0; c < C; ++c) mean_t[c] = static_cast<T>(mean_v[c]);
             if (local > 0)
               kernels::call<kernels::NormBackwardReduce<T>>(
                   gc.data<T>(), x.data<T>(), N, C, B, mean_t.data(), sdy.data(), sdyx.data());
             // Local sums give the parameter gradients (averaged over ranks later, as torch's).
             std::vector<double> s1(C), s2(C);
             for (int64_t c = 0; c < C; ++c) s1[c] = sdy[c], s2[c] = sdyx[c];
             if (rw) {
               std::vector<double> v(C);
               for (int64_t c = 0; c < C; ++c) v[c] = s2[c] * rstd_v[c];
               dw = from_values(v, weight.shape(), g.dtype());
             }
             if (rb) db = from_values(s1, {C}, g.dtype());
             if (!rx) return;
             if (red) {
               std::vector<double> packed(s1);
               packed.insert(packed.end(), s2.begin(), s2.end());
               (*red)(packed);
               for (int64_t c = 0; c < C; ++c) s1[c] = packed[c], s2[c] = packed[C + c];
             }
             const std::vector<T> w = values_or<T>(weight, C, T(1));
             std::vector<T> k1(C), k2(C), k3(C);
             for (int64_t c = 0; c < C; ++c) {
               const double a = w[c] * rstd_v[c];
               const double b = -a * rstd_v[c] * rstd_v[c] * s2[c] / count;
               k1[c] = static_cast<T>(a);
               k2[c] = static_cast<T>(b);
               k3[c] = static_cast<T>(-a * s1[c] / count);
             }
             dx = empty(input.shape(), g.dtype());
             if (local > 0)
               kernels::call<kernels::NormBackwardApply<T>>(gc.data<T>(), x.data<T>(), dx.data<T>(),
                                                            N, C, B, mean_t.data(), k1.data(),
                                                            k2.data(), k3.data());
           });
           return {dx, dw, db};
         },
         {x});
  return out;
}

namespace functional {

static Tensor batch_norm_untraced(const Tensor& input, const Tensor& running_mean,
                                  const Tensor& running_var, const Tensor& weight,
                                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  check_float(input, op, "input");
  SOMA_CHECK(input.dim() >= 2, op, ": expected an input of at least 2 dims [N, C, *], got shape ",
             input.shape());
  const int64_t C = input.size(1);
  check_vector(running_mean, C, input.dtype(), op, "running_mean");
  check_vector(running_var, C, input.dtype(), op, "running_var");
  check_vector(weight, C, input.dtype(), op, "weight");
  check_vector(bias, C, input.dtype(), op, "bias");
  if (training)
    return detail::batch_norm_train(input, running_mean, running_var, weight, bias, momentum, eps,
                                    nullptr, op);
  SOMA_CHECK(running_mean.defined() && running_var.defined(), op,
             ": running_mean and running_var must be defined in evaluation mode");
  if (needs_grad(input, weight, bias, running_mean, running_var)) {
    // Differentiable composition (also in the running statistics).
    const Shape cs = channel_shape(C, input.dim());
    Tensor scale = rsqrt(reshape(running_var, cs) + eps);
    if (weight.defined()) scale = scale * reshape(weight, cs);
    Tensor shift = neg(reshape(running_mean, cs) * scale);
    if (bias.defined()) shift = shift + reshape(bias, cs);
    return input * scale + shift;
  }
  const Shape shape = input.shape();
  const int64_t N = shape[0], B = product(shape, 2, shape.size());
  const Tensor x = input.contiguous();
  Tensor out = empty(shape, input.dtype());
  soma::detail::dispatch_float(input.dtype(), op, [&]<typename T>() {
    const std::vector<T> w = values_or<T>(weight, C, T(1)), b = values_or<T>(bias, C, T(0));
    const std::vector<T> rm = values_or<T>(running_mean, C, T(0)),
                         rv = values_or<T>(running_var, C, T(1));
    std::vector<T> scale(C);
    for (int64_t c = 0; c < C; ++c)
      scale[c] = static_cast<T>(w[c] / std::sqrt(static_cast<double>(rv[c]) + eps));
    if (x.numel() > 0)
      kernels::call<kernels::NormAffine<T>>(x.data<T>(), out.data<T>(), N, C, B, rm.data(),
                                            scale.data(), b.data());
  });
  return out;
}

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  trace::Scope ts;
  Tensor out =
      batch_norm_untraced(input, running_mean, running_var, weight, bias, training, momentum, eps);
  if (ts)
    ts.record("batch_norm", {input, running_mean, running_var, weight, bias}, out,
              {{"training", int64_t{training}}, {"eps", eps}});
  return out;
}

// ---- layer_norm ------------------------------------------------------------------------------
static Tensor layer_norm_untraced(const Tensor& input, const std::vector<int64_t>& normalized_shape,
                                  const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  check_float(input, op, "input");
  const Shape shape = input.shape();
  const size_t k = normalized_shape.size();
  bool ok = k >= 1 && k <= shape.size();
  for (size_t i = 0; ok && i < k; ++i) ok = shape[shape.size() - k + i] == normalized_shape[i];
  SOMA_CHECK(ok, op, ": Given normalized_shape=", Shape(normalized_shape),
             ", expected input with shape [*, ", shape_str(normalized_shape).substr(1),
             ", but got input of size ", shape);
  for (const Tensor* t : {&weight, &bias}) {
    if (!t->defined()) continue;
    SOMA_CHECK(
        t->shape() == Shape(normalized_shape), op, ": Expected ", t == &weight ? "weight" : "bias",
        " to be of same shape as normalized_shape, but got ", t == &weight ? "weight" : "bias",
        " of shape ", t->shape(), " and normalized_shape = ", Shape(normalized_shape));
    SOMA_CHECK(t->dtype() == input.dtype(), op, ": ", t == &weight ? "weight" : "bias", " dtype ",
               t->dtype(), " differs from input dtype ", input.dtype());
  }
  const int64_t K = product(shape, shape.size() - k, shape.size());
  const int64_t M = product(shape, 0, shape.size() - k);
  const Tensor x = input.detach().contiguous();
  Tensor out = empty(shape, input.dtype());
  Tensor mean_t = empty({M, 1}, input.dtype()), rstd_t = empty({M, 1}, input.dtype());
  soma::detail::dispatch_float(input.dtype(), op, [&]<typename T>() {
    if (M * K == 0) return;
    T* mu = mean_t.data<T>();
    T* rs = rstd_t.data<T>();
    kernels::call<kernels::NormStats<T>>(x.data<T>(), int64_t{1}, M, K, mu, rs);
    for (int64_t m = 0; m < M; ++m)
      rs[m] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(rs[m]) + eps));
    const Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
    const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
    kernels::call<kernels::LayerNormApply<T>>(x.data<T>(), out.data<T>(), M, K, mu, rs,
                                              w.defined() ? w.data<T>() : nullptr,
                                              b.defined() ? b.data<T>() : nullptr);
  });
  if (!needs_grad(input, weight, bias)) return out;
  const bool rx = input.requires_grad(), rw = weight.defined() && weight.requires_grad(),
             rb = bias.defined() && bias.requires_grad();
  record(out, "layer_norm", {input, weight, bias},
         [input, weight, mean_t, rstd_t, eps, rx, rw, rb, M, K](const Tensor& g) -> Grads {
           Tensor dx, dw, db;
           const Tensor g2 = reshape(g, {M, K});
           const Tensor wb = weight.defined() ? reshape(weight, {1, K}) : Tensor();
           Tensor dyxhat;
           if (autograd::is_grad_enabled()) {
             dx = composed_backward(g2, reshape(input, {M, K}), wb, {1}, eps, &dyxhat);
           } else {
             const Tensor xhat = (reshape(input.detach(), {M, K}) - mean_t) * rstd_t;
             const Tensor gw = wb.defined() ? g2 * wb : g2;
             dyxhat = g2 * xhat;
             if (rx) dx = rstd_t * (gw - mean(gw, {1}, true) - xhat * mean(gw * xhat, {1}, true));
           }
           if (rx) dx = reshape(dx, input.shape());
           if (rw) dw = reshape(sum(dyxhat, {0}), weight.shape());
           if (rb) db = reshape(sum(g2, {0}), weight.defined() ? weight.shape() : Shape{K});
           return {dx, dw, db};
         },
         {mean_t, rstd_t});
  return out;
}

Tensor layer_norm(const Tensor& input, const std::vector<int64_t>& normalized_shape,
                  const Tensor& weight, const Tensor& bias, double eps) {
  trace::Scope ts;
  Tensor out = layer_norm_untraced(input, normalized_shape, weight, bias, eps);
  if (ts)
    ts.record("layer_norm", {input, weight, bias}, out,
              {{"normalized_shape", normalized_shape}, {"eps", eps}});
  return out;
}

// ---- group_norm ------------------------------------------------------------------------------
Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const char* op = "group_norm";
  check_float(input, op, "input");
  SOMA_CHECK(input.dim() >= 2, op, ": Expected at least 2 dimensions for input tensor but ",
             "received ", input.dim());
  const Shape shape = input.shape();
  const int64_t N = shape[0], C = shape[1], S = product(shape, 2, shape.size());
  SOMA_CHECK(num_groups > 0 && C % num_groups == 0, op,
             ": Expected number of channels in input to be divisible by num_groups, but got ",
             "input of shape ", shape, " and num_groups=", num_groups);
  for (const Tensor* t : {&weight, &bias}) {
    if (!t->defined()) continue;
    const char* what = t == &weight ? "weight" : "bias";
    SOMA_CHECK(t->dim() == 1 && t->numel() == C, op, ": Expected ", what,
               " to be a vector of size equal to the number of channels in input, but got ", what,
               " of shape ", t->shape(), " and input of shape ", shape);
    SOMA_CHECK(t->dtype() == input.dtype(), op, ": ", what, " dtype ", t->dtype(),
               " differs from input dtype ", input.dtype());
  }
  const int64_t G = num_groups, R = C / G * S;
  const Tensor x = input.detach().contiguous();
  Tensor out = empty(shape, input.dtype());
  soma::detail::dispatch_float(input.dtype(), op, [&]<typename T>() {
    if (N * C * S == 0) return;
    std::vector<T> mu(N * G), var(N * G);
    kernels::call<kernels::NormStats<T>>(x.data<T>(), int64_t{1}, N * G, R, mu.data(), var.data());
    const std::vector<T> w = values_or<T>(weight, C, T(1)), b = values_or<T>(bias, C, T(0));
    std::vector<T> centre(N * C), scale(N * C), shift(N * C);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t ng = n * G + c / (C / G);
        const double rs = 1.0 / std::sqrt(static_cast<double>(var[ng]) + eps);
        centre[n * C + c] = mu[ng];
        scale[n * C + c] = static_cast<T>(w[c] * rs);
        shift[n * C + c] = b[c];
      }
    kernels::call<kernels::NormAffine<T>>(x.data<T>(), out.data<T>(), int64_t{1}, N * C, S,
                                          centre.data(), scale.data(), shift.data());
  });
  if (!needs_grad(input, weight, bias)) return out;
  const bool rx = input.requires_grad(), rw = weight.defined() && weight.requires_grad(),
             rb = bias.defined() && bias.requires_grad();
  record(out, "group_norm", {input, weight, bias},
         [input, weight, eps, rx, rw, rb, N, C, G, S, R](const Tensor& g) -> Grads {
           Tensor dx, dw, db;
           const Tensor g3 = reshape(g, {N, C, S});
           const Tensor gw = weight.defined() ? g3 * reshape(weight, {1, C, 1}) : g3;
           const Tensor xg = reshape(input, {N, G, R});
           // dx over the groups, with the weight folded into the incoming gradient.
           const Tensor mu = mean(xg, {2}, true);
           const Tensor xc = xg - mu;
           const Tensor rstd = rsqrt(mean(xc * xc, {2}, true) + eps);
           const Tensor xhat = xc * rstd;
           const Tensor gwg = reshape(gw, {N, G, R});
           if (rx)
             dx = reshape(rstd * (gwg - mean(gwg, {2}, true) - xhat * mean(gwg * xhat, {2}, true)),
                          input.shape());
           if (rw) dw = sum(g3 * reshape(xhat, {N, C, S}), {0, 2});
           if (rb) db = sum(g3, {0, 2});
           return {dx, dw, db};
         },
         {});
  return out;
}

}  // namespace functional
}  // namespace soma::nn
