// Shape ops. view, reshape where the strides allow (as PyTorch's), transpose, t, permute, movedim,
// squeeze, unsqueeze, narrow, slice, expand, unfold and the pieces of split/chunk/unbind return
// views (shared storage); cat, stack, index_select, repeat, flip, roll, tril and triu copy. All are
// differentiable twice (their backward is built from differentiable ops).
#pragma once

#include <vector>

#include "soma/core/tensor.h"

namespace soma {

/// One dimension may be -1 (inferred). A view (sharing storage, possibly non-contiguous) when
/// x's strides allow one, as for view; else a contiguous copy. Aliases exactly when torch's does.
Tensor reshape(const Tensor& x, const Shape& shape);
/// Like reshape but never copies: soma::Error when no strides give `shape` over x's elements in
/// row-major order (a new dim would span two of x's non-contiguous blocks, e.g. a transposed
/// matrix viewed as one dim). Works on non-contiguous x when they do (ATen's computeStride).
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

/// Reorders the dims: result dim i is x's dim dims[i] (a view). dims is a permutation of
/// [0, x.dim()) (negative dims count from the end).
Tensor permute(const Tensor& x, const Shape& dims);
/// Moves dims `source` to positions `destination`, keeping the others in order (a view).
Tensor movedim(const Tensor& x, int64_t source, int64_t destination);
Tensor movedim(const Tensor& x, const Shape& source, const Shape& destination);
/// Tiles x: repeats.size() >= x.dim(); x is first viewed with leading size-1 dims (a copy).
Tensor repeat(const Tensor& x, const Shape& repeats);
/// Joins equally shaped tensors along a new dim `dim` in [-(d + 1), d] (a copy).
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Pieces of split_size along dim (the last one smaller when the size does not divide); views.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
/// Pieces of the given sizes (they must add up to x.size(dim)); views. Note that
/// split(x, {n}) picks the int overload (pieces of n), as x.split(n) would.
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& split_sizes,
                          int64_t dim = 0);
std::vector<Tensor> split_with_sizes(const Tensor& x, const std::vector<int64_t>& split_sizes,
                                     int64_t dim = 0);
/// split(x, ceil(size / chunks), dim): at most `chunks` pieces (views).
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
/// The slices x.select(dim, i) for every i, each without `dim` (views).
std::vector<Tensor> unbind(const Tensor& x, int64_t dim = 0);
/// Reverses the order of the elements along each of `dims` (a copy).
Tensor flip(const Tensor& x, const Shape& dims);
/// Shifts elements along dims[i] by shifts[i], wrapping around; with dims empty, x is flattened,
/// rolled by the one shift and reshaped back (a copy).
Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims = {});
/// Keeps the elements on and below (tril) / above (triu) the `diagonal`-th diagonal of the last
/// two dims (0: the main diagonal, > 0 above it, < 0 below it); the rest become 0 (a copy).
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);
/// Tensor.unfold: every window of `size` elements along `dimension`, `step` apart: that dim
/// becomes the window count (size - size_of_window) / step + 1 and a new last dim of `size`
/// holds the window (a view; windows may overlap).
Tensor unfold(const Tensor& x, int64_t dimension, int64_t size, int64_t step);

}  // namespace soma
