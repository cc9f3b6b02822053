// Low-precision CPU kernels (internal): int8 GEMM (u8 activations x s8 weights, exact int32
// accumulation, and a dynamic-quantised Linear with its dequantisation fused into the GEMM),
// the quantisation helpers it needs, bfloat16 / float16 conversions, and a bfloat16 GEMM with
// float32 accumulation (torch.autocast(bfloat16) matmul semantics with a float32 output).
//
// Every entry point below calls through the kernel registry (kernels/kernels.h: the Lowp*
// slots), which picks by CPU features (kernels::cpu_features(), capped by SOMA_MAX_CPU_ISA):
//   int8 GEMM    "vnni" (AVX-512 VNNI vpdpbusd), "avx512" (AVX-512BW: widened to int16 and
//                vpmaddwd, exact), "reference" (scalar)
//   bf16 GEMM    "avx512_bf16" (vdpbf16ps), "cpu" (operands rounded to bfloat16, then the float32
//                GEMM: the same products, exactly), "reference" (scalar)
//   the rest     "avx512" (AVX-512F/BW, F16C), "reference" (scalar)
// The ISA-specific code is compiled with __attribute__((target(...))), so it is built whatever
// the build's -march, and runs only where cpuid reports the instructions.
#pragma once

#include <cstdint>
#include <vector>

namespace soma::kernels::lowp {

/// int8 weights W [N, K] (row-major: nn::Linear's weight layout), packed once for the u8 x s8
/// kernels. ONE layout shared by every implementation (VNNI, AVX-512BW fallback, scalar
/// reference) so a packed matrix works whichever implementation runs.
///
/// Layout: N is cut into panels of kPanel (64) columns (the last one narrower: its width
/// rounded up to a multiple of 16); K is padded with zeros to a multiple of 4 (kp). A panel of
/// width w starting at column n0 is stored at data[n0 * kp], as kp / 4 groups of w * 4 bytes:
/// group g holds, for j = 0..w-1, the four bytes W[n0 + j, 4g .. 4g + 3] (zeros past N or K).
/// That is what vpdpbusd multiplies against four broadcast activation bytes.
struct PackedS8 {
  int64_t n = 0, k = 0;
  std::vector<int8_t> data;       // (use an aligned allocator if you need; layout is yours)
  std::vector<int32_t> col_sums;  // sum_k W[n, k] (for the activation zero point)
};
inline constexpr int64_t kPanel = 64;
/// K rounded up to a multiple of 4, and the panel width at column n0 (see PackedS8).
inline int64_t packed_k(int64_t k) {
  return (k + 3) / 4 * 4;
}
inline int64_t panel_width(int64_t n, int64_t n0) {
  const int64_t left = n - n0;
  return left >= kPanel ? kPanel : (left + 15) / 16 * 16;
}

PackedS8 pack_s8(const int8_t* w, int64_t n, int64_t k);
/// C[m, n] = sum_k A[m, k] * W[n, k], exact int32. A: uint8 [M, K], row stride lda.
/// K is at most 65793 (255 * 128 * K fits int32; gemm_u8s8_f32: half that), else soma::Error.
void gemm_u8s8s32(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w, int32_t* c,
                  int64_t ldc);
/// Dynamic-quantised Linear, fused epilogue (no int32 round trip through memory):
/// y[m, n] = a_scale * w_scale[n] * (C[m, n] - a_zero_point * col_sums[n]) + (bias ? bias[n] : 0)
/// computed in float32 as float(C - zp cs) * (a_scale * w_scale[n]) + bias (the int32
/// difference exact, one rounding for the conversion, a fused or separate multiply-add).
/// relu: y = std::max(y, 0.0f) in the same epilogue (bit for bit the separate pass).
void gemm_u8s8_f32(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w,
                   int32_t a_zero_point, float a_scale, const float* w_scale, const float* bias,
                   float* y, int64_t ldy, bool relu = false);
/// quantize_u8(A, a_scale, a_zero_point) then gemm_u8s8_f32 in one pass, A float32 [M, K] with
/// row stride lda: each thread quantises the rows it multiplies, a block at a time, into a
/// buffer of its own (no uint8 copy of A, no second parallel region). The same bits as the two
/// calls.
void quantize_gemm_u8s8_f32(int64_t m, const float* a, int64_t lda, const PackedS8& w,
                            int32_t a_zero_point, float a_scale, const float* w_scale,
                            const float* bias, float* y, int64_t ldy, bool relu = false);
/// min and max of x[0..n) (NaN: report it via has_nan so the caller can raise soma::Error).
/// n == 0 gives mn = +inf, mx = -inf. With a NaN, mn and mx are those of the other elements.
void min_max(const float* x, int64_t n, float* mn, float* mx, bool* has_nan);
/// q[i] = clamp(nearbyint(x[i] * inv_scale) + zero_point, 0, 255) with inv_scale = 1.0f / scale
/// in float32, as torch.quantize_per_tensor(quint8) (fbgemm) rounds: the product rounded to
/// float32, then to the nearest integer, ties to even (bit-exact against torch 1.13 in
/// tests/kernels/lowp_test.cpp). Out of range saturates: +inf gives 255, -inf 0, NaN 0 (torch
/// gives 0 when |x * inv_scale| >= 2^63, from an out-of-range float-to-int64 conversion).
void quantize_u8(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* q);
/// bfloat16 <-> float32: round to nearest even; NaN stays a (quiet) NaN; inf, subnormals kept.
void float_to_bf16(const float* x, uint16_t* y, int64_t n);
void bf16_to_float(const uint16_t* x, float* y, int64_t n);
/// float16 (IEEE binary16) <-> float32, RNE, NaN/inf/subnormals correct (F16C/AVX512 where
/// available); overflow (|x| >= 65520) gives inf.
void float_to_f16(const float* x, uint16_t* y, int64_t n);
void f16_to_float(const uint16_t* x, float* y, int64_t n);
/// C = alpha op(A) op(B) + beta C as cpu::gemm<float> (same row-major convention and argument
/// order as src/kernels/cpu/gemm.h), but A and B are rounded to bfloat16 and products accumulated
/// in float32 (torch.autocast bf16 matmul semantics with a float32 output). All four trans combos
/// (training uses X W^T, dY W, dY^T X). The avx512_bf16 backend's vdpbf16ps treats subnormal
/// bfloat16 inputs (|x| < 2^-126) as zero, as the hardware does; beta == 0 ignores C's contents.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc);

/// One value, scalar (the references use these; exact, as described above).
uint16_t float_to_bf16(float x);
float bf16_to_float(uint16_t x);
uint16_t float_to_f16(float x);
float f16_to_float(uint16_t x);

// ---- the implementations the registry chooses between (kernels/register.cpp) ---------------
// *_reference: scalar, one thread. *_vnni / *_avx512 / *_avx512_bf16: need the CPU features
// their availability tests check (vnni_available() etc., from kernels::cpu_features()).
bool vnni_available();    // AVX-512 F/BW/VL/VNNI
bool avx512_available();  // AVX-512 F/BW/VL (+ F16C)
bool bf16_available();    // AVX-512 F/BW/VL/BF16

void gemm_u8s8s32_reference(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w, int32_t* c,
                            int64_t ldc);
void gemm_u8s8s32_vnni(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w, int32_t* c,
                       int64_t ldc);
void gemm_u8s8s32_avx512(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w, int32_t* c,
                         int64_t ldc);
void gemm_u8s8_f32_reference(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w,
                             int32_t a_zero_point, float a_scale, const float* w_scale,
                             const float* bias, float* y, int64_t ldy, bool relu);
void quantize_gemm_u8s8_f32_reference(int64_t m, const float* a, int64_t lda, const PackedS8& w,
                                      int32_t a_zero_point, float a_scale, const float* w_scale,
                                      const float* bias, float* y, int64_t ldy, bool relu);
void gemm_u8s8_f32_vnni(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w,
                        int32_t a_zero_point, float a_scale, const float* w_scale,
                        const float* bias, float* y, int64_t ldy, bool relu);
void quantize_gemm_u8s8_f32_vnni(int64_t m, const float* a, int64_t lda, const PackedS8& w,
                                 int32_t a_zero_point, float a_scale, const float* w_scale,
                                 const float* bias, float* y, int64_t ldy, bool relu);
void gemm_u8s8_f32_avx512(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w,
                          int32_t a_zero_point, float a_scale, const float* w_scale,
                          const float* bias, float* y, int64_t ldy, bool relu);
void quantize_gemm_u8s8_f32_avx512(int64_t m, const float* a, int64_t lda, const PackedS8& w,
                                   int32_t a_zero_point, float a_scale, const float* w_scale,
                                   const float* bias, float* y, int64_t ldy, bool relu);

void min_max_reference(const float* x, int64_t n, float* mn, float* mx, bool* has_nan);
void min_max_avx512(const float* x, int64_t n, float* mn, float* mx, bool* has_nan);
void quantize_u8_reference(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* q);
void quantize_u8_avx512(const float* x, int64_t n, float scale, int32_t zero_point, uint8_t* q);
/// quantize_u8_avx512 on the calling thread only (the int8 GEMMs quantise their own rows).
void quantize_u8_serial_avx512(const float* x, int64_t n, float scale, int32_t zero_point,
                               uint8_t* q);
void float_to_bf16_reference(const float* x, uint16_t* y, int64_t n);
void float_to_bf16_avx512(const float* x, uint16_t* y, int64_t n);
void bf16_to_float_reference(const uint16_t* x, float* y, int64_t n);
void bf16_to_float_avx512(const uint16_t* x, float* y, int64_t n);
void float_to_f16_reference(const float* x, uint16_t* y, int64_t n);
void float_to_f16_avx512(const float* x, uint16_t* y, int64_t n);
void f16_to_float_reference(const uint16_t* x, float* y, int64_t n);
void f16_to_float_avx512(const uint16_t* x, float* y, int64_t n);

void gemm_bf16_reference(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                         const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                         float* c, int64_t ldc);
void gemm_bf16_cpu(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                   int64_t ldc);
void gemm_bf16_avx512_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                           const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                           float* c, int64_t ldc);

}  // namespace soma::kernels::lowp
