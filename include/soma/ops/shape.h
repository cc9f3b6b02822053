// Shape ops. reshape/view of a contiguous tensor, transpose, t, squeeze, unsqueeze, narrow,
// slice and expand return views (shared storage); cat and index_select copy. All differentiable.
#pragma once

#include <vector>

#include "soma/core/tensor.h"

namespace soma {

/// One dimension may be -1 (inferred). A view when x is contiguous, else a copy.
Tensor reshape(const Tensor& x, const Shape& shape);
/// Like reshape but never copies: x must be contiguous.
Tensor view(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
/// Transpose of a tensor with at most 2 dims (a view).
Tensor t(const Tensor& x);
/// Removes all size-1 dims, or `dim` if it has size 1.
Tensor squeeze(const Tensor& x);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
/// Concatenates along `dim`; all other dims must match.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Elements [start, start + length) along `dim` (a view).
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
/// A view of x with size-1 dims stretched to `size` (stride 0, no copy), and new leading dims;
/// -1 keeps a size. Several elements of the result share memory, so in-place ops refuse to
/// write into it (clone() first). Backward sums the gradient back to x's shape.
Tensor expand(const Tensor& x, const Shape& size);
/// expand(x, other.shape()).
Tensor expand_as(const Tensor& x, const Tensor& other);
/// Elements start, start + step, ... < end along `dim` (a view; end is clamped to the size).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
/// Picks the entries `index` (1-D int64) along `dim`; gradients of repeated indices add up.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

}  // namespace soma
