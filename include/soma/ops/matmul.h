// Matrix products through BLAS (transposed views are passed as transpose flags, not copied).
//
//   [M, K] @ [K, N]              -> [M, N]
//   [B, M, K] @ [B, K, N]        -> [B, M, N]    (batched)
//   [A, 1, M, K] @ [B, K, N]     -> [A, B, M, N] (batch dimensions broadcast)
//   [K] @ [K] -> [] (dot); [K] @ [..., K, N] -> [..., N]; [..., M, K] @ [K] -> [..., M]
#pragma once

#include <string_view>
#include <vector>

#include "soma/core/tensor.h"

namespace soma {

/// torch.matmul: 1-D x 1-D is a dot product; a 1-D first (second) operand gets a dimension of
/// size 1 prepended (appended), removed from the result; batch dimensions (all but the last
/// two) broadcast. float32 and float64, both operands of one dtype.
Tensor matmul(const Tensor& a, const Tensor& b);
/// Strictly 3-D batched product: [B, M, K] @ [B, K, N] -> [B, M, N] (no broadcasting).
Tensor bmm(const Tensor& a, const Tensor& b);
/// beta * input + alpha * (mat1 @ mat2); mat1, mat2 2-D, input broadcast to [M, N]. With
/// beta == 0 the input is ignored (NaN/inf in it do not propagate), as in PyTorch.
Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, const Scalar& beta = 1,
             const Scalar& alpha = 1);
/// Outer product of two 1-D tensors: [N] x [M] -> [N, M] (promoting like mul).
Tensor outer(const Tensor& a, const Tensor& b);
/// Inner product of two 1-D tensors of the same size and dtype -> 0-d.
Tensor dot(const Tensor& a, const Tensor& b);
/// Einstein summation, e.g. einsum("bij,bjk->bik", {a, b}), "ii->i" (diagonal), "ii" (trace),
/// "...ij->...ji", "ij,j" (implicit output: the indices used once, sorted, ellipsis first).
/// Lowered to transposes, reshapes, sums and matmul, so gradients of any order come from those.
Tensor einsum(std::string_view equation, const std::vector<Tensor>& operands);

}  // namespace soma
