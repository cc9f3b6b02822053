// Float32 products with a few rows against a weight packed once (internal): nn::Linear's
// inference at batch 1 to kSmallGemmMaxRows. There a product only streams the weight (0.8 MB
// for 784 -> 256), and a general GEMM or GEMV reads it as many short row streams of the
// stored [N, K] matrix; packed into 16-row blocks it is one sequential stream per block,
// which a core reads from its L2 at close to the cache's bandwidth (docs/PERFORMANCE.md,
// "Batch-1 latency").
//
//   PackedF32 p = pack_f32(w, n, k);                              // W [N, K] row-major, once
//   Kernel<LinearSmallF32>::get()(m, x, k, p, bias, y, n);        // Y = X W^T + bias
//
// The slot's "avx512" implementation splits the blocks over spin_team's threads when the
// product is large enough; "reference" computes the same bits (the same fused multiply-adds in
// the same order) one element at a time; "openblas" declines (returns false), and the caller
// then runs the general GEMM.
#pragma once

#include <cstdint>
#include <memory>

namespace soma::kernels::cpu {

inline constexpr int64_t kSmallGemmMaxRows = 4;

/// W [N, K] in blocks of 16 rows: element W[16 b + r, q] at data[(b K + q) 16 + r], zeros past
/// N. 64-byte aligned, from soma's caching allocator (a repack reuses a freed pack's block).
struct PackedF32 {
  int64_t n = 0, k = 0;
  std::shared_ptr<float> data;
  int64_t blocks() const { return (n + 15) / 16; }
};

/// Packs W [n, k] (row stride k). soma::Error when n or k is not positive.
PackedF32 pack_f32(const float* w, int64_t n, int64_t k);

/// Y[i, j] = sum_q X[i, q] W[j, q] + (bias ? bias[j] : 0) for i < m <= kSmallGemmMaxRows,
/// j < N: X [m, K] with row stride ldx, Y [m, N] with row stride ldy. Each Y[i, j] is
/// ((c0 + c1) + (c2 + c3)) + bias[j], cr a fused multiply-add chain over the q with q mod 4 = r
/// in ascending order, starting from +0. Returns false when the implementation declines.
bool linear_small_f32_avx512(int64_t m, const float* x, int64_t ldx, const PackedF32& w,
                             const float* bias, float* y, int64_t ldy);
bool linear_small_f32_reference(int64_t m, const float* x, int64_t ldx, const PackedF32& w,
                                const float* bias, float* y, int64_t ldy);
bool linear_small_f32_decline(int64_t m, const float* x, int64_t ldx, const PackedF32& w,
                              const float* bias, float* y, int64_t ldy);
bool small_gemm_avx512_available();  // AVX-512F, as cpu_features() reports it

}  // namespace soma::kernels::cpu
