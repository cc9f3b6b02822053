// Sorting and selection along a dim (sort, argsort, topk, kthvalue, median) and the gather /
// scatter pair along a dim that carries their gradients (take_along / put_along).
#include <algorithm>
#include <cmath>
#include <numeric>

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

// Indices (int64, shape of x) that stably sort each row of x along `d` (NaN largest).
Tensor sort_indices(const Tensor& x, int64_t d, bool descending) {
  NoGradGuard no_grad;
  const Tensor xc = x.contiguous();
  const Split s = x.dim() == 0 ? Split{} : split(x.shape(), d);
  Tensor idx = detail::make_tensor(x.shape(), kInt64);
  if (x.numel() == 0) return idx;
  int64_t* pi = idx.data<int64_t>();
  detail::dispatch_classic(x.dtype(), "sort", [&]<typename T>() {
    kernels::call<kernels::SortDim<T>>(xc.data<T>(), pi, s.outer, s.n, s.inner, descending);
  });
  return idx;
}

void check_defined(const Tensor& x, const char* op) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
}

// The entry at position `pos` (per row, int64 tensor keepdim-shaped) of the sorted order.
std::tuple<Tensor, Tensor> select_sorted(const Tensor& x, int64_t d, const Tensor& order,
                                         const Tensor& pos, bool keepdim) {
  Tensor idx = detail::take_along(order, d, pos);
  Tensor values = detail::take_along(x, d, idx);
  if (!keepdim && x.dim() > 0) {
    values = squeeze(values, d);
    idx = squeeze(idx, d);
  }
  return {values, idx};
}

}  // namespace

namespace detail {

Tensor take_along(const Tensor& x, int64_t dim, const Tensor& idx) {
  Tensor out;
  {
    NoGradGuard no_grad;
    const Tensor xc = x.contiguous();
    const Tensor ic = idx.contiguous();
    const int64_t n = x.dim() == 0 ? 1 : x.size(dim);
    const Split s = idx.dim() == 0 ? Split{} : split(idx.shape(), dim);
    out = make_tensor(idx.shape(), x.dtype());
    const int64_t* pi = ic.data<int64_t>();
    dispatch_all(x.dtype(), [&]<typename T>() {
      const T* px = xc.data<T>();
      T* po = out.data<T>();
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t j = 0; j < s.n; ++j)
          for (int64_t i = 0; i < s.inner; ++i) {
            const int64_t k = (o * s.n + j) * s.inner + i;
            po[k] = px[(o * n + pi[k]) * s.inner + i];
          }
    });
  }
  if (needs_grad(x))
    record(out, "take_along", {x}, [dim, idx, shape = x.shape()](const Tensor& g) -> Grads {
      return {put_along(g, dim, idx, shape)};
    });
  return out;
}

Tensor put_along(const Tensor& g, int64_t dim, const Tensor& idx, const Shape& shape) {
  Tensor out;
  {
    NoGradGuard no_grad;
    const Tensor gc = g.contiguous();
    const Tensor ic = idx.contiguous();
    const int64_t n = shape.empty() ? 1 : shape[dim];
    const Split s = idx.dim() == 0 ? Split{} : split(idx.shape(), dim);
    out = zeros(shape, g.dtype());
    const int64_t* pi = ic.data<int64_t>();
    dispatch_all(g.dtype(), [&]<typename T>() {
      const T* pg = gc.data<T>();
      T* po = out.data<T>();
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t j = 0; j < s.n; ++j)
          for (int64_t i = 0; i < s.inner; ++i) {
            const int64_t k = (o * s.n + j) * s.inner + i;
            po[(o * n + pi[k]) * s.inner + i] += pg[k];
          }
    });
  }
  if (needs_grad(g))
    record(out, "put_along", {g},
           [dim, idx](const Tensor& gg) -> Grads { return {take_along(gg, dim, idx)}; });
  return out;
}

Tensor unsqueeze_dims(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  if (keepdim) return t;
  Tensor r = t;
  std::vector<int64_t> sorted = dims;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t d : sorted) r = unsqueeze(r, d);
  return r;
}

void record_evenly(Tensor& out, const char* op, const Tensor& x, const std::vector<int64_t>& dims,
                   bool keepdim) {
  // dims: wrapped and unique; empty: every dim (the result is 0-d unless keepdim).
  std::vector<int64_t> all = x.dim() == 0 ? std::vector<int64_t>{} : dims;
  if (all.empty())
    for (int64_t d = 0; d < x.dim(); ++d) all.push_back(d);
  record(out, op, {x},
         [x, y = out.detach(), all, keepdim](const Tensor& g) -> Grads {
           // mask / count is constant, so the gradient is linear in g (and differentiable again).
           const Tensor yk = unsqueeze_dims(y, all, keepdim);
           // A NaN result (median of a tensor holding NaN) goes to the NaN elements, like torch.
           const Tensor xd = x.detach();
           const Tensor mask =
               eq(xd, yk).to(x.dtype()) + ne(xd, xd).to(x.dtype()) * ne(yk, yk).to(x.dtype());
           const Tensor count = all.empty() ? mask : sum(mask, all, true);
           return {mask * (unsqueeze_dims(g, all, keepdim) / count)};
         },
         {x});
}

}  // namespace detail

std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  check_defined(x, "sort");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "sort");
  Tensor idx = sort_indices(x, d, descending);
  return {detail::take_along(x, d, idx), idx};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  check_defined(x, "argsort");
  return sort_indices(x, detail::wrap_dim(dim, x.dim(), "argsort"), descending);
}

std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest,
                                bool sorted) {
  check_defined(x, "topk");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "topk");
  const int64_t n = x.dim() == 0 ? 1 : x.size(d);
  SOMA_CHECK(k >= 0 && k <= n, "topk: k (", k, ") is out of range for dimension ", dim, " of size ",
             n, " (shape ", x.shape(), ")");
  (void)sorted;  // the k elements always come in sorted order (allowed by sorted=false)
  Tensor order = sort_indices(x, d, largest);
  Tensor idx = x.dim() == 0 ? order : narrow(order, d, 0, k).contiguous();
  return {detail::take_along(x, d, idx), idx};
}

std::tuple<Tensor, Tensor> kthvalue(const Tensor& x, int64_t k, int64_t dim, bool keepdim) {
  check_defined(x, "kthvalue");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "kthvalue");
  const int64_t n = x.dim() == 0 ? 1 : x.size(d);
  SOMA_CHECK(k >= 1 && k <= n, "kthvalue: k (", k, ") is out of range for dimension ", dim,
             " of size ", n, " (shape ", x.shape(), ")");
  Tensor order = sort_indices(x, d, false);
  Shape ps = x.shape();
  if (!ps.empty()) ps[d] = 1;
  return select_sorted(x, d, order, full(ps, k - 1, kInt64), keepdim);
}

std::tuple<Tensor, Tensor> median(const Tensor& x, int64_t dim, bool keepdim) {
  check_defined(x, "median");
  const int64_t d = detail::wrap_dim(dim, x.dim(), "median");
  const int64_t n = x.dim() == 0 ? 1 : x.size(d);
  SOMA_CHECK(n > 0, "median: cannot compute the median of dimension ", dim, " of size 0 (shape ",
             x.shape(), ")");
  Tensor order = sort_indices(x, d, false);
  // The lower median, or the first NaN of a row that has one (NaN sorts last).
  Shape ps = x.shape();
  if (!ps.empty()) ps[d] = 1;
  Tensor pos = full(ps, (n - 1) / 2, kInt64);
  if (is_floating(x.dtype())) {
    NoGradGuard no_grad;
    const Tensor xc = x.detach().contiguous();
    const Tensor sorted = detail::take_along(xc, d, order);
    const Split s = x.dim() == 0 ? Split{} : split(x.shape(), d);
    int64_t* pp = pos.data<int64_t>();
    detail::dispatch_float(x.dtype(), "median", [&]<typename T>() {
      const T* pv = sorted.data<T>();
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t i = 0; i < s.inner; ++i)
          for (int64_t j = 0; j < s.n; ++j)
            if (std::isnan(pv[(o * s.n + j) * s.inner + i])) {
              pp[o * s.inner + i] = j;
              break;
            }
    });
  }
  return select_sorted(x, d, order, pos, keepdim);
}

Tensor median(const Tensor& x) {
  check_defined(x, "median");
  if (x.numel() == 0) {
    SOMA_CHECK(is_floating(x.dtype()), "median: cannot compute the median of an empty ", x.dtype(),
               " tensor");
    return full({}, std::nan(""), x.dtype());
  }
  Tensor out;
  {
    NoGradGuard no_grad;
    out = std::get<0>(median(x.reshape({-1}), 0, false));
  }
  if (needs_grad(x)) detail::record_evenly(out, "median", x, {}, false);
  return out;
}

// ---- method forms --------------------------------------------------------------------------
std::tuple<Tensor, Tensor> Tensor::topk(int64_t k, int64_t dim, bool largest, bool sorted) const {
  return soma::topk(*this, k, dim, largest, sorted);
}
std::tuple<Tensor, Tensor> Tensor::sort(int64_t dim, bool descending) const {
  return soma::sort(*this, dim, descending);
}
Tensor Tensor::argsort(int64_t dim, bool descending) const {
  return soma::argsort(*this, dim, descending);
}
std::tuple<Tensor, Tensor> Tensor::kthvalue(int64_t k, int64_t dim, bool keepdim) const {
  return soma::kthvalue(*this, k, dim, keepdim);
}
Tensor Tensor::median() const {
  return soma::median(*this);
}
std::tuple<Tensor, Tensor> Tensor::median(int64_t dim, bool keepdim) const {
  return soma::median(*this, dim, keepdim);
}

}  // namespace soma
