// Internal helpers shared by the shape ops (src/ops/shape*.cpp, src/nn/functional/fold.cpp).
#pragma once

#include "soma/core/tensor.h"

namespace soma::ops {

/// zeros(shape).index_add_(dim, index, src): the adjoint of index_select(., dim, index), so
/// the backward of index_select, slice and unfold. Differentiable (its backward is
/// index_select), so those ops have double backward. src has `shape` with dim replaced by
/// index.numel(); index is a 1-D (or 0-d) int64 tensor of in-range entries.
Tensor index_add_zeros(const Tensor& src, const Shape& shape, int64_t dim, const Tensor& index);

}  // namespace soma::ops
