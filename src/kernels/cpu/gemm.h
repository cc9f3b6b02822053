// General matrix multiply (internal): C = alpha op(A) op(B) + beta C, row-major, through
// OpenBLAS's CBLAS. op(X) is X or X^T (trans_*), so transposed views need no copy.
//   op(A): [M, K] with leading dimension lda, op(B): [K, N] with ldb, C: [M, N] with ldc.
#pragma once

#include <cstdint>

#include "kernels/cpu/parallel.h"

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

/// C = alpha op(A) op(B) + beta C split over the OpenMP threads along C's longer side: thread
/// t makes rows (or columns) [len t / T, len (t + 1) / T) with a single-threaded call of
/// gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) (OpenBLAS's OpenMP build and
/// oneDNN run single-threaded inside a parallel region). Each thread packs its own copy of the
/// operand that is not split, so the split goes along the longer side of C: rows when m >= n
/// (every thread packs op(B), k x n), columns otherwise (op(A), m x k). Returns false, doing
/// nothing, when the product is too small to split (one call is cheaper).
///
/// Why: OpenBLAS's own threading synchronises its threads several times inside one product
/// (they share packed panels). When one of our threads is preempted for a moment (a VM's other
/// tenants, a kernel daemon), every such sync waits for it; independent blocks meet once, at
/// the end. On this project's 2-core machine that is 5-7 % off a training step at batch
/// 128-512, and 18 % at batch 32, when the machine is busy, and 0.3-3 % when it is quiet
/// (docs/PERFORMANCE.md). Products with under min_per_thread rows (columns) per thread stay
/// whole: 128 for OpenBLAS; oneDNN's sgemm, whose own team of two is slower than a split of
/// 64 rows each (128 x 128 x 256: 43 us on one thread, 40 us on oneDNN's team, 32 us split),
/// passes 32.
/// Like a BLAS's own threading, the split can change the last bit of some elements against
/// a one-thread call (the kernel's edge tiles fall elsewhere).
template <typename T, typename Gemm>
bool gemm_split(Gemm gemm, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
                int64_t min_per_thread = 128) {
  constexpr int64_t kMinWork = int64_t{1} << 20;  // multiply-adds; below it one call is cheaper
  const int threads = num_threads();
  const bool by_cols = n > m;
  if (threads < 2 || (by_cols ? n : m) < min_per_thread * threads || m * n * k < kMinWork)
    return false;
  parallel_team(true, [&](int64_t t, int64_t nt) {
    if (!by_cols) {
      const int64_t r0 = m * t / nt, r1 = m * (t + 1) / nt;
      // Row r of op(A) starts at a + r * lda (A as stored) or a + r (A transposed).
      const T* ar = ta ? a + r0 : a + r0 * lda;
      gemm(ta, tb, r1 - r0, n, k, alpha, ar, lda, b, ldb, beta, c + r0 * ldc, ldc);
    } else {
      // Column edges on multiples of 16 (whole vectors); column j of op(B) starts at
      // b + j * ldb (B transposed) or b + j.
      const int64_t c0 = (n * t / nt) & ~int64_t{15};
      const int64_t c1 = t + 1 == nt ? n : (n * (t + 1) / nt) & ~int64_t{15};
      const T* bc = tb ? b + c0 * ldb : b + c0;
      gemm(ta, tb, m, c1 - c0, k, alpha, a, lda, bc, ldb, beta, c + c0, ldc);
    }
  });
  return true;
}

}  // namespace soma::kernels::cpu
