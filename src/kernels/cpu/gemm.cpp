#include "kernels/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>

#include "kernels/cpu/parallel.h"
#include "kernels/kernels.h"
#include "soma/core/error.h"

namespace soma::kernels::cpu {
namespace {

CBLAS_TRANSPOSE op(bool trans) {
  return trans ? CblasTrans : CblasNoTrans;
}

void check_blas_size(int64_t m, int64_t n, int64_t k) {
  constexpr int64_t kMax = (int64_t{1} << 31) - 1;  // CBLAS takes int (blasint) sizes
  SOMA_CHECK(m <= kMax && n <= kMax && k <= kMax, "matmul: dimensions M=", m, " N=", n, " K=", k,
             " exceed the BLAS limit of 2^31 - 1");
}

// A single output row (m == 1), as in batch-1 inference, is a matrix-vector product:
//   c[0, :] = alpha op(B)^T a + beta c[0, :],  a = op(A)[0, :] (stride lda when trans_a).
// GEMM would pack all of B into its blocked layout first (a copy as large as the product
// itself); GEMV reads B once in place. C is zeroed first when beta == 0, so stale NaNs in C
// never leak in, whatever the BLAS does with beta == 0.
template <typename T, typename Gemv>
void row_gemv(Gemv gemv, bool ta, bool tb, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
              const T* b, int64_t ldb, T beta, T* c) {
  if (beta == T(0)) std::fill_n(c, n, T(0));
  const int inc_a = ta ? static_cast<int>(lda) : 1;
  // op(B) = B^T: B is [n, k], c = B a.  op(B) = B: B is [k, n], c = B^T a.
  if (tb)
    gemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), alpha, b,
         static_cast<int>(ldb), a, inc_a, beta, c, 1);
  else
    gemv(CblasRowMajor, CblasTrans, static_cast<int>(k), static_cast<int>(n), alpha, b,
         static_cast<int>(ldb), a, inc_a, beta, c, 1);
}

// CBLAS's row-major call with soma's bool transposes, for gemm_split (kernels/cpu/gemm.h).
template <typename T, typename Gemm>
auto cblas_call(Gemm gemm) {
  return [gemm](bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
    gemm(CblasRowMajor, op(ta), op(tb), static_cast<int>(m), static_cast<int>(n),
         static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
         static_cast<int>(ldc));
  };
}

}  // namespace

template <>
void gemm<float>(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  check_blas_size(m, n, k);
  sync_blas_threads();
  if (m == 1 && n > 0 && k > 0)
    return row_gemv<float>(cblas_sgemv, ta, tb, n, k, alpha, a, lda, b, ldb, beta, c);
  if (gemm_split<float>(cblas_call<float>(cblas_sgemm), ta, tb, m, n, k, alpha, a, lda, b, ldb,
                        beta, c, ldc))
    return;
  cblas_sgemm(CblasRowMajor, op(ta), op(tb), static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

template <>
void gemm<double>(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                  int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  check_blas_size(m, n, k);
  sync_blas_threads();
  if (m == 1 && n > 0 && k > 0)
    return row_gemv<double>(cblas_dgemv, ta, tb, n, k, alpha, a, lda, b, ldb, beta, c);
  if (gemm_split<double>(cblas_call<double>(cblas_dgemm), ta, tb, m, n, k, alpha, a, lda, b, ldb,
                         beta, c, ldc))
    return;
  cblas_dgemm(CblasRowMajor, op(ta), op(tb), static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

template <typename T>
void gemm_reference(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                    int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      long double s = 0;
      for (int64_t p = 0; p < k; ++p) {
        const T av = ta ? a[p * lda + i] : a[i * lda + p];
        const T bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        s += static_cast<long double>(av) * bv;
      }
      T& out = c[i * ldc + j];
      out = static_cast<T>(alpha * s + (beta == T(0) ? 0 : beta * static_cast<long double>(out)));
    }
}

template <typename T>
void gemm_batched(bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k, const T* a,
                  int64_t sa, int64_t lda, const T* b, int64_t sb, int64_t ldb, T* c) {
  // Through the registry's GEMM slot, so another GEMM implementation serves batches too.
  auto* const single = Kernel<Gemm<T>>::get();
  auto one = [&](int64_t i) {
    single(ta, tb, m, n, k, T(1), a + i * sa, lda, b + i * sb, ldb, T(0), c + i * m * n, n);
  };
  const int threads = num_threads();
  if (threads > 1 && batch >= threads && m * n * k < (int64_t{1} << 18)) {
    parallel_for(batch, 1, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
}

template <typename T>
void gemm_batched_reference(bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k,
                            const T* a, int64_t sa, int64_t lda, const T* b, int64_t sb,
                            int64_t ldb, T* c) {
  for (int64_t i = 0; i < batch; ++i)
    gemm_reference<T>(ta, tb, m, n, k, T(1), a + i * sa, lda, b + i * sb, ldb, T(0), c + i * m * n,
                      n);
}

#define SOMA_INSTANTIATE(T)                                                                        \
  template void gemm_batched<T>(bool, bool, int64_t, int64_t, int64_t, int64_t, const T*, int64_t, \
                                int64_t, const T*, int64_t, int64_t, T*);                          \
  template void gemm_batched_reference<T>(bool, bool, int64_t, int64_t, int64_t, int64_t,          \
                                          const T*, int64_t, int64_t, const T*, int64_t, int64_t,  \
                                          T*);
SOMA_INSTANTIATE(float)
SOMA_INSTANTIATE(double)
#undef SOMA_INSTANTIATE

template void gemm_reference<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                    int64_t, const float*, int64_t, float, float*, int64_t);
template void gemm_reference<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                     int64_t, const double*, int64_t, double, double*, int64_t);

}  // namespace soma::kernels::cpu
