// Static int8 quantization: observers against torch 1.13 (quantization_reference.txt's
// observer blocks), prepare/convert on a CNN, and the quantized layers against a float
// computation on the same quantized values.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "nn/fusion_internal.h"
#include "soma/soma.h"
#ifdef SOMA_ONEDNN
#include "kernels/cpu/lowp.h"
#include "kernels/onednn/conv.h"
#include "kernels/onednn/qchain.h"
#endif

namespace {

using soma::Tensor;
namespace nn = soma::nn;
namespace F = soma::nn::functional;
namespace q = soma::quantization;

struct ObserverCase {
  std::string kind;
  std::vector<std::vector<float>> batches;
  float lo = 0, hi = 0, scale = 0;
  int32_t zp = 0;
};

std::vector<ObserverCase> observer_cases() {
  std::vector<ObserverCase> out;
  std::ifstream in(std::string(SOMA_TEST_DATA_DIR) + "/reference/quantization_reference.txt");
  EXPECT_TRUE(in.good());
  std::string line;
  ObserverCase* cur = nullptr;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string tag;
    ss >> tag;
    if (tag == "observer") {
      out.emplace_back();
      cur = &out.back();
      ss >> cur->kind;
    } else if (!cur) {
      continue;
    } else if (tag == "x") {
      std::vector<float> v;
      float f;
      while (ss >> f) v.push_back(f);
      cur->batches.push_back(v);
    } else if (tag == "range") {
      ss >> cur->lo >> cur->hi;
    } else if (tag == "qparams") {
      ss >> cur->scale >> cur->zp;
    } else if (tag == "end") {
      cur = nullptr;
    }
  }
  return out;
}

TEST(StaticQuantization, ObserversMatchTorch) {
  const auto cases = observer_cases();
  ASSERT_EQ(cases.size(), 4u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.kind);
    std::unique_ptr<q::Observer> obs;
    if (c.kind == "minmax")
      obs = std::make_unique<q::MinMaxObserver>();
    else
      obs = std::make_unique<q::HistogramObserver>();
    for (const auto& b : c.batches) obs->observe(soma::tensor(b));
    const auto [lo, hi] = obs->range();
    const q::QParams p = obs->qparams();
    if (c.kind == "minmax") {
      EXPECT_EQ(lo, c.lo);
      EXPECT_EQ(hi, c.hi);
      EXPECT_EQ(p.scale, c.scale);
      EXPECT_EQ(p.zero_point, c.zp);
    } else {
      // torch bins in float32, soma in double: a value on a bin edge may land one bin apart,
      // so the searched range may differ by a bin (of 2048 over [min, max])
      const float bin = (c.batches[0].empty() ? 0 : 1) * (c.hi - c.lo) / 2048 * 1.01f;
      EXPECT_NEAR(lo, c.lo, bin);
      EXPECT_NEAR(hi, c.hi, bin);
      EXPECT_NEAR(p.scale, c.scale, c.scale * 1e-3);
      EXPECT_NEAR(p.zero_point, c.zp, 1);
    }
  }
}

TEST(StaticQuantization, ObserverErrors) {
  q::MinMaxObserver mm;
  EXPECT_THROW(mm.qparams(), soma::Error);
  EXPECT_THROW(mm.observe(soma::tensor({1.0f, NAN})), soma::Error);
  q::HistogramObserver h;
  h.observe(soma::full({10}, 2.5));  // one value only: its range, then wider batches
  EXPECT_EQ(h.range().first, 2.5f);
  h.observe(soma::tensor({-1.0f, 4.0f}));
  const auto [lo, hi] = h.range();
  EXPECT_LE(lo, 2.5f);
  EXPECT_GE(hi, 2.5f);
  EXPECT_THROW(q::HistogramObserver(10), soma::Error);
}

// The float computation the int8 layers stand for: x quantized and dequantized with the
// layer's input qparams, weights dequantized, then the float op.
Tensor fake_quant(const Tensor& x, float scale, int32_t zp) {
  const Tensor qx = soma::clamp(soma::round(x * (1.0f / scale)) + zp, 0, 255);  // as torch
  return (qx - zp) * scale;
}

TEST(StaticQuantization, QuantizedConvMatchesFloatOnQuantizedValues) {
  soma::manual_seed(11);
  nn::Conv2d conv(nn::Conv2dOptions(3, 5, {3, 2}).stride({2, 1}).padding({1, 0}));
  const Tensor x = soma::randn({2, 3, 7, 6});
  const q::QParams qp{0.02f, 117};
  for (bool relu : {false, true}) {
    auto qc = q::QuantizedConv2d::from_float(conv, qp, relu);
    soma::NoGradGuard ng;
    const Tensor w = qc->weight.to(soma::kFloat32) * qc->weight_scale.reshape({5, 1, 1, 1});
    Tensor ref = F::conv2d(fake_quant(x, qp.scale, qp.zero_point), w, qc->bias, {2, 1}, {1, 0});
    if (relu) ref = soma::relu(ref);
    const Tensor y = qc->forward(x);
    ASSERT_EQ(y.shape(), ref.shape());
    EXPECT_LT(soma::max(soma::abs(y - ref)).item<double>(), 1e-4) << "relu " << relu;
  }
}

TEST(StaticQuantization, PrepareCalibrateConvertCnn) {
  soma::manual_seed(12);
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(1, 8, 3).padding(1)), nn::BatchNorm2d(8),
                       nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(), nn::Linear(8 * 4 * 4, 16),
                       nn::ReLU(), nn::Linear(16, 4));
  // train-mode passes give the BatchNorm running statistics that are not the identity
  for (int i = 0; i < 3; ++i) model(soma::randn({16, 1, 8, 8}) * 2 + 0.5);
  model.eval();
  const Tensor x = soma::randn({32, 1, 8, 8});
  const Tensor ref = model(x);
  for (const char* kind : {"minmax", "histogram"}) {
    SCOPED_TRACE(kind);
    auto prepared = q::prepare(model, {.observer = kind});
    auto& seq = dynamic_cast<nn::Sequential&>(*prepared);
    EXPECT_NE(dynamic_cast<q::Observed*>(seq.ptr(0).get()), nullptr);
    EXPECT_NE(dynamic_cast<nn::Identity*>(seq.ptr(1).get()), nullptr) << "BatchNorm not folded";
    EXPECT_NE(dynamic_cast<nn::Identity*>(seq.ptr(2).get()), nullptr) << "ReLU not fused";
    // the prepared model computes what the float model does (folding is exact up to rounding)
    const Tensor yp = (*prepared)(x);
    EXPECT_LT(soma::max(soma::abs(yp - ref)).item<double>(), 1e-4);
    EXPECT_THROW(q::convert(*q::prepare(model)), soma::Error) << "convert before calibration";
    for (int b = 0; b < 4; ++b) (*prepared)(soma::randn({32, 1, 8, 8}));
    auto qm = q::convert(*prepared);
    EXPECT_TRUE(q::is_quantized(*qm));
    auto& qs = dynamic_cast<nn::Sequential&>(*qm);
    ASSERT_NE(dynamic_cast<q::QuantizedConv2d*>(qs.ptr(0).get()), nullptr);
    EXPECT_TRUE(dynamic_cast<q::QuantizedConv2d&>(*qs.ptr(0)).relu);
    EXPECT_NE(dynamic_cast<q::QuantizedLinear*>(qs.ptr(5).get()), nullptr);
    const Tensor y = (*qm)(x);
    const double err = soma::max(soma::abs(y - ref)).item<double>();
    const double mag = soma::max(soma::abs(ref)).item<double>();
    EXPECT_LT(err, 0.05 * mag) << "int8 error " << err << " against outputs up to " << mag;
    EXPECT_GT(err, 0.0);
    // the saved state loads into the structure built without calibration
    auto skeleton = q::static_quantized_structure(model);
    skeleton->load_state_dict(qm->state_dict());
    EXPECT_EQ(soma::max(soma::abs((*skeleton)(x)-y)).item<double>(), 0.0);
  }
}

// A calibrated, converted copy of `model` (minmax observers, 4 batches like x).
std::shared_ptr<nn::Module> quantized(const nn::Sequential& model, const Tensor& x) {
  auto prepared = q::prepare(model, {.observer = "minmax"});
  for (int b = 0; b < 4; ++b) (*prepared)(soma::randn(x.shape()) * 1.5 + 0.25);
  return q::convert(*prepared);
}

// The int8 chain (quantization/fusion.cpp, kernels/onednn/qchain.h) against the module-by-module
// path on the same converted model: equal up to a requantization tie that the two float orders
// round apart (one step of the next layer's scale, on a few elements).
TEST(StaticQuantization, FusedInt8ChainMatchesModuleByModule) {
#ifndef SOMA_ONEDNN
  GTEST_SKIP() << "built without oneDNN";
#else
  if (!soma::kernels::onednn::available()) GTEST_SKIP() << "oneDNN unavailable";
  // the chain runs only where oneDNN's int8 sums are exact (VNNI, after SOMA_MAX_CPU_ISA)
  const int64_t expected_runs =
      soma::kernels::lowp::vnni_available() && soma::kernels::onednn::int8_exact() ? 1 : 0;
  struct Case {
    const char* name;
    std::function<nn::Sequential()> make;
    soma::Shape input;
    int64_t stages;
  };
  const std::vector<Case> cases{
      {"cnn preset (u8 out into Linear)",
       [] {
         return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)),
                               nn::BatchNorm2d(32), nn::ReLU(), nn::MaxPool2d(2),
                               nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)),
                               nn::BatchNorm2d(64), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                               nn::Linear(64 * 7 * 7, 16), nn::ReLU(), nn::Linear(16, 10));
       },
       {45, 1, 28, 28},  // three slices of the chain: 20, 20, 5 images
       2},
      {"no relu, stride 2, odd sizes, padded ceil pool, float out",
       [] {
         return nn::Sequential(
             nn::Conv2d(nn::Conv2dOptions(3, 5, {3, 2}).stride(2).padding(1)),
             nn::Conv2d(nn::Conv2dOptions(5, 7, 3).padding(nn::ExpandingArray<2>({0, 1}))),
             nn::MaxPool2d(nn::MaxPool2dOptions({3}).stride({2}).padding({1}).ceil_mode(true)),
             nn::Conv2d(nn::Conv2dOptions(7, 4, 1)), nn::ReLU());
       },
       {3, 3, 17, 13},
       3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    soma::manual_seed(5);
    nn::Sequential model = c.make();
    for (int i = 0; i < 2; ++i) model(soma::randn(c.input) * 2 + 0.5);  // BatchNorm statistics
    model.eval();
    const Tensor x = soma::randn(c.input) * 1.5 + 0.25;
    auto qm = quantized(model, x);
    soma::NoGradGuard no_grad;
    Tensor plain, fused;
    {
      nn::InferenceFusionGuard off(false);
      plain = (*qm)(x);
    }
    const int64_t before = soma::detail::fused_run_count();
    {
      nn::InferenceFusionGuard on(true);
      fused = (*qm)(x);
    }
    EXPECT_EQ(soma::detail::fused_run_count() - before, expected_runs) << "the chain did not run";
    ASSERT_EQ(fused.shape(), plain.shape());
    const double mag = soma::max(soma::abs(plain)).item<double>();
    const Tensor diff = soma::abs(fused - plain);
    const double far = soma::gt(diff, 1e-4 * mag).to(soma::kFloat32).mean().item<double>();
    EXPECT_LT(far, 0.02) << "share of outputs that differ";
    EXPECT_LT(soma::max(diff).item<double>(), 0.05 * mag);
    EXPECT_GT(mag, 0.0);
    // a second call reuses the chain and gives the same result; a changed bias rebuilds it
    {
      nn::InferenceFusionGuard on(true);
      EXPECT_EQ(soma::max(soma::abs((*qm)(x)-fused)).item<double>(), 0.0);
      auto& first = dynamic_cast<q::QuantizedConv2d&>(*dynamic_cast<nn::Sequential&>(*qm).ptr(0));
      first.bias.add_(1.0);
      nn::InferenceFusionGuard off(false);
      const Tensor plain2 = (*qm)(x);
      nn::InferenceFusionGuard on2(true);
      const Tensor fused2 = (*qm)(x);
      EXPECT_LT(soma::max(soma::abs(fused2 - plain2)).item<double>(), 0.05 * mag);
      EXPECT_GT(soma::max(soma::abs(fused2 - fused)).item<double>(), 0.0) << "stale chain";
    }
  }
#endif
}

#ifdef SOMA_ONEDNN
// The chain's primitives are oneDNN's int8 kernels for this CPU, not its reference loops.
TEST(StaticQuantization, Int8ChainUsesJitKernels) {
  if (!soma::kernels::onednn::available()) GTEST_SKIP() << "oneDNN unavailable";
  if (!soma::kernels::lowp::vnni_available() || !soma::kernels::onednn::int8_exact())
    GTEST_SKIP() << "no VNNI: the chain is not used";
  namespace ok = soma::kernels::onednn;
  ok::QuantStage a, b;
  a.weight.assign(32 * 9, 1);
  a.weight_scale.assign(32, 0.01f);
  a.bias.assign(32, 0.0f);
  a.in_zero_point = 17;
  a.relu = true;
  b.weight.assign(64 * 32 * 9, -1);
  b.weight_scale.assign(64, 0.02f);
  b.bias.assign(64, 0.5f);
  b.in_scale = 0.1f;
  b.relu = true;
  ok::QuantChain chain({a, b}, 0.05f, 3);
  std::vector<ok::ChainGeometry> geo(2);
  geo[0].conv = {.n = 4,
                 .c_in = 1,
                 .h = 28,
                 .w = 28,
                 .c_out = 32,
                 .kh = 3,
                 .kw = 3,
                 .sh = 1,
                 .sw = 1,
                 .ph = 1,
                 .pw = 1,
                 .oh = 28,
                 .ow = 28};
  geo[0].pool = true;
  geo[0].pool_g = {.kh = 2, .kw = 2, .sh = 2, .sw = 2, .oh = 14, .ow = 14};
  geo[1].conv = {.n = 4,
                 .c_in = 32,
                 .h = 14,
                 .w = 14,
                 .c_out = 64,
                 .kh = 3,
                 .kw = 3,
                 .sh = 1,
                 .sw = 1,
                 .ph = 1,
                 .pw = 1,
                 .oh = 14,
                 .ow = 14};
  const std::vector<std::string> impls = chain.implementations(geo);
  ASSERT_EQ(impls.size(), 3u);
  for (const std::string& s : impls) EXPECT_EQ(s.find("ref"), std::string::npos) << s;
  // the convolutions are VNNI kernels (exact int32 sums), not the saturating pre-VNNI ones
  for (size_t i : {size_t{0}, size_t{2}})
    EXPECT_TRUE(impls[i].find("vnni") != std::string::npos ||
                impls[i].find("amx") != std::string::npos)
        << impls[i];
}
#endif

TEST(StaticQuantization, RefusesWhatItCannotQuantize) {
  nn::Sequential grouped(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).groups(2)));
  EXPECT_THROW(q::prepare(grouped), soma::Error);
  nn::Sequential none{nn::ReLU()};
  EXPECT_THROW(q::prepare(none), soma::Error);
  nn::Sequential lin(nn::Linear(3, 2));
  EXPECT_THROW(q::prepare(lin, {.observer = "kl"}), soma::Error);
}

}  // namespace
