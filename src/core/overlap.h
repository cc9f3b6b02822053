// Memory-overlap checks for in-place writes (internal), like PyTorch's
// at::assert_no_internal_overlap and at::assert_no_partial_overlap.
//
//   x.add_(x)        fine: the same elements in the same places (an exact alias)
//   x.add_(x.t())    error: x[0][1] is read after (or while) x[0][1]'s slot is written
//   x.narrow(0, 0, 1).add_(x.narrow(0, 1, 1))   fine: different rows, disjoint memory
//   x.expand({3, 4}).add_(1)                    error: the written elements share memory
#pragma once

#include "soma/core/tensor.h"

namespace soma::detail {

/// Throws soma::Error naming `op` when two elements of `written` share memory (a dimension of
/// size > 1 with stride 0, as expand() makes, or from_blob strides that make elements
/// coincide): an in-place result would depend on the order.
void check_no_internal_overlap(const Tensor& written, const char* op);

/// Throws soma::Error naming `op` when `input`, broadcast to `written`'s shape, reads memory
/// that `written` writes at another position. Different storage, disjoint memory, interleaved
/// but disjoint elements (two columns) and an exact alias are all fine. Foreign (from_blob)
/// storages are compared by address, so two from_blob tensors over one buffer are checked too.
void check_no_partial_overlap(const Tensor& written, const Tensor& input, const char* op);

}  // namespace soma::detail
