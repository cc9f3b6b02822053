// Reductions over several dims (sum, mean, amax, amin, var, std, norm, logsumexp), products
// and scans (prod, cumsum, cumprod), and the boolean reductions (all, any). Every backward
// closure is written with differentiable soma ops, so it differentiates again.
#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "ops/reduce_internal.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

namespace {

using detail::Split;
using detail::split;

void check_defined(const Tensor& x, const char* op) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
}

void check_floating(const Tensor& x, const char* op) {
  check_defined(x, op);
  SOMA_CHECK(is_floating(x.dtype()), op, ": expected a floating-point tensor, got ", x.dtype());
}

// `dims` wrapped, checked for repeats and sorted; empty: every dim.
std::vector<int64_t> wrap_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) {
    const int64_t w = detail::wrap_dim(d, ndim, op);
    SOMA_CHECK(std::find(out.begin(), out.end(), w) == out.end(), op, ": dim ", w,
               " appears multiple times in the list of dims");
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Removes the (sorted) dims of a keepdim result.
Tensor drop_dims(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  if (keepdim || t.dim() == 0) return t;
  Tensor r = t;
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) r = squeeze(r, *it);
  return r;
}

int64_t count_over(const Tensor& x, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= x.dim() == 0 ? 1 : x.size(d);
  return n;
}

// ---- elementary ops with differentiable gradients (used by norm, std) -------------------------
// 1 / y (gradient -g / y^2, through the saved output).
Tensor dd_recip(const Tensor& y) {
  Tensor out;
  {
    NoGradGuard no_grad;
    out = 1.0 / y;
  }
  if (needs_grad(y))
    record(out, "reciprocal", {y},
           [r = out.detach()](const Tensor& g) -> Grads {
             const Tensor ra = autograd::attach_output(r);
             return {-(g * ra * ra)};
           },
           {out});
  return out;
}

// sqrt(s) with gradient g / (2 sqrt(s)), 0 where s == 0 (PyTorch's norm and std backward).
Tensor dd_sqrt(const Tensor& s) {
  Tensor out;
  {
    NoGradGuard no_grad;
    out = sqrt(s);
  }
  if (needs_grad(s))
    record(out, "sqrt", {s},
           [r = out.detach()](const Tensor& g) -> Grads {
             const Tensor ra = autograd::attach_output(r);
             const Tensor zero = eq(r, 0.0).to(r.dtype());
             return {g * 0.5 * dd_recip(ra + zero) * (1.0 - zero)};
           },
           {out});
  return out;
}

// log(x) with gradient g / x.
// |x| as x * sign(x) (sign constant: gradient sign(x), 0 at 0).
Tensor dd_abs(const Tensor& x) {
  Tensor sign;
  {
    NoGradGuard no_grad;
    sign = gt(x, 0.0).to(x.dtype()) - lt(x, 0.0).to(x.dtype());
  }
  return x * sign;
}

// Inclusive scan along d (forward or reversed), sum or product. Integer/bool inputs give int64.
Tensor scan(const Tensor& x, int64_t d, bool reverse, bool product, const char* op) {
  Tensor out;
  {
    NoGradGuard no_grad;
    const DType dt = is_floating(x.dtype()) ? x.dtype() : kInt64;
    const Tensor xc = x.to(dt).contiguous();
    const Split s = x.dim() == 0 ? Split{} : split(x.shape(), d);
    out = detail::make_tensor(x.shape(), dt);
    if (x.numel() > 0)
      detail::dispatch_numeric(dt, op, [&]<typename T>() {
        kernels::call<kernels::ScanDim<T>>(xc.data<T>(), out.data<T>(), s.outer, s.n, s.inner,
                                           reverse, product);
      });
  }
  return out;
}

Tensor scan_sum(const Tensor& x, int64_t d, bool reverse) {
  Tensor out = scan(x, d, reverse, false, "cumsum");
  if (needs_grad(x))
    record(out, "cumsum", {x},
           [d, reverse](const Tensor& g) -> Grads { return {scan_sum(g, d, !reverse)}; });
  return out;
}

Tensor scan_prod(const Tensor& x, int64_t d) {
  Tensor out = scan(x, d, false, true, "cumprod");
  if (needs_grad(x))
    record(out, "cumprod", {x},
           [x, y = out.detach(), d](const Tensor& g) -> Grads {
             bool has_zero;
             {
               NoGradGuard no_grad;
               has_zero = x.numel() > 0 && any(eq(x.detach(), 0.0)).item<bool>();
             }
             if (!has_zero)  // dy_j/dx_i = y_j / x_i for j >= i
               return {scan_sum(g * autograd::attach_output(y), d, true) * dd_recip(x)};
             // With zeros: grad_i = sum_{j >= i} g_j prod_{k <= j, k != i} x_k, one scan per i.
             const int64_t n = x.dim() == 0 ? 1 : x.size(d);
             Shape col(static_cast<size_t>(std::max<int64_t>(x.dim(), 1)), 1);
             if (x.dim() > 0) col[d] = n;
             std::vector<Tensor> parts;
             for (int64_t i = 0; i < n; ++i) {
               Tensor onehot, later;
               {
                 NoGradGuard no_grad;
                 const Tensor pos = reshape(arange(0.0, static_cast<double>(n), 1.0, x.dtype()),
                                            x.dim() == 0 ? Shape{} : col);
                 onehot = eq(pos, static_cast<double>(i)).to(x.dtype());
                 later = ge(pos, static_cast<double>(i)).to(x.dtype());
               }
               const Tensor xi = x * (1.0 - onehot) + onehot;
               const Tensor term = g * scan_prod(xi, d) * later;
               parts.push_back(x.dim() == 0 ? term : sum(term, d, true));
             }
             return {x.dim() == 0 ? parts[0] : cat(parts, d)};
           },
           {x});
  return out;
}

Tensor extremum_dims(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool is_max,
                     const char* op) {
  check_defined(x, op);
  const std::vector<int64_t> ds = wrap_dims(dims, x.dim(), op);
  for (int64_t d : ds)
    SOMA_CHECK(x.dim() == 0 || x.size(d) > 0, op, ": expected reduction dim ", d,
               " to have non-zero size (shape ", x.shape(), ")");
  SOMA_CHECK(x.numel() > 0 || !ds.empty() || x.dim() > 0, op, ": cannot reduce an empty tensor");
  SOMA_CHECK(x.dtype() != kBool, op, ": bool tensors are not supported");
  Tensor out;
  {
    NoGradGuard no_grad;
    out = x;
    for (int64_t d : ds) out = std::get<0>(is_max ? max(out, d, true) : min(out, d, true));
    if (ds.empty() && x.dim() == 0) out = x.clone();
    out = drop_dims(out, ds, keepdim);
  }
  if (needs_grad(x)) detail::record_evenly(out, op, x, ds, keepdim);
  return out;
}

Tensor var_impl(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim,
                const char* op) {
  check_defined(x, op);
  SOMA_CHECK(supports_autograd(x.dtype()), op,
             ": std and var only support float32 and float64, got ", x.dtype());
  const std::vector<int64_t> ds = wrap_dims(dims, x.dim(), op);
  const int64_t n = count_over(x, ds);
  const Tensor diff = x - mean(x, ds, true);
  const double denom = std::max<double>(0.0, static_cast<double>(n - correction));
  return sum(diff * diff, ds, keepdim) / denom;
}

}  // namespace

// ---- sum / mean over dims ------------------------------------------------------------------
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_defined(x, "sum");
  const std::vector<int64_t> ds = wrap_dims(dims, x.dim(), "sum");
  if (ds.empty()) return keepdim ? sum(x).reshape(x.shape()) : sum(x);
  if (ds.size() == 1 || x.dim() == 0 || !x.is_contiguous()) {
    Tensor r = x;
    for (int64_t d : ds) r = sum(r, d, true);
    return drop_dims(r, ds, keepdim);
  }
  // A contiguous tensor: each run of adjacent reduced dims is one dim of a view, summed in one
  // pass, innermost run first (a convolution's bias gradient, sum over {0, 2, 3} of [N, C, H,
  // W], reads the data once as rows of H * W instead of three times).
  Shape merged, kept = x.shape();
  std::vector<int64_t> runs;  // the reduced dims of `merged`
  for (int64_t d = 0; d < x.dim(); ++d) {
    const bool reduced = std::binary_search(ds.begin(), ds.end(), d);
    if (reduced) kept[static_cast<size_t>(d)] = 1;
    if (reduced && d > 0 && std::binary_search(ds.begin(), ds.end(), d - 1))
      merged.back() *= x.size(d);
    else {
      if (reduced) runs.push_back(static_cast<int64_t>(merged.size()));
      merged.push_back(x.size(d));
    }
  }
  Tensor r = reshape(x, merged);
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) r = sum(r, *it, true);
  return drop_dims(reshape(r, kept), ds, keepdim);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_floating(x, "mean");
  const std::vector<int64_t> ds = wrap_dims(dims, x.dim(), "mean");
  return sum(x, ds, keepdim) / static_cast<double>(count_over(x, ds));
}

Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum_dims(x, dims, keepdim, true, "amax");
}
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return extremum_dims(x, dims, keepdim, false, "amin");
}

// ---- products and scans --------------------------------------------------------------------
Tensor cumsum(const Tensor& x, int64_t dim) {
  check_defined(x, "cumsum");
  return scan_sum(x, detail::wrap_dim(dim, x.dim(), "cumsum"), false);
}

Tensor cumprod(const Tensor& x, int64_t dim) {
  check_defined(x, "cumprod");
  return scan_prod(x, detail::wrap_dim(dim, x.dim(), "cumprod"));
}

Tensor prod(const Tensor& x, int64_t dim, bool keepdim) {
  check_defined(x, "prod");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "prod");
  const DType dt = is_floating(x.dtype()) ? x.dtype() : kInt64;
  if (x.dim() == 0) return x.to(dt).clone();
  const int64_t n = x.size(d);
  Shape ks = x.shape();
  ks[d] = 1;
  Tensor out;
  if (n == 0) {
    out = ones(ks, dt);
    if (needs_grad(x)) out = out + sum(x, d, true);  // an empty sum: 0, keeps the graph
  } else {
    // The last entry of the running product (its gradient is cumprod's, exact with zeros).
    out = detail::take_along(scan_prod(x, d), d, full(ks, n - 1, kInt64));
  }
  return keepdim ? out : squeeze(out, d);
}

Tensor prod(const Tensor& x) {
  check_defined(x, "prod");
  return prod(reshape(x, {-1}), 0, false);
}

// ---- var / std -----------------------------------------------------------------------------
Tensor var(const Tensor& x) {
  return var_impl(x, {}, 1, false, "var");
}
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  return var_impl(x, dims, correction, keepdim, "var");
}
Tensor std(const Tensor& x) {
  return dd_sqrt(var_impl(x, {}, 1, false, "std"));
}
Tensor std(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  return dd_sqrt(var_impl(x, dims, correction, keepdim, "std"));
}

// ---- norm ----------------------------------------------------------------------------------
Tensor norm(const Tensor& x, double p, const std::vector<int64_t>& dims, bool keepdim) {
  check_defined(x, "norm");
  SOMA_CHECK(supports_autograd(x.dtype()), "norm: expected a float32 or float64 tensor, got ",
             x.dtype());
  const std::vector<int64_t> ds = wrap_dims(dims, x.dim(), "norm");
  if (p == 2.0) return dd_sqrt(sum(x * x, ds, keepdim));
  if (p == 1.0) return sum(dd_abs(x), ds, keepdim);
  if (std::isinf(p)) {
    return p > 0 ? amax(dd_abs(x), ds, keepdim) : amin(dd_abs(x), ds, keepdim);
  }
  if (p == 0.0) {
    Tensor count;
    {
      NoGradGuard no_grad;
      count = sum(ne(x, 0.0).to(x.dtype()), ds, keepdim);
    }
    return needs_grad(x) ? count + sum(x * 0.0, ds, keepdim) : count;  // zero gradient
  }
  SOMA_CHECK(!std::isnan(p), "norm: p is nan");
  // (sum |x|^p)^(1/p). Zeros go through where() so that their gradient is 0 (not 0 * inf, as
  // d|x|^p/dx and d s^(1/p)/ds are at 0 for some p), as PyTorch's norm backward masks them.
  const Tensor one = ones({}, x.dtype());
  const Tensor a = dd_abs(x);
  const Tensor nonzero = ne(x, 0.0);
  const Tensor powered = where(nonzero, pow(where(nonzero, a, one), p), zeros({}, x.dtype()));
  const Tensor s = sum(powered, ds, keepdim);
  const Tensor positive = ne(s, 0.0);
  return where(positive, pow(where(positive, s, one), 1.0 / p), zeros({}, x.dtype()));
}

Tensor norm(const Tensor& x, std::string_view p, const std::vector<int64_t>& dims, bool keepdim) {
  SOMA_CHECK(p == "fro", "norm: unknown norm '", std::string(p),
             "' (expected \"fro\" or a number)");
  SOMA_CHECK(dims.size() <= 2, "norm: \"fro\" takes at most 2 dims, got ", dims.size());
  return norm(x, 2.0, dims, keepdim);
}

// ---- logsumexp -----------------------------------------------------------------------------
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_defined(x, "logsumexp");
  const Tensor xf = is_floating(x.dtype()) ? x : x.to(kFloat32);
  const std::vector<int64_t> ds = wrap_dims(dims, x.dim(), "logsumexp");
  Tensor out;
  {
    NoGradGuard no_grad;
    Tensor m;
    if (xf.numel() == 0) {
      Shape ks = xf.shape();
      for (int64_t d : ds) ks[d] = 1;
      m = zeros(ks, xf.dtype());
    } else {
      m = amax(xf, ds, true);
      m = where(eq(abs(m), std::numeric_limits<double>::infinity()), zeros_like(m), m);
    }
    out = log(sum(exp(xf - m), ds, true)) + m;
    out = drop_dims(out, ds, keepdim);
  }
  if (needs_grad(xf))
    record(out, "logsumexp", {xf},
           [xf, y = out.detach(), ds, keepdim](const Tensor& g) -> Grads {
             const Tensor yk = detail::unsqueeze_dims(autograd::attach_output(y), ds, keepdim);
             return {detail::unsqueeze_dims(g, ds, keepdim) * exp(xf - yk)};
           },
           {xf});
  return out;
}

Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim) {
  return logsumexp(x, std::vector<int64_t>{dim}, keepdim);
}

// ---- all / any -----------------------------------------------------------------------------
namespace {
Tensor count_nonzero_(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                      const char* op) {
  check_defined(x, op);
  NoGradGuard no_grad;
  const Tensor nz = x.dtype() == kBool ? x : ne(x.detach(), 0.0);
  return sum(nz.to(kInt64), wrap_dims(dims, x.dim(), op), keepdim);
}
}  // namespace

Tensor all(const Tensor& x) {
  return eq(count_nonzero_(x, {}, false, "all"), static_cast<double>(x.numel()));
}
Tensor all(const Tensor& x, int64_t dim, bool keepdim) {
  const int64_t d = detail::wrap_dim(dim, x.dim(), "all");
  const int64_t n = x.dim() == 0 ? 1 : x.size(d);
  return eq(count_nonzero_(x, {dim}, keepdim, "all"), static_cast<double>(n));
}
Tensor any(const Tensor& x) {
  return gt(count_nonzero_(x, {}, false, "any"), 0.0);
}
Tensor any(const Tensor& x, int64_t dim, bool keepdim) {
  return gt(count_nonzero_(x, {dim}, keepdim, "any"), 0.0);
}

// ---- method forms --------------------------------------------------------------------------
Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const {
  return soma::sum(*this, dims, keepdim);
}
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const {
  return soma::mean(*this, dims, keepdim);
}
Tensor Tensor::argmin(int64_t dim, bool keepdim) const {
  return soma::argmin(*this, dim, keepdim);
}
Tensor Tensor::prod() const {
  return soma::prod(*this);
}
Tensor Tensor::prod(int64_t dim, bool keepdim) const {
  return soma::prod(*this, dim, keepdim);
}
Tensor Tensor::cumsum(int64_t dim) const {
  return soma::cumsum(*this, dim);
}
Tensor Tensor::cumprod(int64_t dim) const {
  return soma::cumprod(*this, dim);
}
Tensor Tensor::var() const {
  return soma::var(*this);
}
Tensor Tensor::var(const std::vector<int64_t>& dims, int64_t correction, bool keepdim) const {
  return soma::var(*this, dims, correction, keepdim);
}
Tensor Tensor::std() const {
  return soma::std(*this);
}
Tensor Tensor::std(const std::vector<int64_t>& dims, int64_t correction, bool keepdim) const {
  return soma::std(*this, dims, correction, keepdim);
}
Tensor Tensor::norm(double p, const std::vector<int64_t>& dims, bool keepdim) const {
  return soma::norm(*this, p, dims, keepdim);
}
Tensor Tensor::norm(std::string_view p, const std::vector<int64_t>& dims, bool keepdim) const {
  return soma::norm(*this, p, dims, keepdim);
}
Tensor Tensor::logsumexp(const std::vector<int64_t>& dims, bool keepdim) const {
  return soma::logsumexp(*this, dims, keepdim);
}
Tensor Tensor::amax(const std::vector<int64_t>& dims, bool keepdim) const {
  return soma::amax(*this, dims, keepdim);
}
Tensor Tensor::amin(const std::vector<int64_t>& dims, bool keepdim) const {
  return soma::amin(*this, dims, keepdim);
}
Tensor Tensor::all() const {
  return soma::all(*this);
}
Tensor Tensor::all(int64_t dim, bool keepdim) const {
  return soma::all(*this, dim, keepdim);
}
Tensor Tensor::any() const {
  return soma::any(*this);
}
Tensor Tensor::any(int64_t dim, bool keepdim) const {
  return soma::any(*this, dim, keepdim);
}

}  // namespace soma
