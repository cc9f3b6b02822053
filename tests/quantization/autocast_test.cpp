// soma::autocast: float32 products in bfloat16 with float32 accumulation, forward and backward
// (the backward replays the forward's precision), against float32 products of the operands
// rounded to bfloat16 (Tensor::to(kBFloat16), round to nearest even as torch); everything else
// untouched; train::fit's autocast option.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/conv.h"
#include "kernels/registry.h"
#include "soma/core/half.h"
#include "soma/soma.h"
#ifdef SOMA_ONEDNN
#include "kernels/onednn/conv.h"
#endif

namespace {

using soma::Tensor;
namespace nn = soma::nn;
namespace F = soma::nn::functional;

Tensor bf16(const Tensor& t) {
  return t.detach().to(soma::kBFloat16).to(soma::kFloat32);
}

double max_rel(const Tensor& a, const Tensor& b) {
  return (soma::max(soma::abs(a - b)) / (soma::max(soma::abs(b)) + 1e-30)).item<double>();
}

TEST(Autocast, LinearForwardAndBackwardAreBf16Products) {
  soma::manual_seed(1);
  Tensor x = soma::randn({33, 70}).requires_grad_();
  Tensor w = soma::randn({19, 70}).requires_grad_();
  Tensor b = soma::randn({19}).requires_grad_();
  Tensor y;
  {
    soma::autocast guard;
    EXPECT_TRUE(soma::is_autocast_enabled());
    y = F::linear(x, w, b);
  }
  EXPECT_FALSE(soma::is_autocast_enabled());
  const Tensor g = soma::randn({33, 19});
  y.backward(g);  // the guard is gone: the backward still runs in bfloat16
  const Tensor ref = soma::matmul(bf16(x), bf16(w).t()) + b.detach();
  EXPECT_LT(max_rel(y.detach(), ref), 1e-6);
  const Tensor f32 = soma::matmul(x.detach(), w.detach().t()) + b.detach();
  EXPECT_GT(max_rel(y.detach(), f32), 1e-5) << "the product was not rounded to bfloat16";
  EXPECT_LT(max_rel(x.grad(), soma::matmul(bf16(g), bf16(w))), 1e-6);
  EXPECT_LT(max_rel(w.grad(), soma::matmul(bf16(g).t(), bf16(x))), 1e-6);
  EXPECT_LT(max_rel(b.grad(), soma::sum(g, 0)), 1e-6) << "the bias gradient is a float32 sum";
}

TEST(Autocast, MatmulBatchedAndConvAreBf16Products) {
  soma::manual_seed(2);
  const Tensor a = soma::randn({3, 9, 21}), c = soma::randn({3, 21, 5});
  const Tensor x = soma::randn({2, 3, 9, 8}), k = soma::randn({4, 3, 3, 3});
  Tensor m, conv;
  {
    soma::autocast guard;
    m = soma::matmul(a, c);
    conv = F::conv2d(x, k, Tensor(), {1, 1}, {1, 1});
  }
  EXPECT_LT(max_rel(m, soma::matmul(bf16(a), bf16(c))), 1e-6);
  EXPECT_LT(max_rel(conv, F::conv2d(bf16(x), bf16(k), Tensor(), {1, 1}, {1, 1})), 1e-6);
  EXPECT_GT(max_rel(m, soma::matmul(a, c)), 1e-5);
}

// conv2d forward and both gradients under autocast, on shapes large enough for the default
// ("tuned") backend to send them to oneDNN's bfloat16 primitives: against a float64 conv of the
// operands rounded to bfloat16 (Tensor::to, round to nearest even). Truncating instead of
// rounding, or not rounding at all, moves the results by ~1e-3 relative, far above 1e-5.
struct ConvCase {
  const char* what;
  soma::Shape x, w;
  int64_t stride, padding, groups;
  bool preset = false;  // the CNN preset's layers: oneDNN's native bf16 kernels where it has them
};

class AutocastConv : public ::testing::TestWithParam<ConvCase> {};

// Runs c under autocast (forward, backward) and checks the three products and the bias
// gradient against float64 ones of the rounded operands; returns the output's shape.
soma::Shape check_bf16_conv(const ConvCase& c) {
  soma::manual_seed(5);
  Tensor x = soma::randn(c.x).requires_grad_();
  Tensor w = soma::randn(c.w).requires_grad_();
  Tensor b = soma::randn({c.w[0]}).requires_grad_();
  const std::vector<int64_t> s{c.stride, c.stride}, p{c.padding, c.padding}, d{1, 1};
  Tensor y;
  {
    soma::autocast guard;
    y = F::conv2d(x, w, b, s, p, d, c.groups);
  }
  const Tensor g = soma::randn(y.shape());
  y.backward(g);

  const auto f64 = [](const Tensor& t) { return bf16(t).to(soma::kFloat64); };
  Tensor x64 = f64(x).requires_grad_(), w64 = f64(w).requires_grad_();
  Tensor y64 = F::conv2d(x64, w64, b.detach().to(soma::kFloat64), s, p, d, c.groups);
  y64.backward(f64(g));
  const auto rel = [](const Tensor& a, const Tensor& ref) {
    return max_rel(a.to(soma::kFloat64), ref);
  };
  const std::string what =
      std::string(c.what) + " (backend '" + soma::kernels::preferred_backend() + "')";
  EXPECT_LT(rel(y.detach(), y64.detach()), 1e-5) << what;
  EXPECT_LT(rel(x.grad(), x64.grad()), 1e-5) << what;
  EXPECT_LT(rel(w.grad(), w64.grad()), 1e-5) << what;
  EXPECT_LT(max_rel(b.grad(), soma::sum(g, std::vector<int64_t>{0, 2, 3})), 1e-6)
      << what << ": the bias gradient is a float32 sum";
  const Tensor f32 = F::conv2d(x.detach(), w.detach(), b.detach(), s, p, d, c.groups);
  EXPECT_GT(max_rel(y.detach(), f32), 1e-4) << what << ": the product was not in bfloat16";
  return y.shape();
}

TEST_P(AutocastConv, ForwardAndGradientsAreBf16Products) {
  const ConvCase c = GetParam();
#ifdef SOMA_ONEDNN
  const int64_t runs_before = soma::kernels::onednn::bf16_executions();
#endif
  const soma::Shape out = check_bf16_conv(c);
#ifdef SOMA_ONEDNN
  namespace od = soma::kernels::onednn;
  soma::kernels::cpu::ConvGeometry geo;
  geo.n = c.x[0], geo.c_in = c.x[1], geo.h = c.x[2], geo.w = c.x[3];
  geo.c_out = c.w[0], geo.kh = c.w[2], geo.kw = c.w[3];
  geo.sh = geo.sw = c.stride, geo.ph = geo.pw = c.padding, geo.groups = c.groups;
  geo.oh = out[2], geo.ow = out[3], geo.bf16 = true;
  bool native = true;
  for (auto kind :
       {od::ConvKind::forward, od::ConvKind::backward_input, od::ConvKind::backward_weight}) {
    EXPECT_TRUE(od::prefer_onednn(kind, geo)) << c.what << ": too small to reach oneDNN";
    const od::Layout layout = od::layout_for(kind, geo);
    const std::string impl = od::implementation(kind, layout, geo, kind == od::ConvKind::forward);
    native = native && od::bf16_native(kind, layout, geo, kind == od::ConvKind::forward);
    // where nothing caps oneDNN's ISA and the CPU has AVX512_BF16: no fallback, and the
    // preset's layers in oneDNN's blocked formats run its AVX512_BF16 kernels
    if (soma::kernels::cpu_features().avx512_bf16 && !std::getenv("ONEDNN_MAX_CPU_ISA") &&
        !std::getenv("DNNL_MAX_CPU_ISA")) {
      EXPECT_TRUE(od::bf16_native(kind, layout, geo)) << c.what << ": " << impl;
      if (c.preset && layout == od::Layout::blocked)
        EXPECT_NE(impl.find("avx512_core_bf16"), std::string::npos) << c.what << ": " << impl;
    }
  }
  // forward, input gradient and weight gradient each ran one oneDNN bf16 primitive
  if (native && soma::kernels::preferred_backend().empty())
    EXPECT_EQ(od::bf16_executions() - runs_before, 3) << c.what;
#endif
}

// soma's own kernels (where oneDNN has no bfloat16: below AVX-512): im2col and the direct
// depthwise loops (a 1-channel input is one) in bfloat16 as well
TEST_P(AutocastConv, CpuKernelsAreBf16ProductsToo) {
  soma::kernels::BackendGuard cpu("cpu");
  check_bf16_conv(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AutocastConv,
    ::testing::Values(
        ConvCase{"cnn preset conv1 1->32 3x3", {8, 1, 28, 28}, {32, 1, 3, 3}, 1, 1, 1, true},
        ConvCase{"cnn preset conv2 32->64 3x3", {8, 32, 14, 14}, {64, 32, 3, 3}, 1, 1, 1, true},
        ConvCase{"stride 2, padding 1, odd sizes", {8, 12, 17, 15}, {20, 12, 3, 3}, 2, 1, 1},
        ConvCase{"groups 2", {4, 16, 12, 12}, {24, 8, 3, 3}, 1, 1, 2},
        ConvCase{"depthwise", {8, 16, 12, 12}, {32, 1, 3, 3}, 1, 1, 16},
        ConvCase{"5x5, padding 2, odd sizes", {3, 6, 19, 9}, {10, 6, 5, 5}, 1, 2, 1}));

#ifdef SOMA_ONEDNN
// oneDNN's f32 -> bf16 reorder rounds exactly as soma's float_to_bf16_bits (nearest even):
// a 1x1 convolution by the identity (exact in bfloat16) returns each input rounded, ties
// included, bit for bit.
TEST(AutocastConv, OnednnRoundsToNearestEvenAsSoma) {
  namespace od = soma::kernels::onednn;
  soma::kernels::cpu::ConvGeometry g;
  g.n = 4, g.c_in = 32, g.h = 8, g.w = 8, g.c_out = 32, g.oh = 8, g.ow = 8, g.bf16 = true;
  if (!od::bf16_native(od::ConvKind::forward, od::Layout::blocked, g, false))
    GTEST_SKIP() << "oneDNN has no fast bf16 convolution here";
  std::vector<float> x(static_cast<size_t>(g.n * g.c_in * g.h * g.w)), w(32 * 32, 0.0f),
      y(x.size());
  uint32_t seed = 7;
  for (size_t i = 0; i < x.size(); ++i) {
    seed = seed * 1664525u + 1013904223u;
    // the low 16 bits: exact ties (0x8000) on even and odd upper halves, just below and
    // above a tie, and random ones
    static const uint32_t lows[] = {0x8000u, 0x7fffu, 0x8001u, 0x0000u, 0xffffu};
    const uint32_t low = i % 6 < 5 ? lows[i % 6] : (seed & 0xffffu);
    const uint32_t high = 0x3c00u + ((seed >> 16) & 0x1ffu) + (i % 2 ? 0x8000u : 0u);
    const uint32_t bits = (high << 16) | low;
    std::memcpy(&x[i], &bits, sizeof bits);
  }
  for (int c = 0; c < 32; ++c) w[c * 32 + c] = 1.0f;
  od::conv_forward(od::Layout::blocked, x.data(), w.data(), nullptr, y.data(), g);
  int bad = 0, ties = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = soma::detail::bf16_bits_to_float(soma::detail::float_to_bf16_bits(x[i]));
    if (std::memcmp(&y[i], &want, sizeof want) != 0 && ++bad <= 5)
      ADD_FAILURE() << "x " << x[i] << " -> " << y[i] << ", round to nearest even gives " << want;
    uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof bits);
    ties += (bits & 0xffffu) == 0x8000u;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(ties, 100);
}
#endif

TEST(Autocast, OffByDefaultNestsAndRefusesOtherDtypes) {
  soma::manual_seed(3);
  const Tensor a = soma::randn({8, 16}), b = soma::randn({16, 4});
  const Tensor plain = soma::matmul(a, b);
  {
    soma::autocast on;
    {
      soma::autocast off(soma::kBFloat16, false);
      EXPECT_FALSE(soma::is_autocast_enabled());
      EXPECT_EQ(max_rel(soma::matmul(a, b), plain), 0.0);
    }
    EXPECT_TRUE(soma::is_autocast_enabled());
  }
  EXPECT_THROW(soma::autocast(soma::kFloat16), soma::Error);
  // float64 products are never touched: they equal the plain float64 product bit for bit
  const Tensor a64 = a.to(soma::kFloat64), b64 = b.to(soma::kFloat64);
  Tensor inside;
  {
    soma::autocast again;
    inside = soma::matmul(a64, b64);
  }
  EXPECT_EQ(soma::max(soma::abs(inside - soma::matmul(a64, b64))).item<double>(), 0.0);
}

TEST(Autocast, FitTrainsUnderAutocast) {
  soma::manual_seed(4);
  const Tensor x = soma::randn({512, 12});
  const Tensor y = soma::gt(soma::narrow(x, 1, 0, 1).reshape({512}), 0.0).to(soma::kInt64);
  nn::Sequential model(nn::Linear(12, 32), nn::ReLU(), nn::Linear(32, 2));
  soma::data::TensorDataset ds(x, y);
  soma::data::DataLoader loader(ds, {.batch_size = 64, .shuffle = true, .seed = 1});
  soma::optim::Adam opt(model.parameters(), {.lr = 1e-2});
  auto loss = [](const Tensor& out, const Tensor& t) { return F::cross_entropy(out, t); };
  soma::train::FitOptions o;
  o.epochs = 6;
  o.autocast = soma::kBFloat16;
  const auto h = soma::train::fit(model, opt, loss, loader, o);
  EXPECT_LT(h["loss"].back(), 0.5 * h["loss"].front());
  EXPECT_FALSE(soma::is_autocast_enabled());
  o.autocast = soma::kFloat64;
  EXPECT_THROW(soma::train::fit(model, opt, loss, loader, o), soma::Error);
}

}  // namespace
