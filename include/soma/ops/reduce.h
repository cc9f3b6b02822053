// Reductions over all elements or along one dimension (negative dims count from the end).
//
//   sum(x) -> []        sum(x, 1) -> [B]        sum(x, 1, /*keepdim=*/true) -> [B, 1]
// max/min over all elements split the gradient evenly between tied maxima (like PyTorch);
// along a dim the gradient goes to the element argmax/argmin picks (the first one).
#pragma once

#include "soma/core/tensor.h"

namespace soma {

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x);
Tensor min(const Tensor& x, int64_t dim, bool keepdim = false);
/// Index (int64) of the first maximum over the flattened tensor, or along `dim`.
Tensor argmax(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
/// Sums `x` down to `shape` (the inverse of broadcasting `shape` up to x.shape()).
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace soma
