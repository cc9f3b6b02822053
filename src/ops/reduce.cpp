// Reductions (sum, mean, max, min, argmax, amax, amin, prod, var, std, norm, logsumexp, all,
// any) and scans (cumsum, cumprod) with their backward passes.
#include "soma/ops/reduce.h"

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "ops/map.h"
#include "ops/reduce_internal.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/shape.h"

namespace soma {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

namespace {

using detail::Split;
using detail::split;

Shape reduced_shape(const Shape& shape, int64_t dim, bool keepdim) {
  Shape out = shape;
  if (out.empty()) return out;
  if (keepdim)
    out[dim] = 1;
  else
    out.erase(out.begin() + dim);
  return out;
}

Tensor sum_impl(const Tensor& x, bool all, int64_t dim, bool keepdim, const char* op) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
  if (is_reduced_floating(x.dtype()))  // accumulate in float32 and round once, like torch
    return sum_impl(x.to(kFloat32), all, dim, keepdim, op).to(x.dtype());
  const Tensor xc = x.contiguous();
  const int64_t d = all ? 0 : detail::wrap_dim(dim, x.dim(), op);
  const Split s = all ? Split{1, x.numel(), 1} : split(x.shape(), d);
  const Shape shape = all ? Shape{} : reduced_shape(x.shape(), d, keepdim);
  // sums of bool and of narrow integers (uint8, int8, int32) are int64, as in torch
  const bool widen = x.dtype() == kBool || is_integral(x.dtype(), false);
  const DType out_dtype = widen ? kInt64 : x.dtype();
  Tensor src = widen ? xc.to(kInt64) : xc;
  Tensor out = detail::make_tensor(shape, out_dtype);
  detail::dispatch_numeric(out_dtype, op, [&]<typename T>() {
    kernels::call<kernels::SumDim<T>>(src.data<T>(), out.data<T>(), s.outer, s.n, s.inner);
  });
  if (needs_grad(x)) {
    record(out, op, {x}, [shape = x.shape(), d = all ? -1 : d, keepdim](const Tensor& g) -> Grads {
      const Tensor gk = keepdim || shape.empty() || d < 0 ? g : unsqueeze(g, d);
      return {expand(gk, shape)};
    });
  }
  return out;
}

// max/min along a dim: values (differentiable) and indices.
std::pair<Tensor, Tensor> extremum_impl(const Tensor& x, int64_t dim, bool keepdim, bool is_max,
                                        const char* op) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
  const int64_t d = detail::wrap_dim(dim, x.dim(), op);
  SOMA_CHECK(x.dim() == 0 || x.size(d) > 0, op, ": cannot reduce dimension ", dim,
             " of size 0 (shape ", x.shape(), ")");
  const Tensor xc = x.contiguous();
  const Split s = x.dim() == 0 ? Split{} : split(x.shape(), d);
  const Shape shape = reduced_shape(x.shape(), d, keepdim);
  Tensor values = detail::make_tensor(shape, x.dtype());
  Tensor indices = detail::make_tensor(shape, kInt64);
  detail::dispatch_numeric(x.dtype(), op, [&]<typename T>() {
    kernels::call<kernels::ExtremumDim<T>>(xc.data<T>(), values.data<T>(), indices.data<int64_t>(),
                                           s.outer, s.n, s.inner, is_max);
  });
  if (needs_grad(x)) {
    // The gradient goes to the position the index picked (put_along: differentiable in g).
    record(values, op, {x}, [shape = x.shape(), d, keepdim, indices](const Tensor& g) -> Grads {
      if (shape.empty()) return {g};
      const Tensor gk = keepdim ? g : unsqueeze(g, d);
      const Tensor ik = keepdim ? indices : unsqueeze(indices, d);
      return {detail::put_along(gk, d, ik.contiguous(), shape)};
    });
  }
  return {values, indices};
}

// max/min over all elements; the gradient is split evenly between tied extrema.
Tensor extremum_all(const Tensor& x, bool is_max, const char* op) {
  SOMA_CHECK(x.defined() && x.numel() > 0, op, ": cannot reduce an empty tensor",
             x.defined() ? " of shape " + shape_str(x.shape()) : std::string());
  Tensor out;
  {
    NoGradGuard no_grad;
    out = extremum_impl(x.reshape({-1}), 0, false, is_max, op).first;
  }
  if (needs_grad(x)) detail::record_evenly(out, op, x, {}, false);
  return out;
}

}  // namespace

Tensor sum(const Tensor& x) {
  return sum_impl(x, true, 0, false, "sum");
}
Tensor sum(const Tensor& x, int64_t dim, bool keepdim) {
  return sum_impl(x, false, dim, keepdim, "sum");
}

Tensor mean(const Tensor& x) {
  SOMA_CHECK(x.defined() && is_floating(x.dtype()), "mean: expected a floating-point tensor",
             x.defined() ? ", got " + std::string(dtype_name(x.dtype())) : std::string());
  if (is_reduced_floating(x.dtype())) return mean(x.to(kFloat32)).to(x.dtype());  // one rounding
  return sum(x) / static_cast<double>(x.numel());
}

Tensor mean(const Tensor& x, int64_t dim, bool keepdim) {
  SOMA_CHECK(x.defined() && is_floating(x.dtype()), "mean: expected a floating-point tensor",
             x.defined() ? ", got " + std::string(dtype_name(x.dtype())) : std::string());
  if (is_reduced_floating(x.dtype())) return mean(x.to(kFloat32), dim, keepdim).to(x.dtype());
  const int64_t d = detail::wrap_dim(dim, x.dim(), "mean");
  return sum(x, dim, keepdim) / static_cast<double>(x.dim() == 0 ? 1 : x.size(d));
}

Tensor max(const Tensor& x) {
  return extremum_all(x, true, "max");
}
Tensor min(const Tensor& x) {
  return extremum_all(x, false, "min");
}
std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  auto [v, i] = extremum_impl(x, dim, keepdim, true, "max");
  return {v, i};
}
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  auto [v, i] = extremum_impl(x, dim, keepdim, false, "min");
  return {v, i};
}

Tensor argmax(const Tensor& x) {
  SOMA_CHECK(x.defined(), "argmax: called with an undefined tensor");
  NoGradGuard no_grad;
  return extremum_impl(x.reshape({-1}), 0, false, true, "argmax").second;
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return extremum_impl(x, dim, keepdim, true, "argmax").second;
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return extremum_impl(x, dim, keepdim, false, "argmin").second;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  SOMA_CHECK(lead >= 0, "sum_to: shape ", x.shape(), " cannot be summed to ", shape);
  Tensor r = x;
  if (lead > 0) {
    Shape rest(x.shape().begin() + lead, x.shape().end());
    Shape merged = rest;
    merged.insert(merged.begin(), -1);
    r = sum(reshape(r, merged), 0);
  }
  for (size_t d = 0; d < shape.size(); ++d) {
    if (r.size(d) == shape[d]) continue;
    SOMA_CHECK(shape[d] == 1, "sum_to: shape ", x.shape(), " cannot be summed to ", shape);
    r = sum(r, static_cast<int64_t>(d), true);
  }
  return r;
}

// ---- method forms --------------------------------------------------------------------------
Tensor Tensor::sum() const {
  return soma::sum(*this);
}
Tensor Tensor::sum(int64_t dim, bool keepdim) const {
  return soma::sum(*this, dim, keepdim);
}
Tensor Tensor::mean() const {
  return soma::mean(*this);
}
Tensor Tensor::mean(int64_t dim, bool keepdim) const {
  return soma::mean(*this, dim, keepdim);
}
Tensor Tensor::max() const {
  return soma::max(*this);
}
std::tuple<Tensor, Tensor> Tensor::max(int64_t dim, bool keepdim) const {
  return soma::max(*this, dim, keepdim);
}
Tensor Tensor::min() const {
  return soma::min(*this);
}
std::tuple<Tensor, Tensor> Tensor::min(int64_t dim, bool keepdim) const {
  return soma::min(*this, dim, keepdim);
}
Tensor Tensor::argmax() const {
  return soma::argmax(*this);
}
Tensor Tensor::argmax(int64_t dim, bool keepdim) const {
  return soma::argmax(*this, dim, keepdim);
}

}  // namespace soma
