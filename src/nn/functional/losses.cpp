// nn::functional's losses: MSE, L1, binary cross-entropy (on probabilities and on logits),
// negative log-likelihood and cross-entropy (fused with softmax for plain class targets).
// Forward and backward side by side; fused backward passes are named as such.
#include <cmath>
#include <string>
#include <type_traits>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/cpu/exp.h"
#include "kernels/kernels.h"
#include "ops/map.h"
#include "soma/core/error.h"
#include "soma/nn/functional.h"
#include "soma/ops/activation.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma::nn::functional {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

namespace {

Tensor reduce(const Tensor& l, Reduction reduction) {
  switch (reduction) {
    case Reduction::None:
      return l;
    case Reduction::Sum:
      return sum(l);
    case Reduction::Mean:
      return mean(l);
  }
  return l;
}

void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  SOMA_CHECK(input.defined() && target.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(input.shape() == target.shape(), op, ": input shape ", input.shape(),
             " and target shape ", target.shape(), " differ");
  SOMA_CHECK(is_floating(input.dtype()) && input.dtype() == target.dtype(), op,
             ": input and target must have the same floating-point dtype, got ", input.dtype(),
             " and ", target.dtype());
}

// Index and value of the first element of t outside [lo, hi] (or NaN); -1 if none.
std::pair<int64_t, double> first_outside(const Tensor& t, double lo, double hi) {
  const std::vector<double> v = t.to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i)
    if (!(v[i] >= lo && v[i] <= hi)) return {static_cast<int64_t>(i), v[i]};
  return {-1, 0.0};
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, LossOptions options) {
  check_pair(input, target, "mse_loss");
  const Tensor d = input - target;
  return reduce(d * d, options.reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, LossOptions options) {
  check_pair(input, target, "l1_loss");
  return reduce(abs(input - target), options.reduction);
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, BCEOptions options) {
  check_pair(input, target, "binary_cross_entropy");
  if (auto [i, v] = first_outside(input, 0.0, 1.0); i >= 0)
    detail::fail("binary_cross_entropy: input values must be probabilities in [0, 1], got ", v,
                 " at flat index ", i);
  if (auto [i, v] = first_outside(target, 0.0, 1.0); i >= 0)
    detail::fail("binary_cross_entropy: target values must be in [0, 1], got ", v,
                 " at flat index ", i);
  // l = -(t max(log p, -100) + (1 - t) max(log(1 - p), -100))
  Tensor l = detail::dispatch_float(input.dtype(), "binary_cross_entropy", [&]<typename T>() {
    return ops::map2<T>(input, target, [](T p, T t) {
      const T lp = std::max(std::log(p), T(-100)), lq = std::max(std::log1p(-p), T(-100));
      return -(t * lp + (T(1) - t) * lq);
    });
  });
  if (needs_grad(input, target)) {
    // dl/dp = (p - t) / max(p (1 - p), eps)   (PyTorch's binary_cross_entropy_backward, whose
    // eps is the float 1e-12f in every dtype);  dl/dt = log(1 - p) - log(p) = -logit(p)
    record(l, "binary_cross_entropy", {input, target},
           [input, target, p = input.detach(), t = target.detach(), rp = input.requires_grad(),
            rt = target.requires_grad()](const Tensor& g) -> Grads {
             Tensor dp, dt;
             if (autograd::is_grad_enabled()) {  // create_graph: differentiable in both
               if (rp) {
                 const Tensor denom = maximum((1.0 - input) * input,
                                              full({}, static_cast<double>(1e-12f), p.dtype()));
                 dp = g * ((input - target) / denom);
               }
               if (rt) dt = g * (log(1.0 - input) - log(input));
               return {dp, dt};
             }
             detail::dispatch_float(p.dtype(), "bce backward", [&]<typename T>() {
               if (rp)
                 dp = g * ops::map2<T>(p, t, [](T pv, T tv) {
                        return (pv - tv) / std::max((T(1) - pv) * pv, static_cast<T>(1e-12f));
                      });
               if (rt)
                 dt = g * ops::map1<T>(p, [](T pv) { return std::log1p(-pv) - std::log(pv); });
             });
             return {dp, dt};
           },
           {input, target});
  }
  if (options.weight.defined()) l = l * options.weight;
  return reduce(l, options.reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        BCEWithLogitsOptions options) {
  check_pair(input, target, "binary_cross_entropy_with_logits");
  const Tensor pw = options.pos_weight.defined() ? options.pos_weight : ones({}, input.dtype());
  SOMA_CHECK(pw.dtype() == input.dtype(), "binary_cross_entropy_with_logits: pos_weight dtype ",
             pw.dtype(), " differs from input dtype ", input.dtype());
  SOMA_CHECK(broadcast_shapes(input.shape(), pw.shape(), "binary_cross_entropy_with_logits") ==
                 input.shape(),
             "binary_cross_entropy_with_logits: pos_weight of shape ", pw.shape(),
             " cannot be broadcast to input of shape ", input.shape());
  SOMA_CHECK(!pw.requires_grad() || !autograd::is_grad_enabled(),
             "binary_cross_entropy_with_logits: the gradient with respect to pos_weight is not ",
             "implemented");
  // softplus(-x) = log(1 + e^-|x|) + max(-x, 0), exact for any x
  Tensor l =
      detail::dispatch_float(input.dtype(), "binary_cross_entropy_with_logits", [&]<typename T>() {
        Tensor out = empty(input.shape(), input.dtype());
        ops::apply3<T, T, T>(out, input, target, pw, [](T x, T t, T w) {
          const T sp = std::log1p(std::exp(-std::abs(x))) + std::max(-x, T(0));
          return (T(1) - t) * x + (T(1) + (w - T(1)) * t) * sp;
        });
        return out;
      });
  if (needs_grad(input, target)) {
    // dl/dx = (1 + (pw - 1) t) sigmoid(x) - pw t;   dl/dt = -x + (pw - 1) softplus(-x)
    record(l, "binary_cross_entropy_with_logits", {input, target},
           [input, target, x = input.detach(), t = target.detach(), pw = pw.detach(),
            rx = input.requires_grad(), rt = target.requires_grad()](const Tensor& g) -> Grads {
             if (autograd::is_grad_enabled()) {  // create_graph: differentiable in input, target
               Tensor dx, dt;
               if (rx) dx = g * ((1.0 + (pw - 1.0) * target) * sigmoid(input) - pw * target);
               if (rt) dt = g * ((pw - 1.0) * softplus(-input) - input);
               return {dx, dt};
             }
             return detail::dispatch_float(
                 x.dtype(), "bce_with_logits backward", [&]<typename T>() -> Grads {
                   Tensor dx, dt;
                   if (rx) {
                     dx = empty(x.shape(), x.dtype());
                     ops::apply3<T, T, T>(dx, x, t, pw, [](T xv, T tv, T w) {
                       const T s = xv >= 0 ? T(1) / (T(1) + std::exp(-xv))
                                           : std::exp(xv) / (T(1) + std::exp(xv));
                       return (T(1) + (w - T(1)) * tv) * s - w * tv;
                     });
                     dx = g * dx;
                   }
                   if (rt) {
                     dt = empty(x.shape(), x.dtype());
                     ops::apply3<T, T, T>(dt, x, t, pw, [](T xv, T, T w) {
                       const T sp = std::log1p(std::exp(-std::abs(xv))) + std::max(-xv, T(0));
                       return -xv + (w - T(1)) * sp;
                     });
                     dt = g * dt;
                   }
                   return {dx, dt};
                 });
           },
           {input, target});
  }
  if (options.weight.defined()) l = l * options.weight;
  return reduce(l, options.reduction);
}

namespace {

struct ClassTargets {
  Tensor input;   // [N, C]
  Tensor target;  // [N] int64
  bool scalar;    // the caller passed [C] and []
};

// Accepts input [N, C] with target [N], or input [C] with target [] (one sample).
ClassTargets class_targets(const Tensor& input, const Tensor& target, int64_t ignore_index,
                           const char* op) {
  SOMA_CHECK(input.defined() && target.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(is_floating(input.dtype()), op, ": input must be floating-point, got ", input.dtype());
  SOMA_CHECK(target.dtype() == kInt64, op, ": class targets must be int64, got ", target.dtype());
  ClassTargets ct{input, target, false};
  if (input.dim() == 1 && target.dim() == 0) {
    ct = {unsqueeze(input, 0), reshape(target, {1}), true};
  }
  SOMA_CHECK(ct.input.dim() == 2, op, ": input must have shape [N, C] or [C], got ", input.shape());
  SOMA_CHECK(ct.target.dim() == 1 && ct.target.size(0) == ct.input.size(0), op, ": input of shape ",
             input.shape(), " and target of shape ", target.shape(), " do not match (expected ",
             "target [", ct.input.size(0), "])");
  const int64_t C = ct.input.size(1);
  // The labels are read from a named contiguous copy that lives through the loop (a pointer
  // into a temporary contiguous() read freed memory for a strided target).
  const Tensor labels = ct.target.contiguous();
  const int64_t* y = labels.data<int64_t>();
  for (int64_t i = 0; i < ct.target.size(0); ++i)
    SOMA_CHECK((y[i] >= 0 && y[i] < C) || y[i] == ignore_index, op, ": target ", y[i],
               " is out of range for ", C, " classes (sample ", i, ")");
  return ct;
}

Tensor check_class_weight(const Tensor& weight, const Tensor& input, const char* op) {
  if (!weight.defined()) return weight;
  SOMA_CHECK(weight.dim() == 1 && weight.size(0) == input.size(1), op, ": weight of shape ",
             weight.shape(), " does not match ", input.size(1), " classes");
  SOMA_CHECK(weight.dtype() == input.dtype(), op, ": weight dtype ", weight.dtype(),
             " differs from input dtype ", input.dtype());
  return weight;
}

// Scale of each sample's gradient for reduction r: g (sum), g / denom (mean), g[i] (none).
Tensor reduced_output(const Tensor& per_sample, Reduction r, double denom, bool scalar) {
  if (r == Reduction::None) return scalar ? reshape(per_sample, {}) : per_sample;
  Tensor s = sum(per_sample);
  return r == Reduction::Mean ? s / denom : s;
}

// The upstream gradient of a per-sample loss reduced by r, as a [N, 1] or [] tensor that
// scales row i of the input's gradient: g[i] (none), g / denom (mean), g (sum).
Tensor per_sample_scale(const Tensor& g, Reduction r, double denom, int64_t N) {
  if (r == Reduction::None) return reshape(g, {N, 1});
  if (r == Reduction::Mean) return denom == 0.0 ? g * 0.0 : g / denom;  // all ignored: no grad
  return g;
}

// nll over [N, C] log-probabilities; also the tail of the fused cross-entropy.
//   l_i = -w[y_i] x[i, y_i]; mean divides by sum_i w[y_i] over non-ignored i.
Tensor nll_impl(const Tensor& logp, const Tensor& target, const Tensor& weight,
                int64_t ignore_index, Reduction reduction, bool scalar) {
  const int64_t N = logp.size(0), C = logp.size(1);
  const Tensor y = target.contiguous();
  const std::vector<int64_t> ys = y.to_vector<int64_t>();
  const std::vector<double> ws =
      weight.defined() ? weight.to_vector<double>() : std::vector<double>();
  std::vector<double> wi(static_cast<size_t>(N));
  double denom = 0;
  for (int64_t i = 0; i < N; ++i) {
    wi[i] = ys[i] == ignore_index ? 0.0 : (weight.defined() ? ws[ys[i]] : 1.0);
    denom += wi[i];
  }
  Tensor per = empty({N}, logp.dtype());
  const Tensor lp = logp.detach().contiguous();
  detail::dispatch_float(logp.dtype(), "nll_loss", [&]<typename T>() {
    const T* x = lp.data<T>();
    T* l = per.data<T>();
    for (int64_t i = 0; i < N; ++i)
      l[i] = wi[i] == 0.0 ? T(0) : static_cast<T>(-wi[i] * x[i * C + ys[i]]);
  });
  Tensor out;
  {
    NoGradGuard no_grad;
    out = reduced_output(per, reduction, denom, scalar);
  }
  if (needs_grad(logp)) {
    record(out, "nll_loss", {logp},
           [ys, wi, N, C, denom, reduction, shape = logp.shape()](const Tensor& g) -> Grads {
             if (autograd::is_grad_enabled()) {
               // create_graph: dx = M * g' with the constant M[i, y_i] = -w_i (nll is linear in
               // its input), g' the upstream gradient per sample, so dx is differentiable in g.
               Tensor m = zeros(shape, g.dtype());
               detail::dispatch_float(g.dtype(), "nll_loss backward", [&]<typename T>() {
                 T* d = m.data<T>();
                 for (int64_t i = 0; i < N; ++i)
                   if (wi[i] != 0.0) d[i * C + ys[i]] = static_cast<T>(-wi[i]);
               });
               return {m * per_sample_scale(g, reduction, denom, N)};
             }
             Tensor dx = zeros(shape, g.dtype());
             const std::vector<double> gs = g.to_vector<double>();
             detail::dispatch_float(g.dtype(), "nll_loss backward", [&]<typename T>() {
               T* d = dx.data<T>();
               for (int64_t i = 0; i < N; ++i) {
                 if (wi[i] == 0.0) continue;
                 const double gi = reduction == Reduction::None   ? gs[i]
                                   : reduction == Reduction::Mean ? gs[0] / denom
                                                                  : gs[0];
                 d[i * C + ys[i]] = static_cast<T>(-wi[i] * gi);
               }
             });
             return {dx};
           });
  }
  return out;
}

// Fused softmax + cross-entropy for class targets without weights or smoothing:
//   l_i = logsumexp(x_i) - x[i, y_i];   dx_i = (softmax(x_i) - onehot(y_i)) * scale_i
Tensor fused_cross_entropy(const Tensor& x, const Tensor& target, int64_t ignore_index,
                           Reduction reduction, bool scalar) {
  const int64_t N = x.size(0), C = x.size(1);
  const std::vector<int64_t> ys = target.to_vector<int64_t>();
  const Tensor xc = x.detach().contiguous();
  Tensor logp = empty({N, C}, x.dtype());
  Tensor per = empty({N}, x.dtype());
  double count = 0;
  for (int64_t y : ys) count += y != ignore_index;
  detail::dispatch_float(x.dtype(), "cross_entropy", [&]<typename T>() {
    kernels::call<kernels::SoftmaxForward<T>>(xc.data<T>(), logp.data<T>(), N, C, 1, /*log=*/true);
    const T* lp = logp.data<T>();
    T* l = per.data<T>();
    for (int64_t i = 0; i < N; ++i) l[i] = ys[i] == ignore_index ? T(0) : -lp[i * C + ys[i]];
  });
  Tensor out;
  {
    NoGradGuard no_grad;
    out = reduced_output(per, reduction, count, scalar);
  }
  if (needs_grad(x)) {
    record(out, "cross_entropy", {x},
           [x, logp, ys, N, C, count, reduction, ignore_index,
            shape = x.shape()](const Tensor& g) -> Grads {
             if (autograd::is_grad_enabled()) {
               // create_graph: dx = (softmax(x) keep - onehot(y)) * g', differentiable in x and g
               Tensor keep = zeros({N, 1}, g.dtype()), hot = zeros({N, C}, g.dtype());
               detail::dispatch_float(g.dtype(), "cross_entropy backward", [&]<typename T>() {
                 for (int64_t i = 0; i < N; ++i) {
                   if (ys[i] == ignore_index) continue;
                   keep.data<T>()[i] = T(1);
                   hot.data<T>()[i * C + ys[i]] = T(1);
                 }
               });
               const Tensor dx =
                   (softmax(x, 1) * keep - hot) * per_sample_scale(g, reduction, count, N);
               return {reshape(dx, shape)};
             }
             Tensor dx = empty({N, C}, g.dtype());
             const std::vector<double> gs = g.to_vector<double>();
             detail::dispatch_float(g.dtype(), "cross_entropy backward", [&]<typename T>() {
               const T* lp = logp.data<T>();
               T* d = dx.data<T>();
               if constexpr (std::is_same_v<T, float>)
                 kernels::cpu::exp_float(lp, d, N * C);  // PyTorch's bits, 16 lanes at a time
               for (int64_t i = 0; i < N; ++i) {
                 T* row = d + i * C;
                 if (ys[i] == ignore_index) {
                   std::fill_n(row, C, T(0));
                   continue;
                 }
                 const T s = static_cast<T>(reduction == Reduction::None   ? gs[i]
                                            : reduction == Reduction::Mean ? gs[0] / count
                                                                           : gs[0]);
                 if constexpr (std::is_same_v<T, float>) {
                   for (int64_t c = 0; c < C; ++c) row[c] *= s;
                 } else {
                   for (int64_t c = 0; c < C; ++c) row[c] = std::exp(lp[i * C + c]) * s;
                 }
                 row[ys[i]] -= s;
               }
             });
             return {dx.view(shape)};
           });
  }
  return out;
}

}  // namespace

Tensor nll_loss(const Tensor& input, const Tensor& target, NLLOptions options) {
  ClassTargets ct = class_targets(input, target, options.ignore_index, "nll_loss");
  check_class_weight(options.weight, ct.input, "nll_loss");
  return nll_impl(ct.input, ct.target, options.weight, options.ignore_index, options.reduction,
                  ct.scalar);
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, CrossEntropyOptions options) {
  const double eps = options.label_smoothing;
  SOMA_CHECK(eps >= 0.0 && eps <= 1.0, "cross_entropy: label_smoothing must be in [0, 1], got ",
             eps);
  SOMA_CHECK(input.defined() && target.defined(), "cross_entropy: called with an undefined tensor");
  if (is_floating(target.dtype())) {
    // Probability targets: l_i = -sum_c w_c t'_ic log p_ic, t' = (1 - eps) t + eps / C;
    // mean divides by N (PyTorch's cross_entropy with probability targets).
    check_pair(input, target, "cross_entropy");
    SOMA_CHECK(input.dim() == 2 || input.dim() == 1, "cross_entropy: input must have shape ",
               "[N, C] or [C], got ", input.shape());
    const int64_t cdim = input.dim() == 2 ? 1 : 0;
    const int64_t C = input.size(cdim);
    Tensor t = eps > 0 ? target * (1.0 - eps) + eps / static_cast<double>(C) : target;
    Tensor prod = log_softmax(input, cdim) * t;
    if (options.weight.defined()) {
      SOMA_CHECK(options.weight.shape() == Shape{C} && options.weight.dtype() == input.dtype(),
                 "cross_entropy: weight of shape ", options.weight.shape(), " and dtype ",
                 options.weight.dtype(), " does not match ", C, " classes of ", input.dtype());
      prod = prod * options.weight;
    }
    Tensor per = -sum(prod, cdim);
    if (options.reduction == Reduction::None) return per;
    return options.reduction == Reduction::Sum
               ? sum(per)
               : sum(per) / static_cast<double>(input.dim() == 2 ? input.size(0) : 1);
  }
  ClassTargets ct = class_targets(input, target, options.ignore_index, "cross_entropy");
  const Tensor weight = check_class_weight(options.weight, ct.input, "cross_entropy");
  if (!weight.defined() && eps == 0.0)
    return fused_cross_entropy(ct.input, ct.target, options.ignore_index, options.reduction,
                               ct.scalar);
  // General case (PyTorch's cross_entropy_loss_label_smoothing):
  //   (1 - eps) nll(log_softmax(x), y) + eps / C * smooth,  smooth_i = -sum_c w_c logp_ic
  const Tensor logp = log_softmax(ct.input, 1);
  Tensor loss =
      nll_impl(logp, ct.target, weight, options.ignore_index, options.reduction, ct.scalar);
  if (eps == 0.0) return loss;
  const int64_t C = ct.input.size(1);
  Tensor smooth = -sum(weight.defined() ? logp * weight : logp, 1);
  const Tensor keep = ne(ct.target, full({}, static_cast<double>(options.ignore_index), kInt64));
  smooth = where(keep, smooth, zeros({}, smooth.dtype()));
  Tensor ret;
  if (options.reduction == Reduction::None) {
    ret = ct.scalar ? reshape(smooth, {}) : smooth;
  } else if (options.reduction == Reduction::Sum) {
    ret = sum(smooth);
  } else {
    double denom = 0;
    const std::vector<int64_t> ys = ct.target.to_vector<int64_t>();
    const std::vector<double> ws =
        weight.defined() ? weight.to_vector<double>() : std::vector<double>();
    for (int64_t y : ys)
      if (y != options.ignore_index) denom += weight.defined() ? ws[y] : 1.0;
    ret = sum(smooth) / denom;
  }
  return loss * (1.0 - eps) + ret * (eps / static_cast<double>(C));
}

}  // namespace soma::nn::functional
