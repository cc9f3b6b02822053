// kernels/cpu/small_gemm.h: the packed float32 products of Linear's small-batch inference.
// The AVX-512 kernel is compiled for that ISA by function attributes and chosen by the
// registry only where cpuid (capped by SOMA_MAX_CPU_ISA) reports AVX-512F.
// GCC 12 warns that the intrinsics' "undefined" vectors are uninitialised when AVX-512 comes
// from a target attribute (a false positive of GCC 12).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels/cpu/small_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/allocator.h"
#include "kernels/cpu/parallel.h"
#include "kernels/registry.h"
#include "soma/core/error.h"

#define SOMA_AVX512 __attribute__((target("avx512f")))

namespace soma::kernels::cpu {

PackedF32 pack_f32(const float* w, int64_t n, int64_t k) {
  SOMA_CHECK(n > 0 && k > 0 && k <= (int64_t{1} << 40) / n, "pack_f32: N (", n, ") and K (", k,
             ") must be positive and N K at most 2^40");
  PackedF32 p;
  p.n = n;
  p.k = k;
  const int64_t blocks = p.blocks();
  const size_t bytes = static_cast<size_t>(blocks * k * 16) * sizeof(float);
  float* d = static_cast<float*>(soma::detail::allocate(bytes));  // soma::Error when out of memory
  p.data = std::shared_ptr<float>(d, [bytes](float* q) { soma::detail::deallocate(q, bytes); });
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t q = 0; q < k; ++q)
      for (int64_t r = 0; r < 16; ++r) {
        const int64_t j = b * 16 + r;
        d[(b * k + q) * 16 + r] = j < n ? w[j * k + q] : 0.0f;
      }
  return p;
}

bool small_gemm_avx512_available() {
  return cpu_features().avx512f;
}

bool linear_small_f32_decline(int64_t, const float*, int64_t, const PackedF32&, const float*,
                              float*, int64_t) {
  return false;
}

bool linear_small_f32_reference(int64_t m, const float* x, int64_t ldx, const PackedF32& w,
                                const float* bias, float* y, int64_t ldy) {
  if (m < 1 || m > kSmallGemmMaxRows) return false;
  const float* d = w.data.get();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < w.n; ++j) {
      float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      const float* col = d + (j / 16) * w.k * 16 + j % 16;
      for (int64_t q = 0; q < w.k; ++q) c[q % 4] = std::fma(col[q * 16], x[i * ldx + q], c[q % 4]);
      float r = (c[0] + c[1]) + (c[2] + c[3]);
      if (bias) r += bias[j];
      y[i * ldy + j] = r;
    }
  return true;
}

namespace {

// Multiply-adds (M N K) per thread when a product splits its blocks over threads: a spin_team
// handoff costs ~0.5 us on this project's VM, the 784 -> 256 layer ~8 us on one core, and the
// 256 -> 128 one (2^15) runs faster on one thread than split.
constexpr int64_t kTeamWork = int64_t{1} << 15;

// Rows [0, M) of Y over block b (outputs 16 b ..): four chains per row, over q mod 4. One block
// at a time keeps the weight one sequential stream (two or four interleaved blocks ran ~10-25 %
// slower from L2 here), and four chains cover the fused multiply-add's latency.
template <int M>
SOMA_AVX512 void rows_block(const float* x, int64_t ldx, const PackedF32& w, int64_t b,
                            const float* bias, float* y, int64_t ldy) {
  const int64_t k = w.k;
  const float* p = w.data.get() + b * k * 16;
  __m512 c[M][4];
  for (int i = 0; i < M; ++i)
    for (int r = 0; r < 4; ++r) c[i][r] = _mm512_setzero_ps();
  int64_t q = 0;
  for (; q + 4 <= k; q += 4) {
    const __m512 w0 = _mm512_load_ps(p + q * 16), w1 = _mm512_load_ps(p + (q + 1) * 16),
                 w2 = _mm512_load_ps(p + (q + 2) * 16), w3 = _mm512_load_ps(p + (q + 3) * 16);
    for (int i = 0; i < M; ++i) {
      const float* xi = x + i * ldx + q;
      c[i][0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(xi[0]), c[i][0]);
      c[i][1] = _mm512_fmadd_ps(w1, _mm512_set1_ps(xi[1]), c[i][1]);
      c[i][2] = _mm512_fmadd_ps(w2, _mm512_set1_ps(xi[2]), c[i][2]);
      c[i][3] = _mm512_fmadd_ps(w3, _mm512_set1_ps(xi[3]), c[i][3]);
    }
  }
  for (int r = 0; q < k; ++q, ++r) {
    const __m512 wq = _mm512_load_ps(p + q * 16);
    for (int i = 0; i < M; ++i)
      c[i][r] = _mm512_fmadd_ps(wq, _mm512_set1_ps(x[i * ldx + q]), c[i][r]);
  }
  const int64_t j0 = b * 16, left = w.n - j0;
  const __mmask16 mask =
      left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
  for (int i = 0; i < M; ++i) {
    __m512 r = _mm512_add_ps(_mm512_add_ps(c[i][0], c[i][1]), _mm512_add_ps(c[i][2], c[i][3]));
    if (bias) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask, bias + j0));
    _mm512_mask_storeu_ps(y + i * ldy + j0, mask, r);
  }
}

template <int M>
SOMA_AVX512 void rows_range(const float* x, int64_t ldx, const PackedF32& w, int64_t b0, int64_t b1,
                            const float* bias, float* y, int64_t ldy) {
  for (int64_t b = b0; b < b1; ++b) rows_block<M>(x, ldx, w, b, bias, y, ldy);
}

}  // namespace

bool linear_small_f32_avx512(int64_t m, const float* x, int64_t ldx, const PackedF32& w,
                             const float* bias, float* y, int64_t ldy) {
  if (m < 1 || m > kSmallGemmMaxRows) return false;
  const int64_t blocks = w.blocks();
  auto body = [&](int64_t t, int64_t nt) {
    const int64_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
    switch (m) {
      case 1:
        return rows_range<1>(x, ldx, w, b0, b1, bias, y, ldy);
      case 2:
        return rows_range<2>(x, ldx, w, b0, b1, bias, y, ldy);
      case 3:
        return rows_range<3>(x, ldx, w, b0, b1, bias, y, ldy);
      default:
        return rows_range<4>(x, ldx, w, b0, b1, bias, y, ldy);
    }
  };
  // At most one thread per block and per kTeamWork multiply-adds: 2 from 2^16.
  const int64_t max_threads = std::min(blocks, m * w.n * w.k / kTeamWork);
  if (max_threads >= 2)
    spin_team(body, max_threads);
  else
    body(0, 1);
  return true;
}

}  // namespace soma::kernels::cpu
#pragma GCC diagnostic pop
