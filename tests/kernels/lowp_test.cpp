// The low-precision kernels (src/kernels/cpu/lowp.h), every registered implementation by name
// (an implementation the CPU, or SOMA_MAX_CPU_ISA, does not allow is skipped):
//   int8 GEMM      exact against an int32 triple loop written here, odd shapes and tails,
//                  extreme values, 1 and 2 threads; the fused dequantisation against float
//                  arithmetic on that exact int32 result; its ReLU bit for bit against
//                  std::max on the same backend's plain output; the fused quantise + GEMM bit
//                  for bit against quantize_u8_reference then the same backend's GEMM
//   bf16 GEMM      against a float64 product of the bfloat16-rounded inputs (rounded here),
//                  tolerance from K and float32 accumulation; all transposes, odd shapes
//   conversions    bfloat16 / float16 bit patterns and quantize_u8 against PyTorch
//                  (tests/reference/lowp_conversion.py -> lowp_conversion_reference.txt), and
//                  exhaustive 16-bit round trips
//   the ISA cap    SOMA_MAX_CPU_ISA (ctest kernels.lowp_isa_* run these tests under a cap)
#include "kernels/cpu/lowp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu_isa.h"
#include "kernels/kernels_lowp.h"
#include "reference/reference_file.h"
#include "soma/soma.h"

namespace {

namespace k = soma::kernels;
namespace lp = soma::kernels::lowp;

struct ThreadsGuard {
  int prev = soma::get_num_threads();
  ~ThreadsGuard() { soma::set_num_threads(prev); }
};

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
bool bf16_is_nan(uint16_t h) {
  return (h & 0x7F80) == 0x7F80 && (h & 0x7F) != 0;
}
bool f16_is_nan(uint16_t h) {
  return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
}
std::string hex(uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

// ---- int8 GEMM ---------------------------------------------------------------------------------

// The int32 product written out: C[i, j] = sum_q A[i, q] W[j, q].
std::vector<int32_t> int8_product(int64_t m, int64_t n, int64_t kk, const std::vector<uint8_t>& a,
                                  int64_t lda, const std::vector<int8_t>& w) {
  std::vector<int32_t> c(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int32_t s = 0;
      for (int64_t q = 0; q < kk; ++q) s += int32_t{a[i * lda + q]} * int32_t{w[j * kk + q]};
      c[i * n + j] = s;
    }
  return c;
}

// Activations and weights: uniform, with a share of the extremes (0 / 255, -128 / 127).
void fill_int8(std::mt19937& rng, std::vector<uint8_t>& a, std::vector<int8_t>& w) {
  std::uniform_int_distribution<int> pick(0, 9), u8(0, 255), s8(-128, 127);
  for (uint8_t& v : a) {
    const int p = pick(rng);
    v = static_cast<uint8_t>(p == 0 ? 0 : p == 1 ? 255 : u8(rng));
  }
  for (int8_t& v : w) {
    const int p = pick(rng);
    v = static_cast<int8_t>(p == 0 ? -128 : p == 1 ? 127 : s8(rng));
  }
}

class LowpInt8 : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    s32_ = k::Kernel<k::LowpGemmU8S8S32>::get(GetParam());
    f32_ = k::Kernel<k::LowpGemmU8S8F32>::get(GetParam());
    qf32_ = k::Kernel<k::LowpQuantizeGemmU8S8F32>::get(GetParam());
    if (s32_ == nullptr || f32_ == nullptr || qf32_ == nullptr)
      GTEST_SKIP() << "backend " << GetParam() << " is not available on this CPU (ISA "
                   << k::cpu_isa_name() << ")";
  }
  k::LowpGemmU8S8S32::Fn* s32_ = nullptr;
  k::LowpGemmU8S8F32::Fn* f32_ = nullptr;
  k::LowpQuantizeGemmU8S8F32::Fn* qf32_ = nullptr;
};

TEST_P(LowpInt8, ExactAgainstTripleLoop) {
  ThreadsGuard guard;
  std::mt19937 rng(7);
  int64_t shapes = 0;
  for (int threads : {1, 2}) {
    soma::set_num_threads(threads);
    for (int64_t m : {1, 2, 3, 7, 17, 64, 129})
      for (int64_t n : {1, 5, 16, 17, 33, 130})
        for (int64_t kk : {1, 3, 4, 5, 63, 64, 785}) {
          // Padded rows on some shapes (lda > K, ldc > N): the padding must stay untouched.
          const bool padded = (m + n + kk) % 2 == 1;
          const int64_t lda = padded ? kk + 3 : kk, ldc = padded ? n + 5 : n;
          std::vector<uint8_t> a(static_cast<size_t>(m * lda));
          std::vector<int8_t> w(static_cast<size_t>(n * kk));
          fill_int8(rng, a, w);
          const lp::PackedS8 packed = lp::pack_s8(w.data(), n, kk);
          const std::vector<int32_t> want = int8_product(m, n, kk, a, lda, w);
          std::vector<int32_t> got(static_cast<size_t>(m * ldc), -7);
          s32_(m, a.data(), lda, packed, got.data(), ldc);
          int64_t bad = 0;
          std::string first;
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const int32_t expect = j < n ? want[i * n + j] : -7;
              if (got[i * ldc + j] != expect && bad++ == 0)
                first = "C[" + std::to_string(i) + ", " + std::to_string(j) +
                        "] = " + std::to_string(got[i * ldc + j]) + ", expected " +
                        std::to_string(expect);
            }
          EXPECT_EQ(bad, 0) << GetParam() << " m=" << m << " n=" << n << " k=" << kk
                            << " threads=" << threads << ": " << bad << " wrong, first " << first;
          // col_sums is part of the packed weights
          for (int64_t j = 0; j < n; ++j) {
            int32_t s = 0;
            for (int64_t q = 0; q < kk; ++q) s += w[j * kk + q];
            ASSERT_EQ(packed.col_sums[j], s) << "col_sums[" << j << "] n=" << n << " k=" << kk;
          }
          ++shapes;
        }
  }
  EXPECT_EQ(shapes, 2 * 7 * 6 * 7);
}

// The largest magnitudes everywhere: 255 x -128 and 255 x 127 over K = 785 (sums of
// +-25.6 million; vpmaddubsw's int16 saturation would show here).
TEST_P(LowpInt8, ExtremeValuesDoNotSaturate) {
  for (int w_value : {-128, 127}) {
    const int64_t m = 7, n = 33, kk = 785;
    std::vector<uint8_t> a(static_cast<size_t>(m * kk), 255);
    std::vector<int8_t> w(static_cast<size_t>(n * kk), static_cast<int8_t>(w_value));
    const lp::PackedS8 packed = lp::pack_s8(w.data(), n, kk);
    std::vector<int32_t> got(static_cast<size_t>(m * n));
    s32_(m, a.data(), kk, packed, got.data(), n);
    for (int32_t v : got) ASSERT_EQ(v, 255 * w_value * kk) << GetParam();
  }
}

// y = a_scale w_scale[n] (C - zp col_sums[n]) + bias[n], against float arithmetic on the exact
// int32 C computed here (tolerance: a few float32 roundings of the terms).
TEST_P(LowpInt8, FusedDequantisationMatchesFloatArithmetic) {
  ThreadsGuard guard;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> scale(1e-4f, 2e-2f), bias_d(-3.0f, 3.0f);
  for (int threads : {1, 2})
    for (const bool with_bias : {true, false})
      for (int64_t m : {1, 3, 17, 129})
        for (int64_t n : {5, 17, 130})
          for (int64_t kk : {3, 64, 785}) {
            soma::set_num_threads(threads);
            std::vector<uint8_t> a(static_cast<size_t>(m * kk));
            std::vector<int8_t> w(static_cast<size_t>(n * kk));
            fill_int8(rng, a, w);
            const lp::PackedS8 packed = lp::pack_s8(w.data(), n, kk);
            std::vector<float> ws(static_cast<size_t>(n)), bias(static_cast<size_t>(n));
            for (float& v : ws) v = scale(rng);
            for (float& v : bias) v = bias_d(rng);
            const int32_t zp = static_cast<int32_t>(rng() % 256);
            const float as = scale(rng);
            const int64_t ldy = n + 1;
            std::vector<float> y(static_cast<size_t>(m * ldy), 42.0f);
            f32_(m, a.data(), kk, packed, zp, as, ws.data(), with_bias ? bias.data() : nullptr,
                 y.data(), ldy, false);
            const std::vector<int32_t> c = int8_product(m, n, kk, a, kk, w);
            for (int64_t i = 0; i < m; ++i) {
              for (int64_t j = 0; j < n; ++j) {
                int64_t cs = 0;
                for (int64_t q = 0; q < kk; ++q) cs += w[j * kk + q];
                const double d = static_cast<double>(c[i * n + j]) -
                                 static_cast<double>(zp) * static_cast<double>(cs);
                const double s = double{as} * ws[j];
                const double b = with_bias ? bias[j] : 0.0;
                const double want = d * s + b;
                const double tol = 4 * std::ldexp(std::abs(d * s) + std::abs(b), -24) + 1e-30;
                ASSERT_NEAR(y[i * ldy + j], want, tol)
                    << GetParam() << " m=" << m << " n=" << n << " k=" << kk << " at (" << i << ", "
                    << j << ") zp=" << zp << " bias=" << with_bias;
              }
              ASSERT_EQ(y[i * ldy + n], 42.0f) << "wrote past N";
            }
          }
}

// Float32 bit patterns compared (so -0 against +0 and NaN against NaN count): the first
// mismatch, or "" when none.
std::string first_bit_mismatch(const std::vector<float>& got, const std::vector<float>& want,
                               int64_t ld) {
  for (size_t i = 0; i < got.size(); ++i)
    if (bits(got[i]) != bits(want[i]))
      return "y[" + std::to_string(static_cast<int64_t>(i) / ld) + ", " +
             std::to_string(static_cast<int64_t>(i) % ld) + "] = " + std::to_string(got[i]) + " (" +
             hex(bits(got[i])) + "), expected " + std::to_string(want[i]) + " (" +
             hex(bits(want[i])) + ")";
  return "";
}

// relu = true is the plain epilogue followed by std::max(y, 0.0f), bit for bit, and leaves the
// padding past N alone. Biases spread around 0 so that about half the outputs are negative.
TEST_P(LowpInt8, ReluEpilogueIsMaxWithZero) {
  ThreadsGuard guard;
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> scale(1e-4f, 2e-2f), bias_d(-3.0f, 3.0f);
  int64_t negatives = 0, total = 0;
  for (int threads : {1, 2})
    for (const bool with_bias : {true, false})
      for (int64_t m : {1, 5, 17, 130})
        for (int64_t n : {5, 16, 130})
          for (int64_t kk : {3, 64, 785}) {
            soma::set_num_threads(threads);
            std::vector<uint8_t> a(static_cast<size_t>(m * kk));
            std::vector<int8_t> w(static_cast<size_t>(n * kk));
            fill_int8(rng, a, w);
            const lp::PackedS8 packed = lp::pack_s8(w.data(), n, kk);
            std::vector<float> ws(static_cast<size_t>(n)), bias(static_cast<size_t>(n));
            for (float& v : ws) v = scale(rng);
            for (float& v : bias) v = bias_d(rng);
            const int32_t zp = static_cast<int32_t>(rng() % 256);
            const float as = scale(rng);
            const int64_t ldy = n + 3;
            std::vector<float> plain(static_cast<size_t>(m * ldy), 42.0f), relu = plain;
            const float* b = with_bias ? bias.data() : nullptr;
            f32_(m, a.data(), kk, packed, zp, as, ws.data(), b, plain.data(), ldy, false);
            f32_(m, a.data(), kk, packed, zp, as, ws.data(), b, relu.data(), ldy, true);
            std::vector<float> want = plain;
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j) {
                float& v = want[static_cast<size_t>(i * ldy + j)];
                negatives += v < 0.0f;
                ++total;
                v = std::max(v, 0.0f);
              }
            const std::string bad = first_bit_mismatch(relu, want, ldy);
            ASSERT_EQ(bad, "") << GetParam() << " m=" << m << " n=" << n << " k=" << kk
                               << " threads=" << threads << " bias=" << with_bias;
          }
  EXPECT_GT(negatives, total / 4) << "too few negative outputs for ReLU to matter";
}

// quantize_gemm_u8s8_f32 is quantize_u8 (the scalar reference) followed by the same backend's
// gemm_u8s8_f32, bit for bit: padded rows of A (lda > K), values past the quantisation range,
// NaN and +-inf in A, shapes across the kernels' row blocks (96) and tiles, 1 and 2 threads.
TEST_P(LowpInt8, QuantizeGemmIsQuantizeThenGemm) {
  ThreadsGuard guard;
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> xd(-4.0f, 4.0f), scale(1e-4f, 2e-2f), bias_d(-1.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 199);
  const float inf = std::numeric_limits<float>::infinity();
  int64_t shapes = 0;
  for (int threads : {1, 2})
    for (const bool relu : {false, true})
      for (int64_t m : {1, 2, 7, 97, 200})
        for (int64_t n : {5, 17, 130})
          for (int64_t kk : {3, 64, 785}) {
            soma::set_num_threads(threads);
            const int64_t lda = (m + n + kk) % 2 == 1 ? kk + 5 : kk;
            std::vector<float> x(static_cast<size_t>(m * lda));
            for (float& v : x) {
              const int p = pick(rng);
              v = p == 0 ? std::nanf("") : p == 1 ? inf : p == 2 ? -inf : xd(rng);
            }
            std::vector<int8_t> w(static_cast<size_t>(n * kk));
            for (int8_t& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
            const lp::PackedS8 packed = lp::pack_s8(w.data(), n, kk);
            std::vector<float> ws(static_cast<size_t>(n)), bias(static_cast<size_t>(n));
            for (float& v : ws) v = scale(rng);
            for (float& v : bias) v = bias_d(rng);
            const int32_t zp = static_cast<int32_t>(rng() % 256);
            const float as = 0.02f + scale(rng);  // about [-2.5, 2.5] in range: xd saturates
            std::vector<uint8_t> q(static_cast<size_t>(m * kk));
            for (int64_t i = 0; i < m; ++i)
              lp::quantize_u8_reference(x.data() + i * lda, kk, as, zp, q.data() + i * kk);
            const int64_t ldy = n + 2;
            std::vector<float> want(static_cast<size_t>(m * ldy), 42.0f), got = want;
            f32_(m, q.data(), kk, packed, zp, as, ws.data(), bias.data(), want.data(), ldy, relu);
            qf32_(m, x.data(), lda, packed, zp, as, ws.data(), bias.data(), got.data(), ldy, relu);
            const std::string bad = first_bit_mismatch(got, want, ldy);
            ASSERT_EQ(bad, "") << GetParam() << " m=" << m << " n=" << n << " k=" << kk
                               << " lda=" << lda << " threads=" << threads << " relu=" << relu;
            ++shapes;
          }
  EXPECT_EQ(shapes, 2 * 2 * 5 * 3 * 3);
}

INSTANTIATE_TEST_SUITE_P(Backends, LowpInt8, ::testing::Values("vnni", "avx512", "reference"),
                         [](const auto& info) { return std::string(info.param); });

TEST(LowpInt8Api, DispatchedEntryPointsAgreeWithTheReference) {
  std::mt19937 rng(3);
  const int64_t m = 65, n = 130, kk = 785;
  std::vector<uint8_t> a(static_cast<size_t>(m * kk));
  std::vector<int8_t> w(static_cast<size_t>(n * kk));
  fill_int8(rng, a, w);
  const lp::PackedS8 packed = lp::pack_s8(w.data(), n, kk);
  std::vector<int32_t> got(static_cast<size_t>(m * n));
  lp::gemm_u8s8s32(m, a.data(), kk, packed, got.data(), n);
  EXPECT_EQ(got, int8_product(m, n, kk, a, kk, w))
      << "selected " << k::Kernel<k::LowpGemmU8S8S32>::selected_backend();
}

// The dispatched fused entry point against the dispatched quantize_u8 then gemm_u8s8_f32.
TEST(LowpInt8Api, QuantizeGemmAgreesWithQuantizeThenGemm) {
  ThreadsGuard guard;
  std::mt19937 rng(5);
  std::normal_distribution<float> xd(0.0f, 1.0f);
  const int64_t m = 300, n = 130, kk = 785;
  std::vector<float> x(static_cast<size_t>(m * kk));
  for (float& v : x) v = xd(rng);
  std::vector<int8_t> w(static_cast<size_t>(n * kk));
  for (int8_t& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
  const lp::PackedS8 packed = lp::pack_s8(w.data(), n, kk);
  std::vector<float> ws(static_cast<size_t>(n), 3e-3f), bias(static_cast<size_t>(n));
  for (float& v : bias) v = xd(rng);
  for (int threads : {1, 2})
    for (const bool relu : {false, true}) {
      soma::set_num_threads(threads);
      std::vector<uint8_t> q(static_cast<size_t>(m * kk));
      lp::quantize_u8(x.data(), m * kk, 0.03f, 121, q.data());
      std::vector<float> want(static_cast<size_t>(m * n)), got(want.size());
      lp::gemm_u8s8_f32(m, q.data(), kk, packed, 121, 0.03f, ws.data(), bias.data(), want.data(), n,
                        relu);
      lp::quantize_gemm_u8s8_f32(m, x.data(), kk, packed, 121, 0.03f, ws.data(), bias.data(),
                                 got.data(), n, relu);
      EXPECT_EQ(first_bit_mismatch(got, want, n), "")
          << "threads=" << threads << " relu=" << relu << " selected "
          << k::Kernel<k::LowpQuantizeGemmU8S8F32>::selected_backend();
    }
}

TEST(LowpInt8Api, BadArgumentsAreErrors) {
  std::vector<int8_t> w(4 * 6, 1);
  lp::PackedS8 packed = lp::pack_s8(w.data(), 4, 6);
  std::vector<uint8_t> a(2 * 6, 1);
  std::vector<int32_t> c(2 * 4);
  std::vector<float> y(2 * 4), ws(4, 1.0f);
  try {
    lp::gemm_u8s8_f32(2, a.data(), 6, packed, 300, 1.0f, ws.data(), nullptr, y.data(), 4);
    FAIL() << "no error for zero point 300";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("300"), std::string::npos) << e.what();
  }
  try {
    lp::gemm_u8s8s32(2, a.data(), 5, packed, c.data(), 4);
    FAIL() << "no error for lda < K";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lda=5"), std::string::npos) << e.what();
  }
  {  // K so large that the int32 sums could overflow
    const int64_t big = 40000;
    std::vector<int8_t> wb(static_cast<size_t>(big), 1);
    const lp::PackedS8 pb = lp::pack_s8(wb.data(), 1, big);
    std::vector<uint8_t> ab(static_cast<size_t>(big), 1);
    int32_t cb = 0;
    float yb = 0;
    EXPECT_NO_THROW(lp::gemm_u8s8s32(1, ab.data(), big, pb, &cb, 1));
    EXPECT_EQ(cb, big);
    try {
      lp::gemm_u8s8_f32(1, ab.data(), big, pb, 0, 1.0f, ws.data(), nullptr, &yb, 1);
      FAIL() << "no error for K=40000 with a zero point";
    } catch (const soma::Error& e) {
      EXPECT_NE(std::string(e.what()).find("K=40000"), std::string::npos) << e.what();
    }
  }
  {
    std::vector<float> x(2 * 6, 1.0f);
    try {
      lp::quantize_gemm_u8s8_f32(2, x.data(), 6, packed, 0, 0.0f, ws.data(), nullptr, y.data(), 4);
      FAIL() << "no error for scale 0";
    } catch (const soma::Error& e) {
      EXPECT_NE(std::string(e.what()).find("lowp::quantize_gemm_u8s8_f32: scale 0"),
                std::string::npos)
          << e.what();
    }
    try {
      lp::quantize_gemm_u8s8_f32(2, x.data(), 6, packed, -1, 1.0f, ws.data(), nullptr, y.data(), 4);
      FAIL() << "no error for zero point -1";
    } catch (const soma::Error& e) {
      EXPECT_NE(std::string(e.what()).find("zero point -1"), std::string::npos) << e.what();
    }
  }
  packed.data.pop_back();
  try {
    lp::gemm_u8s8s32(2, a.data(), 6, packed, c.data(), 4);
    FAIL() << "no error for a damaged packed matrix";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lowp::gemm_u8s8s32"), std::string::npos) << e.what();
  }
}

// ---- min_max, quantize, conversions ----------------------------------------------------------

class LowpHelpers : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const std::string b = GetParam();
    min_max_ = k::Kernel<k::LowpMinMax>::get(b);
    quantize_ = k::Kernel<k::LowpQuantizeU8>::get(b);
    to_bf16_ = k::Kernel<k::LowpFloatToBf16>::get(b);
    from_bf16_ = k::Kernel<k::LowpBf16ToFloat>::get(b);
    to_f16_ = k::Kernel<k::LowpFloatToF16>::get(b);
    from_f16_ = k::Kernel<k::LowpF16ToFloat>::get(b);
    if (!min_max_ || !quantize_ || !to_bf16_ || !from_bf16_ || !to_f16_ || !from_f16_)
      GTEST_SKIP() << "backend " << b << " is not available (ISA " << k::cpu_isa_name() << ")";
  }
  k::LowpMinMax::Fn* min_max_ = nullptr;
  k::LowpQuantizeU8::Fn* quantize_ = nullptr;
  k::LowpFloatToBf16::Fn* to_bf16_ = nullptr;
  k::LowpBf16ToFloat::Fn* from_bf16_ = nullptr;
  k::LowpFloatToF16::Fn* to_f16_ = nullptr;
  k::LowpF16ToFloat::Fn* from_f16_ = nullptr;
};

struct TorchTable {
  std::string error;
  std::vector<std::pair<uint32_t, uint32_t>> bf16, f16, bf16f32, f16f32;
  struct Quant {
    uint32_t scale;
    int32_t zp;
    uint32_t x;
    int q;
  };
  std::vector<Quant> quant;
};

const TorchTable& torch_table() {
  static const TorchTable table = [] {
    TorchTable t;
    const std::string path =
        golden::reference_path("SOMA_LOWP_REFERENCE", "lowp_conversion_reference.txt");
    t.error = golden::for_each_line(path, [&](const std::string& kind, std::istringstream& s) {
      if (kind == "quant") {
        TorchTable::Quant q{};
        if (!(s >> std::hex >> q.scale >> std::dec >> q.zp >> std::hex >> q.x >> std::dec >> q.q))
          return false;
        t.quant.push_back(q);
        return true;
      }
      if (kind != "bf16" && kind != "f16" && kind != "bf16f32" && kind != "f16f32") return false;
      uint32_t x = 0, y = 0;
      if (!(s >> std::hex >> x >> y)) return false;
      auto& list = kind == "bf16"      ? t.bf16
                   : kind == "f16"     ? t.f16
                   : kind == "bf16f32" ? t.bf16f32
                                       : t.f16f32;
      list.emplace_back(x, y);
      return true;
    });
    if (!t.error.empty()) return t;
    if (t.bf16.empty() || t.f16.empty() || t.bf16f32.empty() || t.f16f32.empty() || t.quant.empty())
      t.error = path + ": a section is missing";
    return t;
  }();
  return table;
}

TEST_P(LowpHelpers, ConversionsMatchTorch) {
  const TorchTable& t = torch_table();
  ASSERT_EQ(t.error, "");
  // float32 -> bfloat16 / float16, all inputs in one call (vector body and tail)
  for (const bool half : {false, true}) {
    const auto& list = half ? t.f16 : t.bf16;
    std::vector<float> x;
    for (const auto& [in, out] : list) x.push_back(from_bits(in));
    std::vector<uint16_t> y(x.size());
    (half ? to_f16_ : to_bf16_)(x.data(), y.data(), static_cast<int64_t>(x.size()));
    int64_t bad = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      const uint16_t want = static_cast<uint16_t>(list[i].second);
      const bool ok =
          std::isnan(x[i]) ? (half ? f16_is_nan(y[i]) : bf16_is_nan(y[i])) : y[i] == want;
      if (!ok && bad++ < 5)
        ADD_FAILURE() << GetParam() << (half ? " float_to_f16(" : " float_to_bf16(")
                      << hex(list[i].first) << ") = " << hex(y[i]) << ", torch " << hex(want);
    }
    EXPECT_EQ(bad, 0);
  }
  // bfloat16 / float16 -> float32
  for (const bool half : {false, true}) {
    const auto& list = half ? t.f16f32 : t.bf16f32;
    std::vector<uint16_t> x;
    for (const auto& [in, out] : list) x.push_back(static_cast<uint16_t>(in));
    std::vector<float> y(x.size());
    (half ? from_f16_ : from_bf16_)(x.data(), y.data(), static_cast<int64_t>(x.size()));
    int64_t bad = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      const bool ok =
          std::isnan(from_bits(list[i].second)) ? std::isnan(y[i]) : bits(y[i]) == list[i].second;
      if (!ok && bad++ < 5)
        ADD_FAILURE() << GetParam() << (half ? " f16_to_float(" : " bf16_to_float(")
                      << hex(list[i].first) << ") = " << hex(bits(y[i])) << ", torch "
                      << hex(list[i].second);
    }
    EXPECT_EQ(bad, 0);
  }
}

TEST_P(LowpHelpers, QuantizeMatchesTorch) {
  const TorchTable& t = torch_table();
  ASSERT_EQ(t.error, "");
  // Grouped by (scale, zero point), one call per group.
  size_t i = 0;
  int64_t bad = 0, groups = 0;
  while (i < t.quant.size()) {
    size_t e = i;
    while (e < t.quant.size() && t.quant[e].scale == t.quant[i].scale &&
           t.quant[e].zp == t.quant[i].zp)
      ++e;
    std::vector<float> x;
    for (size_t j = i; j < e; ++j) x.push_back(from_bits(t.quant[j].x));
    std::vector<uint8_t> q(x.size());
    quantize_(x.data(), static_cast<int64_t>(x.size()), from_bits(t.quant[i].scale), t.quant[i].zp,
              q.data());
    for (size_t j = i; j < e; ++j)
      if (q[j - i] != t.quant[j].q && bad++ < 5)
        ADD_FAILURE() << GetParam() << " quantize_u8(" << x[j - i] << " [" << hex(t.quant[j].x)
                      << "], scale " << from_bits(t.quant[i].scale) << ", zp " << t.quant[i].zp
                      << ") = " << int{q[j - i]} << ", torch " << t.quant[j].q;
    ++groups;
    i = e;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GE(groups, 40);
}

// Every bfloat16 and float16 value survives the round trip through float32 (NaN stays NaN),
// and the backend agrees with the scalar conversions bit for bit.
TEST_P(LowpHelpers, ExhaustiveSixteenBitRoundTrips) {
  std::vector<uint16_t> all(65536), back(65536);
  for (int i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> f(65536);
  for (const bool half : {false, true}) {
    (half ? from_f16_ : from_bf16_)(all.data(), f.data(), 65536);
    (half ? to_f16_ : to_bf16_)(f.data(), back.data(), 65536);
    int64_t bad = 0;
    for (int i = 0; i < 65536; ++i) {
      const uint16_t h = all[i];
      const bool nan = half ? f16_is_nan(h) : bf16_is_nan(h);
      const float scalar = half ? lp::f16_to_float(h) : lp::bf16_to_float(h);
      const bool ok =
          nan ? (std::isnan(f[i]) && (half ? f16_is_nan(back[i]) : bf16_is_nan(back[i])))
              : (back[i] == h && bits(f[i]) == bits(scalar));
      if (!ok && bad++ < 5)
        ADD_FAILURE() << GetParam() << (half ? " f16 " : " bf16 ") << hex(h) << " -> "
                      << hex(bits(f[i])) << " -> " << hex(back[i]);
    }
    EXPECT_EQ(bad, 0);
  }
}

TEST_P(LowpHelpers, MinMaxAndNan) {
  ThreadsGuard guard;
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 10.0f);
  for (int threads : {1, 2})
    for (int64_t n : {0, 1, 15, 17, 33, 1000, 300001}) {
      soma::set_num_threads(threads);
      std::vector<float> x(static_cast<size_t>(n));
      for (float& v : x) v = d(rng);
      float lo = std::numeric_limits<float>::infinity(), hi = -lo;
      for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
      float mn = 0, mx = 0;
      bool nan = true;
      min_max_(x.data(), n, &mn, &mx, &nan);
      EXPECT_EQ(mn, lo) << GetParam() << " n=" << n;
      EXPECT_EQ(mx, hi) << GetParam() << " n=" << n;
      EXPECT_FALSE(nan) << GetParam() << " n=" << n;
      if (n == 0) continue;
      x[static_cast<size_t>(n - 1)] = std::numeric_limits<float>::quiet_NaN();  // the tail
      min_max_(x.data(), n, &mn, &mx, &nan);
      EXPECT_TRUE(nan) << GetParam() << " n=" << n;
      if (n > 1) {
        x[static_cast<size_t>(n - 1)] = x[0];
        x[static_cast<size_t>(n / 2)] = -std::numeric_limits<float>::quiet_NaN();  // the body
        nan = false;
        min_max_(x.data(), n, &mn, &mx, &nan);
        EXPECT_TRUE(nan) << GetParam() << " n=" << n;
        EXPECT_LE(mn, mx);
      }
    }
}

TEST_P(LowpHelpers, LargeArraysMatchTheScalarReference) {
  ThreadsGuard guard;
  soma::set_num_threads(2);
  std::mt19937 rng(9);
  std::normal_distribution<float> d(0.0f, 3.0f);
  const int64_t n = 300007;
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = d(rng);
  std::vector<uint8_t> q(x.size()), qref(x.size());
  quantize_(x.data(), n, 0.037f, 117, q.data());
  lp::quantize_u8_reference(x.data(), n, 0.037f, 117, qref.data());
  EXPECT_EQ(q, qref) << GetParam();
  std::vector<uint16_t> h(x.size()), href(x.size());
  to_bf16_(x.data(), h.data(), n);
  lp::float_to_bf16_reference(x.data(), href.data(), n);
  EXPECT_EQ(h, href) << GetParam();
  to_f16_(x.data(), h.data(), n);
  lp::float_to_f16_reference(x.data(), href.data(), n);
  EXPECT_EQ(h, href) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Backends, LowpHelpers, ::testing::Values("avx512", "reference"),
                         [](const auto& info) { return std::string(info.param); });

TEST(LowpHelpersApi, BadArgumentsAreErrors) {
  std::vector<float> x(4, 1.0f);
  std::vector<uint8_t> q(4);
  for (float scale : {0.0f, -1.0f, std::numeric_limits<float>::infinity()}) {
    try {
      lp::quantize_u8(x.data(), 4, scale, 0, q.data());
      FAIL() << "no error for scale " << scale;
    } catch (const soma::Error& e) {
      EXPECT_NE(std::string(e.what()).find("lowp::quantize_u8"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(lp::quantize_u8(x.data(), 4, 0.5f, 256, q.data()), soma::Error);
}

// ---- bf16 GEMM ---------------------------------------------------------------------------------

// Round to nearest even on the bits (written here, independently of the code under test; NaN
// does not occur in these inputs).
float round_bf16(float x) {
  const uint32_t u = bits(x);
  return from_bits((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
}

class LowpBf16Gemm : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    fn_ = k::Kernel<k::LowpGemmBf16>::get(GetParam());
    if (fn_ == nullptr)
      GTEST_SKIP() << "backend " << GetParam() << " is not available (ISA " << k::cpu_isa_name()
                   << ")";
  }
  k::LowpGemmBf16::Fn* fn_ = nullptr;
};

TEST_P(LowpBf16Gemm, MatchesFloat64ProductOfRoundedInputs) {
  ThreadsGuard guard;
  std::mt19937 rng(13);
  std::normal_distribution<float> d(0.0f, 1.0f);
  struct Shape {
    int64_t m, n, k;
  };
  // M <= 4 takes the path that reads B in place (threaded for 4 x 300 x 1001); larger M packs
  // (on 2 threads: split by rows for 64 x 130 x 785 and 200 x 300 x 99, by column panels for
  // 24 x 200 x 300)
  const Shape shapes[] = {{1, 1, 1},      {3, 5, 7},   {2, 70, 45},   {4, 130, 97},
                          {4, 300, 1001}, {7, 17, 33}, {17, 65, 129}, {64, 130, 785},
                          {129, 33, 2},   {6, 64, 64}, {1, 256, 784}, {200, 300, 99},
                          {24, 200, 300}};
  int64_t unrounded_differs = 0;
  for (int threads : {1, 2})
    for (const Shape& s : shapes)
      for (int t = 0; t < 4; ++t)
        for (const bool scaled : {false, true}) {
          soma::set_num_threads(threads);
          const bool ta = t & 1, tb = t & 2;
          const int64_t m = s.m, n = s.n, kk = s.k;
          // stored shapes, with one extra column of padding
          const int64_t lda = (ta ? m : kk) + 1, ldb = (tb ? kk : n) + 1, ldc = n + 2;
          std::vector<float> a(static_cast<size_t>((ta ? kk : m) * lda));
          std::vector<float> b(static_cast<size_t>((tb ? n : kk) * ldb));
          for (float& v : a) v = d(rng);
          for (float& v : b) v = d(rng);
          std::vector<float> c0(static_cast<size_t>(m * ldc));
          for (float& v : c0) v = scaled ? d(rng) : std::numeric_limits<float>::quiet_NaN();
          const float alpha = scaled ? 0.75f : 1.0f, beta = scaled ? -0.5f : 0.0f;
          std::vector<float> c = c0;
          fn_(ta, tb, m, n, kk, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              double sum = 0, mag = 0, exact = 0;
              for (int64_t p = 0; p < kk; ++p) {
                const float av = ta ? a[p * lda + i] : a[i * lda + p];
                const float bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                const double pr = double{round_bf16(av)} * round_bf16(bv);
                sum += pr;
                mag += std::abs(pr);
                exact += double{av} * bv;
              }
              const double c_in = c0[i * ldc + j];
              const double want = alpha * sum + (scaled ? beta * c_in : 0.0);
              // float32 accumulation: K roundings of partial sums, plus the epilogue
              const double tol = std::ldexp((kk + 4) * (std::abs(alpha) * mag +
                                                        (scaled ? std::abs(beta * c_in) : 0.0)),
                                            -23) +
                                 1e-30;
              ASSERT_NEAR(c[i * ldc + j], want, tol)
                  << GetParam() << " m=" << m << " n=" << n << " k=" << kk << " ta=" << ta
                  << " tb=" << tb << " threads=" << threads << " scaled=" << scaled << " at (" << i
                  << ", " << j << ")";
              if (std::abs(c[i * ldc + j] - (alpha * exact + (scaled ? beta * c_in : 0.0))) >
                  4 * tol)
                ++unrounded_differs;
            }
            for (int64_t j = n; j < ldc; ++j)
              ASSERT_TRUE(std::isnan(c[i * ldc + j]) || c[i * ldc + j] == c0[i * ldc + j])
                  << "wrote past N";
          }
        }
  // The inputs really are rounded: many results differ from the float64 product of the
  // unrounded inputs by more than the accumulation tolerance.
  EXPECT_GT(unrounded_differs, 1000) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Backends, LowpBf16Gemm,
                         ::testing::Values("avx512_bf16", "cpu", "reference"),
                         [](const auto& info) { return std::string(info.param); });

TEST(LowpBf16GemmApi, ZeroSizesAndErrors) {
  std::vector<float> c(6, 5.0f), a(1), b(1);
  lp::gemm_bf16(false, false, 2, 3, 0, 1.0f, a.data(), 1, b.data(), 3, 0.5f, c.data(), 3);
  for (float v : c) EXPECT_EQ(v, 2.5f);  // K = 0: C = beta C
  try {
    lp::gemm_bf16(false, false, 2, 3, 4, 1.0f, a.data(), 2, b.data(), 3, 0.0f, c.data(), 3);
    FAIL() << "no error for lda < K";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lowp::gemm_bf16"), std::string::npos) << e.what();
  }
}

// ---- the ISA cap
// ---------------------------------------------------------------------------------

std::string isa_env() {
  const char* s = std::getenv("SOMA_MAX_CPU_ISA");
  return s == nullptr ? "" : s;
}
bool known_level(const std::string& v) {
  for (const std::string& l : k::cpu_isa_levels())
    if (l == v) return true;
  return false;
}

TEST(LowpIsa, NameMatchesTheFeatures) {
  if (!known_level(isa_env()) && !isa_env().empty()) GTEST_SKIP() << "bad SOMA_MAX_CPU_ISA";
  const k::CpuFeatures& f = k::cpu_features();
  const std::string name = k::cpu_isa_name();
  const bool core = f.avx512f && f.avx512bw && f.avx512vl;
  EXPECT_EQ(name == "avx512_core_bf16", core && f.avx512_vnni && f.avx512_bf16) << name;
  EXPECT_EQ(lp::vnni_available(), core && f.avx512_vnni);
  EXPECT_EQ(lp::bf16_available(), core && f.avx512_bf16);
  EXPECT_EQ(k::Kernel<k::LowpGemmU8S8S32>::get("vnni") != nullptr, lp::vnni_available());
  EXPECT_EQ(k::Kernel<k::LowpGemmBf16>::get("avx512_bf16") != nullptr, lp::bf16_available());
  EXPECT_EQ(k::Kernel<k::LowpGemmU8S8S32>::get("avx512") != nullptr, lp::avx512_available());
}

// Under SOMA_MAX_CPU_ISA=avx2 (ctest kernels.lowp_isa_avx2) nothing above AVX2 is reported, so
// the VNNI, AVX-512 and BF16 implementations are unavailable and the references run.
TEST(LowpIsa, CapHidesTheAvx512Backends) {
  const std::string cap = isa_env();
  if (cap != "avx2" && cap != "avx512_core")
    GTEST_SKIP() << "runs under SOMA_MAX_CPU_ISA=avx2 or avx512_core (ctest kernels.lowp_isa_*)";
  const k::CpuFeatures& f = k::cpu_features();
  EXPECT_FALSE(f.avx512_vnni);
  EXPECT_FALSE(f.avx512_bf16);
  EXPECT_EQ(k::Kernel<k::LowpGemmU8S8S32>::get("vnni"), nullptr);
  EXPECT_EQ(k::Kernel<k::LowpGemmU8S8F32>::get("vnni"), nullptr);
  EXPECT_EQ(k::Kernel<k::LowpQuantizeGemmU8S8F32>::get("vnni"), nullptr);
  EXPECT_EQ(k::Kernel<k::LowpGemmBf16>::get("avx512_bf16"), nullptr);
  k::BackendGuard none("");
  if (cap == "avx2") {
    EXPECT_FALSE(f.avx512f);
    EXPECT_EQ(k::Kernel<k::LowpGemmU8S8S32>::get("avx512"), nullptr);
    EXPECT_EQ(k::Kernel<k::LowpGemmU8S8S32>::selected_backend(), "reference");
    EXPECT_EQ(k::Kernel<k::LowpQuantizeGemmU8S8F32>::selected_backend(), "reference");
    EXPECT_EQ(k::Kernel<k::LowpQuantizeU8>::selected_backend(), "reference");
    EXPECT_EQ(k::Kernel<k::LowpGemmBf16>::selected_backend(), "cpu");
    EXPECT_NE(k::cpu_isa_name().find("avx2"), std::string::npos) << k::cpu_isa_name();
  } else if (lp::avx512_available()) {
    EXPECT_EQ(k::Kernel<k::LowpGemmU8S8S32>::selected_backend(), "avx512");
    EXPECT_EQ(k::cpu_isa_name(), "avx512_core");
  }
}

// Under an unknown SOMA_MAX_CPU_ISA (ctest kernels.lowp_isa_unknown) the first use is an error
// naming the value and the accepted ones.
TEST(LowpIsa, UnknownCapIsAnError) {
  const std::string cap = isa_env();
  if (cap.empty() || known_level(cap))
    GTEST_SKIP() << "runs under an unknown SOMA_MAX_CPU_ISA (ctest kernels.lowp_isa_unknown)";
  for (int attempt = 0; attempt < 2; ++attempt) {  // every use, not only the first
    try {
      (void)k::cpu_features();
      FAIL() << "no error for SOMA_MAX_CPU_ISA=" << cap;
    } catch (const soma::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("SOMA_MAX_CPU_ISA"), std::string::npos) << what;
      EXPECT_NE(what.find("'" + cap + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("avx512_core_vnni"), std::string::npos) << what;
    }
  }
}

}  // namespace
