// AVX-512 (F/BW/VL, with F16C's conversions in their 512-bit form) versions of the quantisation
// helpers and the bfloat16 / float16 conversions of kernels/cpu/lowp.h. Compiled for that ISA by
// function attributes; the registry runs them only where cpuid reports it
// (lowp::avx512_available). Each gives the same bits as the scalar reference.
// GCC 12 warns that the intrinsics' "undefined" vectors are uninitialised when AVX-512 comes
// from a target attribute (a false positive of GCC 12).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/cpu/lowp.h"
#include "kernels/cpu/parallel.h"

#define SOMA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c")))

namespace soma::kernels::lowp {
namespace {

SOMA_AVX512 inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF)
                    : static_cast<__mmask16>((1u << static_cast<unsigned>(left)) - 1u);
}

SOMA_AVX512 void min_max_range(const float* x, int64_t n, float* mn, float* mx, bool* has_nan) {
  __m512 lo = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  __m512 hi = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 lo2 = lo, hi2 = hi;
  __mmask16 nan = 0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 v = _mm512_loadu_ps(x + i), w = _mm512_loadu_ps(x + i + 16);
    nan |= _mm512_cmp_ps_mask(v, w, _CMP_UNORD_Q);
    // min(v, lo) returns lo when v is NaN: NaNs are skipped.
    lo = _mm512_min_ps(v, lo);
    hi = _mm512_max_ps(v, hi);
    lo2 = _mm512_min_ps(w, lo2);
    hi2 = _mm512_max_ps(w, hi2);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    nan |= _mm512_mask_cmp_ps_mask(k, v, v, _CMP_UNORD_Q);
    lo = _mm512_mask_min_ps(lo, k, v, lo);
    hi = _mm512_mask_max_ps(hi, k, v, hi);
  }
  *mn = _mm512_reduce_min_ps(_mm512_min_ps(lo, lo2));
  *mx = _mm512_reduce_max_ps(_mm512_max_ps(hi, hi2));
  *has_nan = nan != 0;
}

// One vector of 16: t = x * inv clamped to [-zp, 255 - zp] before rounding, rounded, + zp. The
// integer bounds make the result land in [0, 255] (the reference's clamp after rounding gives
// the same). vmaxps returns its second operand when the first is NaN: NaN -> -zp -> 0, as the
// reference. zp is in [0, 255] (the entry points check it).
SOMA_AVX512 inline __m512i quantize16(__m512 x, __m512 vinv, __m512 lo, __m512 hi, __m512i vzp) {
  const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, vinv), lo), hi);
  return _mm512_add_epi32(
      _mm512_cvt_roundps_epi32(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vzp);
}

SOMA_AVX512 void quantize_range(const float* x, int64_t n, float inv, int32_t zp, uint8_t* q) {
  const __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(static_cast<float>(-zp)),
               hi = _mm512_set1_ps(static_cast<float>(255 - zp));
  const __m512i vzp = _mm512_set1_epi32(zp);
  // 64 at a time, narrowed by two saturating packs (the values are in [0, 255] already, so
  // saturation never acts) and one dword permute that undoes the packs' 128-bit lane order.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i a = quantize16(_mm512_loadu_ps(x + i), vinv, lo, hi, vzp);
    const __m512i b = quantize16(_mm512_loadu_ps(x + i + 16), vinv, lo, hi, vzp);
    const __m512i c = quantize16(_mm512_loadu_ps(x + i + 32), vinv, lo, hi, vzp);
    const __m512i d = quantize16(_mm512_loadu_ps(x + i + 48), vinv, lo, hi, vzp);
    const __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(a, b), _mm512_packus_epi32(c, d));
    _mm512_storeu_si512(q + i, _mm512_permutexvar_epi32(order, bytes));
  }
  for (; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512i r = quantize16(_mm512_maskz_loadu_ps(k, x + i), vinv, lo, hi, vzp);
    _mm_mask_storeu_epi8(q + i, k, _mm512_cvtepi32_epi8(r));
  }
}

// Round to nearest even on the bits; NaN -> its top half with the quiet bit set.
SOMA_AVX512 void to_bf16_range(const float* x, uint16_t* y, int64_t n) {
  const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF),
                quiet = _mm512_set1_epi32(0x00400000), abs = _mm512_set1_epi32(0x7FFFFFFF),
                inf = _mm512_set1_epi32(0x7F800000);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512i u = _mm512_maskz_loadu_epi32(k, x + i);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, abs), inf);
    __m512i r = _mm512_add_epi32(
        u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, quiet));
    _mm256_mask_storeu_epi16(y + i, k, _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
  }
}

SOMA_AVX512 void from_bf16_range(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, x + i));
    _mm512_mask_storeu_epi32(y + i, k, _mm512_slli_epi32(h, 16));
  }
}

// vcvtps2ph: round to nearest even, subnormals and overflow to inf as IEEE says, NaN quietened
// with its payload's top bits (the scalar float_to_f16 does the same).
SOMA_AVX512 void to_f16_range(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(k, x + i),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_mask_storeu_epi16(y + i, k, h);
  }
}

SOMA_AVX512 void from_f16_range(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, x + i)));
  }
}

// Elementwise loops run on the soma threads for large inputs, in 64-element aligned shares (the
// results do not depend on the split).
template <typename F>
void elementwise(int64_t n, F f) {
  cpu::parallel_for(
      n, cpu::kParallelGrain, [&](int64_t b, int64_t e) { f(b, e); }, 64);
}

}  // namespace

void min_max_avx512(const float* x, int64_t n, float* mn, float* mx, bool* has_nan) {
  const int threads = n >= 4 * cpu::kParallelGrain ? cpu::num_threads() : 1;
  if (threads < 2) return min_max_range(x, n, mn, mx, has_nan);
  float lo[64], hi[64];
  bool nan[64];
  const int nt = std::min(threads, 64);
  for (int t = 0; t < nt; ++t) {
    lo[t] = std::numeric_limits<float>::infinity();
    hi[t] = -lo[t];
    nan[t] = false;
  }
  cpu::parallel_team(true, [&](int64_t t, int64_t team) {
    for (int64_t s = t; s < nt; s += team) {
      const int64_t b = n * s / nt, e = n * (s + 1) / nt;
      min_max_range(x + b, e - b, &lo[s], &hi[s], &nan[s]);
    }
  });
  *mn = *std::min_element(lo, lo + nt);
  *mx = *std::max_element(hi, hi + nt);
  *has_nan = std::any_of(nan, nan + nt, [](bool v) { return v; });
}

void quantize_u8_avx512(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* q) {
  const float inv = 1.0f / scale;
  elementwise(n,
              [&](int64_t b, int64_t e) { quantize_range(x + b, e - b, inv, zero_point, q + b); });
}

void quantize_u8_serial_avx512(const float* x, int64_t n, float scale, int32_t zero_point,
                               uint8_t* q) {
  quantize_range(x, n, 1.0f / scale, zero_point, q);
}

void float_to_bf16_avx512(const float* x, uint16_t* y, int64_t n) {
  elementwise(n, [&](int64_t b, int64_t e) { to_bf16_range(x + b, y + b, e - b); });
}
void bf16_to_float_avx512(const uint16_t* x, float* y, int64_t n) {
  elementwise(n, [&](int64_t b, int64_t e) { from_bf16_range(x + b, y + b, e - b); });
}
void float_to_f16_avx512(const float* x, uint16_t* y, int64_t n) {
  elementwise(n, [&](int64_t b, int64_t e) { to_f16_range(x + b, y + b, e - b); });
}
void f16_to_float_avx512(const uint16_t* x, float* y, int64_t n) {
  elementwise(n, [&](int64_t b, int64_t e) { from_f16_range(x + b, y + b, e - b); });
}

}  // namespace soma::kernels::lowp
