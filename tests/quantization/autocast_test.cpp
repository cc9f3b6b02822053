// soma::autocast: float32 products in bfloat16 with float32 accumulation, forward and backward
// (the backward replays the forward's precision), against float32 products of the operands
// rounded to bfloat16 (Tensor::to(kBFloat16), round to nearest even as torch); everything else
// untouched; train::fit's autocast option.
#include <gtest/gtest.h>

#include "soma/soma.h"

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
