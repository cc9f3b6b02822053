// Reductions, scans and sorting (PyTorch semantics; negative dims count from the end).
//
//   sum(x) -> []        sum(x, 1) -> [B]        sum(x, 1, /*keepdim=*/true) -> [B, 1]
//   sum(x, {0, 2})      reduces several dims (an empty list: every dim)
//   auto [values, indices] = max(x, 1);          like libtorch's std::tuple results
// max/min/amax/amin/median over all elements split the gradient evenly between tied extrema
// (like PyTorch); along a dim max/min/kthvalue/median/sort/topk send it to the element their
// index picks. Every backward is built from differentiable ops, so gradients differentiate again
// (create_graph).
#pragma once

#include <string_view>
#include <tuple>
#include <vector>

#include "soma/core/tensor.h"

namespace soma {

Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor max(const Tensor& x);
/// (values, indices (int64, the first extremum)) along `dim`.
std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x);
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
/// Maximum / minimum over `dims` (empty: every dim); the gradient is split between ties.
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
/// Index (int64) of the first maximum over the flattened tensor, or along `dim`.
Tensor argmax(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
/// Sums `x` down to `shape` (the inverse of broadcasting `shape` up to x.shape()).
Tensor sum_to(const Tensor& x, const Shape& shape);

/// Product of all elements / along `dim` (bool and int64 give int64). Exact gradient with zeros.
Tensor prod(const Tensor& x);
Tensor prod(const Tensor& x, int64_t dim, bool keepdim = false);
/// Inclusive running sum / product along `dim` (bool and int64 give int64).
Tensor cumsum(const Tensor& x, int64_t dim);
Tensor cumprod(const Tensor& x, int64_t dim);

/// Variance / standard deviation over every element or over `dims` (empty: every dim), divided
/// by N - correction (correction 1: Bessel's correction, the default; 0: population).
Tensor var(const Tensor& x);
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction = 1,
           bool keepdim = false);
Tensor std(const Tensor& x);
Tensor std(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction = 1,
           bool keepdim = false);
/// Vector p-norm over `dims` (empty: every element), torch.linalg.vector_norm: p = 2 (default),
/// 1, inf (max |x|), -inf (min |x|), 0 (count of non-zeros), or any other p (sum |x|^p)^(1/p).
/// "fro" is the 2-norm. The gradient at a zero norm is 0, like PyTorch.
Tensor norm(const Tensor& x, double p = 2, const std::vector<int64_t>& dims = {},
            bool keepdim = false);
Tensor norm(const Tensor& x, std::string_view p, const std::vector<int64_t>& dims = {},
            bool keepdim = false);
/// log(sum(exp(x))) over `dims`, computed stably (integer inputs give float32).
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor logsumexp(const Tensor& x, int64_t dim, bool keepdim = false);

/// Whether every / any element is non-zero (bool result, any input dtype).
Tensor all(const Tensor& x);
Tensor all(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor any(const Tensor& x);
Tensor any(const Tensor& x, int64_t dim, bool keepdim = false);

/// The k largest (or smallest) elements along `dim` and their indices, in sorted order.
std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true,
                                bool sorted = true);
/// Stable sort along `dim` (NaN sorts as the largest value): (values, indices).
std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// The k-th smallest element (k from 1) along `dim` and its index.
std::tuple<Tensor, Tensor> kthvalue(const Tensor& x, int64_t k, int64_t dim = -1,
                                    bool keepdim = false);
/// Lower median of all elements (NaN if any is NaN; NaN for an empty tensor), or along `dim`
/// with its index.
Tensor median(const Tensor& x);
std::tuple<Tensor, Tensor> median(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace soma
