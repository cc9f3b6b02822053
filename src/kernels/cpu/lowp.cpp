// Low-precision kernels (kernels/cpu/lowp.h): the entry points (argument checks, then the
// registry's choice), the shared int8 packing, the scalar conversions and the references.
#include "kernels/cpu/lowp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/kernels_lowp.h"
#include "soma/core/error.h"

namespace soma::kernels::lowp {

bool vnni_available() {
  const CpuFeatures& f = cpu_features();
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512_vnni;
}
bool avx512_available() {
  const CpuFeatures& f = cpu_features();
  return f.avx512f && f.avx512bw && f.avx512vl;  // every AVX-512 CPU has F16C
}
bool bf16_available() {
  const CpuFeatures& f = cpu_features();
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512_bf16;
}

// ---- scalar conversions ----------------------------------------------------------------------

namespace {
uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
}  // namespace

uint16_t float_to_bf16(float x) {
  const uint32_t u = bits_of(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

float bf16_to_float(uint16_t x) {
  return from_bits(static_cast<uint32_t>(x) << 16);
}

uint16_t float_to_f16(float x) {
  const uint32_t u = bits_of(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((a >> 13) & 0x3FFu);  // NaN
  if (a >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 (the tie above 65504 goes to even)
  if (a >= 0x38800000u) {                       // a normal half (>= 2^-14)
    const uint32_t r = a - 0x38000000u;         // exponent rebiased from 127 to 15
    return sign | static_cast<uint16_t>((r + 0xFFFu + ((r >> 13) & 1u)) >> 13);
  }
  if (a <= 0x33000000u) return sign;  // <= 2^-25: rounds to zero (2^-25 itself ties to even 0)
  // A subnormal half: the value in units of 2^-24, rounded to nearest even.
  const uint32_t e = a >> 23, mant = (a & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - e;  // 1..24
  uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return sign | static_cast<uint16_t>(q);
}

float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  if (e == 0x1F) return from_bits(sign | 0x7F800000u | (m << 13) | (m != 0 ? 0x400000u : 0u));
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);  // exact
    return sign != 0 ? -v : v;
  }
  return from_bits(sign | ((e + 112) << 23) | (m << 13));
}

// ---- packing
// -------------------------------------------------------------------------------------

PackedS8 pack_s8(const int8_t* w, int64_t n, int64_t k) {
  SOMA_CHECK(n >= 0 && k >= 0, "lowp::pack_s8: negative size N=", n, " K=", k);
  SOMA_CHECK(w != nullptr || n * k == 0, "lowp::pack_s8: null weights for N=", n, " K=", k);
  PackedS8 p;
  p.n = n;
  p.k = k;
  const int64_t kp = packed_k(k);
  int64_t total = 0;
  for (int64_t n0 = 0; n0 < n; n0 += kPanel) total += panel_width(n, n0) * kp;
  p.data.assign(static_cast<size_t>(total), 0);
  p.col_sums.assign(static_cast<size_t>(n), 0);
  for (int64_t n0 = 0; n0 < n; n0 += kPanel) {
    const int64_t width = panel_width(n, n0);
    int8_t* panel = p.data.data() + n0 * kp;
    for (int64_t j = 0; j < width && n0 + j < n; ++j) {
      const int8_t* row = w + (n0 + j) * k;
      int32_t sum = 0;
      for (int64_t q = 0; q < k; ++q) {
        panel[(q / 4) * width * 4 + j * 4 + q % 4] = row[q];
        sum += row[q];
      }
      p.col_sums[static_cast<size_t>(n0 + j)] = sum;
    }
  }
  return p;
}

namespace {

// W[j, q] from the packed layout (the references read it back, so they test it too).
int8_t packed_at(const PackedS8& w, int64_t j, int64_t q) {
  const int64_t n0 = j / kPanel * kPanel, width = panel_width(w.n, n0);
  return w
      .data[static_cast<size_t>(n0 * packed_k(w.k) + (q / 4) * width * 4 + (j - n0) * 4 + q % 4)];
}

constexpr int64_t kMaxKInt32 = ((int64_t{1} << 31) - 1) / (255 * 128);  // 65793

void check_packed(const char* op, int64_t m, int64_t lda, const PackedS8& w, int64_t ldc) {
  SOMA_CHECK(m >= 0, op, ": negative M=", m);
  SOMA_CHECK(w.n >= 0 && w.k >= 0, op, ": packed weights with negative size N=", w.n, " K=", w.k);
  int64_t total = 0;
  for (int64_t n0 = 0; n0 < w.n; n0 += kPanel) total += panel_width(w.n, n0) * packed_k(w.k);
  SOMA_CHECK(static_cast<int64_t>(w.data.size()) == total &&
                 static_cast<int64_t>(w.col_sums.size()) == w.n,
             op, ": packed weights of N=", w.n, " K=", w.k, " hold ", w.data.size(), " bytes and ",
             w.col_sums.size(), " column sums (expected ", total, " and ", w.n,
             "; make them with lowp::pack_s8)");
  SOMA_CHECK(lda >= w.k || m <= 1, op, ": lda=", lda, " is less than K=", w.k);
  SOMA_CHECK(ldc >= w.n || m <= 1, op, ": the output's leading dimension ", ldc,
             " is less than N=", w.n);
}

}  // namespace

// ---- int8 GEMM -------------------------------------------------------------------------------

void gemm_u8s8s32(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w, int32_t* c,
                  int64_t ldc) {
  check_packed("lowp::gemm_u8s8s32", m, lda, w, ldc);
  // 255 * 128 * K must fit int32.
  SOMA_CHECK(w.k <= kMaxKInt32, "lowp::gemm_u8s8s32: K=", w.k,
             " could overflow the int32 sums (at most ", kMaxKInt32, ")");
  if (m == 0 || w.n == 0) return;
  Kernel<LowpGemmU8S8S32>::get()(m, a, lda, w, c, ldc);
}

namespace {
void check_f32_epilogue(const char* op, int64_t m, int64_t lda, const PackedS8& w,
                        int32_t a_zero_point, const float* w_scale, int64_t ldy) {
  check_packed(op, m, lda, w, ldy);
  // C - zp col_sums, up to 2 * 255 * 128 * K in magnitude, must fit int32.
  SOMA_CHECK(w.k <= kMaxKInt32 / 2, op, ": K=", w.k, " could overflow the int32 sums (at most ",
             kMaxKInt32 / 2, ")");
  SOMA_CHECK(a_zero_point >= 0 && a_zero_point <= 255, op, ": activation zero point ", a_zero_point,
             " is outside [0, 255]");
  SOMA_CHECK(w_scale != nullptr || w.n == 0, op, ": no weight scales");
}
}  // namespace

void gemm_u8s8_f32(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w,
                   int32_t a_zero_point, float a_scale, const float* w_scale, const float* bias,
                   float* y, int64_t ldy, bool relu) {
  check_f32_epilogue("lowp::gemm_u8s8_f32", m, lda, w, a_zero_point, w_scale, ldy);
  if (m == 0 || w.n == 0) return;
  Kernel<LowpGemmU8S8F32>::get()(m, a, lda, w, a_zero_point, a_scale, w_scale, bias, y, ldy, relu);
}

void quantize_gemm_u8s8_f32(int64_t m, const float* a, int64_t lda, const PackedS8& w,
                            int32_t a_zero_point, float a_scale, const float* w_scale,
                            const float* bias, float* y, int64_t ldy, bool relu) {
  check_f32_epilogue("lowp::quantize_gemm_u8s8_f32", m, lda, w, a_zero_point, w_scale, ldy);
  SOMA_CHECK(std::isfinite(a_scale) && a_scale > 0, "lowp::quantize_gemm_u8s8_f32: scale ", a_scale,
             " is not a positive finite number");
  if (m == 0 || w.n == 0) return;
  Kernel<LowpQuantizeGemmU8S8F32>::get()(m, a, lda, w, a_zero_point, a_scale, w_scale, bias, y, ldy,
                                         relu);
}

void gemm_u8s8s32_reference(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w, int32_t* c,
                            int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < w.n; ++j) {
      int64_t s = 0;
      for (int64_t q = 0; q < w.k; ++q) s += int64_t{a[i * lda + q]} * packed_at(w, j, q);
      c[i * ldc + j] = static_cast<int32_t>(s);
    }
}

void gemm_u8s8_f32_reference(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w,
                             int32_t a_zero_point, float a_scale, const float* w_scale,
                             const float* bias, float* y, int64_t ldy, bool relu) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < w.n; ++j) {
      int64_t s = 0;
      for (int64_t q = 0; q < w.k; ++q) s += int64_t{a[i * lda + q]} * packed_at(w, j, q);
      s -= int64_t{a_zero_point} * w.col_sums[static_cast<size_t>(j)];
      const float scale = a_scale * w_scale[j];
      const float v = std::fma(static_cast<float>(s), scale, bias != nullptr ? bias[j] : 0.0f);
      y[i * ldy + j] = relu ? std::max(v, 0.0f) : v;
    }
}

void quantize_gemm_u8s8_f32_reference(int64_t m, const float* a, int64_t lda, const PackedS8& w,
                                      int32_t a_zero_point, float a_scale, const float* w_scale,
                                      const float* bias, float* y, int64_t ldy, bool relu) {
  std::vector<uint8_t> q(static_cast<size_t>(w.k));
  for (int64_t i = 0; i < m; ++i) {
    quantize_u8_reference(a + i * lda, w.k, a_scale, a_zero_point, q.data());
    gemm_u8s8_f32_reference(1, q.data(), w.k, w, a_zero_point, a_scale, w_scale, bias, y + i * ldy,
                            ldy, relu);
  }
}

// ---- quantisation helpers --------------------------------------------------------------------

void min_max(const float* x, int64_t n, float* mn, float* mx, bool* has_nan) {
  SOMA_CHECK(n >= 0, "lowp::min_max: negative size ", n);
  Kernel<LowpMinMax>::get()(x, n, mn, mx, has_nan);
}

void quantize_u8(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* q) {
  SOMA_CHECK(n >= 0, "lowp::quantize_u8: negative size ", n);
  SOMA_CHECK(std::isfinite(scale) && scale > 0, "lowp::quantize_u8: scale ", scale,
             " is not a positive finite number");
  SOMA_CHECK(zero_point >= 0 && zero_point <= 255, "lowp::quantize_u8: zero point ", zero_point,
             " is outside [0, 255]");
  Kernel<LowpQuantizeU8>::get()(x, n, scale, zero_point, q);
}

void min_max_reference(const float* x, int64_t n, float* mn, float* mx, bool* has_nan) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) {
      nan = true;
      continue;
    }
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  *mn = lo;
  *mx = hi;
  *has_nan = nan;
}

void quantize_u8_reference(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* q) {
  const float inv = 1.0f / scale;
  for (int64_t i = 0; i < n; ++i) {
    const float t = x[i] * inv;  // rounded to float32, as fbgemm
    if (std::isnan(t)) {
      q[i] = 0;
      continue;
    }
    // Clamped before rounding (the result's clamp to [0, 255] makes it invisible): no
    // overflow in the conversion.
    const float r = std::nearbyint(std::clamp(t, -1024.0f, 1024.0f));
    q[i] = static_cast<uint8_t>(std::clamp(static_cast<int32_t>(r) + zero_point, 0, 255));
  }
}

// ---- conversions -------------------------------------------------------------------------------

void float_to_bf16(const float* x, uint16_t* y, int64_t n) {
  SOMA_CHECK(n >= 0, "lowp::float_to_bf16: negative size ", n);
  Kernel<LowpFloatToBf16>::get()(x, y, n);
}
void bf16_to_float(const uint16_t* x, float* y, int64_t n) {
  SOMA_CHECK(n >= 0, "lowp::bf16_to_float: negative size ", n);
  Kernel<LowpBf16ToFloat>::get()(x, y, n);
}
void float_to_f16(const float* x, uint16_t* y, int64_t n) {
  SOMA_CHECK(n >= 0, "lowp::float_to_f16: negative size ", n);
  Kernel<LowpFloatToF16>::get()(x, y, n);
}
void f16_to_float(const uint16_t* x, float* y, int64_t n) {
  SOMA_CHECK(n >= 0, "lowp::f16_to_float: negative size ", n);
  Kernel<LowpF16ToFloat>::get()(x, y, n);
}

void float_to_bf16_reference(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = float_to_bf16(x[i]);
}
void bf16_to_float_reference(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_float(x[i]);
}
void float_to_f16_reference(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = float_to_f16(x[i]);
}
void f16_to_float_reference(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f16_to_float(x[i]);
}

// ---- bfloat16 GEMM -----------------------------------------------------------------------------

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc) {
  SOMA_CHECK(m >= 0 && n >= 0 && k >= 0, "lowp::gemm_bf16: negative size M=", m, " N=", n,
             " K=", k);
  SOMA_CHECK(lda >= std::max<int64_t>(1, trans_a ? m : k) || m == 0 || k == 0,
             "lowp::gemm_bf16: lda=", lda, " too small for M=", m, " K=", k,
             trans_a ? " (A transposed)" : "");
  SOMA_CHECK(ldb >= std::max<int64_t>(1, trans_b ? k : n) || n == 0 || k == 0,
             "lowp::gemm_bf16: ldb=", ldb, " too small for K=", k, " N=", n,
             trans_b ? " (B transposed)" : "");
  SOMA_CHECK(ldc >= std::max<int64_t>(1, n) || m == 0 || n == 0, "lowp::gemm_bf16: ldc=", ldc,
             " is less than N=", n);
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta C
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  Kernel<LowpGemmBf16>::get()(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm_bf16_reference(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                         float* c, int64_t ldc) {
  auto round = [](float v) { return bf16_to_float(float_to_bf16(v)); };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) {
        const float av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        s += static_cast<double>(round(av)) * round(bv);
      }
      float& out = c[i * ldc + j];
      out = static_cast<float>(alpha * s + (beta == 0.0f ? 0.0 : double{beta} * out));
    }
}

namespace {
// x rounded to the nearest bfloat16, as a float32 (NaN stays NaN).
inline float round_bf16(float x) {
  uint32_t u = bits_of(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return x;
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  return from_bits(u);
}
}  // namespace

void gemm_bf16_cpu(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                   int64_t ldc) {
  // The products of two bfloat16 values are exact in float32, so the float32 GEMM of the
  // rounded operands is the bfloat16 GEMM with float32 accumulation.
  const int64_t ar = trans_a ? k : m, ac = trans_a ? m : k;  // A as stored
  const int64_t br = trans_b ? n : k, bc = trans_b ? k : n;
  thread_local std::vector<float> abuf, bbuf;
  abuf.resize(static_cast<size_t>(ar * ac));
  bbuf.resize(static_cast<size_t>(br * bc));
  for (int64_t r = 0; r < ar; ++r)
    for (int64_t q = 0; q < ac; ++q) abuf[r * ac + q] = round_bf16(a[r * lda + q]);
  for (int64_t r = 0; r < br; ++r)
    for (int64_t q = 0; q < bc; ++q) bbuf[r * bc + q] = round_bf16(b[r * ldb + q]);
  cpu::gemm<float>(trans_a, trans_b, m, n, k, alpha, abuf.data(), ac, bbuf.data(), bc, beta, c,
                   ldc);
}

}  // namespace soma::kernels::lowp
