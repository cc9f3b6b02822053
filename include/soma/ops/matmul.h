// Matrix products through BLAS (transposed views are passed as transpose flags, not copied).
//
//   [M, K] @ [K, N]        -> [M, N]
//   [B, M, K] @ [B, K, N]  -> [B, M, N]   (batched; a 2-D operand is broadcast over B)
#pragma once

#include "soma/core/tensor.h"

namespace soma {

Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace soma
