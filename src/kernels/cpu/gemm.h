// General matrix multiply (internal): C = alpha op(A) op(B) + beta C, row-major, through
// OpenBLAS's CBLAS. op(X) is X or X^T (trans_*), so transposed views need no copy.
//   op(A): [M, K] with leading dimension lda, op(B): [K, N] with ldb, C: [M, N] with ldc.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

/// Triple loop, accumulating in long double: the reference the tests hold gemm to.
template <typename T>
void gemm_reference(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                    const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

}  // namespace soma::kernels::cpu
