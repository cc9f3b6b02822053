// Helpers shared by the reductions (reduce.cpp) and sorting (sort.cpp); internal.
#pragma once

#include <vector>

#include "soma/core/tensor.h"

namespace soma::detail {

/// A tensor of `shape` seen as [outer, n, inner] around `dim` (n = shape[dim]).
struct Split {
  int64_t outer = 1, n = 1, inner = 1;
};
inline Split split(const Shape& shape, int64_t dim) {
  Split s;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim) s.outer *= shape[d];
    if (d == dim) s.n = shape[d];
    if (d > dim) s.inner *= shape[d];
  }
  return s;
}

/// out[..., j, ...] = x[..., idx[..., j, ...], ...] along `dim` (idx int64, same rank as x, the
/// other dims equal). Differentiable in x; its gradient is put_along.
Tensor take_along(const Tensor& x, int64_t dim, const Tensor& idx);
/// zeros(shape) with g[..., j, ...] added at [..., idx[..., j, ...], ...] along `dim`.
/// Differentiable in g; its gradient is take_along.
Tensor put_along(const Tensor& g, int64_t dim, const Tensor& idx, const Shape& shape);
/// Records on `out` (a reduction of x over `dims` to the value of some of its elements, such as
/// amax or median) the gradient split evenly between the elements equal to the result.
void record_evenly(Tensor& out, const char* op, const Tensor& x, const std::vector<int64_t>& dims,
                   bool keepdim);
/// `t` with size-1 dims re-inserted at the (sorted, wrapped) `dims` unless keepdim.
Tensor unsqueeze_dims(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim);

}  // namespace soma::detail
