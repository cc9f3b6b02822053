// SLEEF's xexpf (sleefsimdsp.c, the u10 variant ATen calls): q = rint(x / ln 2), the reduced
// argument s = x - q ln 2 in two fused steps (ln 2 split in a high and a low part), a degree-6
// polynomial for (e^s - 1 - s) / s^2, and 2^q applied as two exact powers of two. Compiled with
// -ffp-contract=off (CMakeLists.txt): every fused multiply-add is spelled out, none is added.
#include "kernels/cpu/exp.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cmath>

#include "kernels/cpu/vector_isa.h"

namespace soma::kernels::cpu {

namespace {

constexpr float kLog2e = 1.442695040888963407359924681001892137f;
constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 to 16 bits: q * kLn2Hi is exact
constexpr float kLn2Lo = 1.428606765330187045e-06f;
constexpr float kC[6] = {0.000198527617612853646278381f, 0.00139304355252534151077271f,
                         0.00833336077630519866943359f,  0.0416664853692054748535156f,
                         0.166666671633720397949219f,    0.5f};
// Outside [-104, 100] the result is 0 or inf whatever q is; clamping first keeps the float to
// int conversion of q defined (the clamp leaves every input in that range as it is).
constexpr float kLow = -104.0f, kHigh = 100.0f, kClamp = 110.0f;

float pow2i(int32_t q) {  // 2^q for -126 <= q <= 127
  return std::bit_cast<float>(static_cast<uint32_t>(q + 0x7f) << 23);
}

}  // namespace

float exp_float(float v) {
  if (std::isnan(v)) return v;
  const float d = std::min(std::max(v, -kClamp), kClamp);
  const auto q = static_cast<int32_t>(std::nearbyint(d * kLog2e));
  const auto qf = static_cast<float>(q);
  float s = std::fma(qf, -kLn2Hi, d);
  s = std::fma(qf, -kLn2Lo, s);
  float u = kC[0];
  for (int k = 1; k < 6; ++k) u = std::fma(u, s, kC[k]);
  u = 1.0f + std::fma(s * s, u, s);
  const int32_t h = q >> 1;  // arithmetic shift, as SLEEF's vsra
  u = u * pow2i(h) * pow2i(q - h);
  if (d < kLow) return 0.0f;
  if (d > kHigh) return HUGE_VALF;
  return u;
}

#if SOMA_HAVE_TARGET_AVX512
namespace {

SOMA_TARGET_AVX512 void exp_avx512(const float* x, float* y, int64_t n) {
  const __m512 log2e = _mm512_set1_ps(kLog2e), ln2hi = _mm512_set1_ps(-kLn2Hi),
               ln2lo = _mm512_set1_ps(-kLn2Lo), one = _mm512_set1_ps(1.0f),
               lo = _mm512_set1_ps(kLow), hi = _mm512_set1_ps(kHigh),
               clamp = _mm512_set1_ps(kClamp), inf = _mm512_set1_ps(HUGE_VALF);
  const __m512i bias = _mm512_set1_epi32(0x7f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    // max/min return their second operand for NaN: v's NaN lanes are restored at the end
    const __m512 d =
        _mm512_min_ps(_mm512_max_ps(v, _mm512_sub_ps(_mm512_setzero_ps(), clamp)), clamp);
    const __m512i q = _mm512_cvt_roundps_epi32(_mm512_mul_ps(d, log2e),
                                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 qf = _mm512_cvtepi32_ps(q);
    __m512 s = _mm512_fmadd_ps(qf, ln2hi, d);
    s = _mm512_fmadd_ps(qf, ln2lo, s);
    __m512 u = _mm512_set1_ps(kC[0]);
    for (int k = 1; k < 6; ++k) u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(kC[k]));
    u = _mm512_add_ps(one, _mm512_fmadd_ps(_mm512_mul_ps(s, s), u, s));
    const __m512i h = _mm512_srai_epi32(q, 1);
    const __m512 p1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(h, bias), 23));
    const __m512 p2 =
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_sub_epi32(q, h), bias), 23));
    u = _mm512_mul_ps(_mm512_mul_ps(u, p1), p2);
    u = _mm512_mask_mov_ps(u, _mm512_cmp_ps_mask(d, lo, _CMP_LT_OQ), _mm512_setzero_ps());
    u = _mm512_mask_mov_ps(u, _mm512_cmp_ps_mask(d, hi, _CMP_GT_OQ), inf);
    u = _mm512_mask_mov_ps(u, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
    _mm512_mask_storeu_ps(y + i, m, u);
  }
}

}  // namespace
#endif

void exp_float(const float* x, float* y, int64_t n) {
#if SOMA_HAVE_TARGET_AVX512
  if (vector_level() == 2) return exp_avx512(x, y, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = exp_float(x[i]);
}

}  // namespace soma::kernels::cpu
