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

/// C_i = op(A_i) op(B_i), i < batch: A_i = a + i sa, B_i = b + i sb, C_i = c + i m n. Many
/// small products run one per thread (single-threaded BLAS each); else threaded BLAS per product.
template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  const T* a, int64_t sa, int64_t lda, const T* b, int64_t sb, int64_t ldb, T* c);
template <typename T>
void gemm_batched_reference(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n,
                            int64_t k, const T* a, int64_t sa, int64_t lda, const T* b, int64_t sb,
                            int64_t ldb, T* c);

}  // namespace soma::kernels::cpu
