// float32 GEMM on oneDNN's dnnl_sgemm (internal; SOMA_ONEDNN builds): the Gemm<float> slot's
// "onednn" implementation, the default where the CPU has AVX-512 (kernels/register.cpp).
//
// Why: OpenBLAS 0.3.21 does not know the newest AMD cores and runs its Haswell (AVX2) kernels
// on them; on a core with full-width AVX-512 units that is half of what the core can do.
// oneDNN's JIT sgemm picks its kernels by cpuid (avx512_core here), and measured 1.9-2.9x
// OpenBLAS's default choice on every training shape of the MLP and on 1024^3, and 1.0-1.5x
// OpenBLAS with OPENBLAS_CORETYPE=SkylakeX (docs/PERFORMANCE.md, "float32 GEMM on oneDNN").
// Same semantics as cpu::gemm<float>: row-major, C = alpha op(A) op(B) + beta C, C not read
// when beta == 0. Products of one row (GEMV), empty products and K = 0 go to cpu::gemm.
#pragma once

#include <cstdint>

namespace soma::kernels::onednn {

/// oneDNN has a CPU engine here and the CPU has AVX-512F (kernels::cpu_features(), so
/// SOMA_MAX_CPU_ISA below avx512_core leaves the slot to OpenBLAS).
bool gemm_available();

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace soma::kernels::onednn
