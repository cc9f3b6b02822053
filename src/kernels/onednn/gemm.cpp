#include "kernels/onednn/gemm.h"

#include <oneapi/dnnl/dnnl.h>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/onednn/common.h"
#include "kernels/onednn/conv.h"
#include "kernels/registry.h"

namespace soma::kernels::onednn {

bool gemm_available() {
  return cpu_features().avx512f && available();
}

namespace {

// One dnnl_sgemm call on the calling thread's OpenMP setting (inside gemm_split's team: one
// thread). oneDNN checks its arguments and allocates its packing buffers before it writes C,
// so a call that fails (out of memory) has left C alone and OpenBLAS makes the product instead.
void sgemm_once(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) !=
      dnnl_success)
    cpu::gemm<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 1 || n <= 0 || k <= 0)
    return cpu::gemm<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  (void)engine();            // SOMA_MAX_CPU_ISA's cap on oneDNN, before its first kernel
  cpu::sync_blas_threads();  // OpenBLAS's count follows soma's, as after an OpenBLAS product
  // The calling thread's OpenMP setting is what oneDNN's team takes: soma's thread count, or
  // one thread below kShareWork multiply-adds, where a team's start and join cost more than
  // the second thread saves (measured: 32 x 128 x 256 takes 12.8 us on one thread, 16.2 us
  // on oneDNN's team of two and 12.6 us split in two by gemm_split; 32 x 256 x 784 78 us,
  // 47 us split).
  constexpr int64_t kShareWork = int64_t{1} << 21;
  if (m * n * k < kShareWork) {
    const OmpThreads one(1);
    return sgemm_once(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  const OmpThreads threads;
  constexpr int64_t kMinPerThread = 32;  // rows or columns (gemm_split's note)
  if (cpu::gemm_split<float>(sgemm_once, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                             kMinPerThread))
    return;
  sgemm_once(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace soma::kernels::onednn
