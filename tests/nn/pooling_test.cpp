// The pooling and resampling modules: forward equals the functional op, describe() is torch's
// repr, Dropout2d's channel statistics and eval identity, Unflatten's shapes and errors.
#include <gtest/gtest.h>

#include <cmath>

#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
namespace F = soma::nn::functional;
using soma::Tensor;

void expect_equal(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
}

TEST(PoolingModules, DescribeLikeTorch) {
  EXPECT_EQ(nn::MaxPool2d(2).describe(),
            "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
  EXPECT_EQ(nn::MaxPool2d(nn::MaxPool2dOptions({2, 3}).stride({1, 2})).describe(),
            "MaxPool2d(kernel_size=(2, 3), stride=(1, 2), padding=0, dilation=1, "
            "ceil_mode=False)");
  EXPECT_EQ(nn::AvgPool2d(nn::AvgPool2dOptions(3).stride({2}).padding({1})).describe(),
            "AvgPool2d(kernel_size=3, stride=2, padding=1)");
  EXPECT_EQ(nn::AdaptiveAvgPool2d({1, 1}).describe(), "AdaptiveAvgPool2d(output_size=(1, 1))");
  EXPECT_EQ(nn::AdaptiveMaxPool2d(3).describe(), "AdaptiveMaxPool2d(output_size=3)");
  EXPECT_EQ(nn::Dropout2d(0.3).describe(), "Dropout2d(p=0.3, inplace=False)");
  EXPECT_EQ(nn::Dropout2d().describe(), "Dropout2d(p=0.5, inplace=False)");
  EXPECT_EQ(nn::Upsample(nn::UpsampleOptions().scale_factor({2})).describe(),
            "Upsample(scale_factor=2.0, mode=nearest)");
  EXPECT_EQ(nn::Upsample(nn::UpsampleOptions().size({3, 4}).mode("bilinear").align_corners(true))
                .describe(),
            "Upsample(size=(3, 4), mode=bilinear)");
  EXPECT_EQ(nn::Unflatten(1, {2, 3}).describe(), "Unflatten(dim=1, unflattened_size=(2, 3))");
  EXPECT_EQ(nn::MaxPool1d(3).describe(),
            "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)");
  EXPECT_EQ(nn::AvgPool1d(2).describe(), "AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))");
}

TEST(PoolingModules, ForwardIsTheFunctionalOp) {
  soma::manual_seed(5);
  const Tensor x = soma::randn({2, 3, 7, 6});
  expect_equal(nn::MaxPool2d(nn::MaxPool2dOptions(3).stride({2}).padding({1}).ceil_mode(true))(x),
               F::max_pool2d(x, {3}, {2}, {1}, {1}, true));
  nn::MaxPool2d mp(2);
  auto [y, idx] = mp.forward_with_indices(x);
  expect_equal(y, F::max_pool2d(x, {2}));
  EXPECT_EQ(idx.dtype(), soma::kInt64);
  expect_equal(
      nn::AvgPool2d(nn::AvgPool2dOptions(2).count_include_pad(false).divisor_override(3))(x),
      F::avg_pool2d(x, {2}, {}, {0}, false, false, 3));
  expect_equal(nn::AdaptiveAvgPool2d(1)(x), F::adaptive_avg_pool2d(x, {1}));
  EXPECT_EQ(nn::AdaptiveAvgPool2d(1)(x).shape(), (soma::Shape{2, 3, 1, 1}));
  expect_equal(nn::AdaptiveMaxPool2d({3, 2})(x), F::adaptive_max_pool2d(x, {3, 2}));
  const Tensor s = soma::randn({2, 3, 9});
  expect_equal(nn::MaxPool1d(nn::MaxPool1dOptions(3).stride(2).padding(1))(s),
               F::max_pool1d(s, 3, 2, 1));
  expect_equal(nn::AvgPool1d(2)(s), F::avg_pool1d(s, 2));
  expect_equal(nn::Upsample(nn::UpsampleOptions().scale_factor({2}).mode("bilinear"))(x),
               F::interpolate(x, F::InterpolateOptions().scale_factor({2}).mode("bilinear")));
  EXPECT_EQ(nn::Upsample(nn::UpsampleOptions().size({5, 5}))(x).shape(), (soma::Shape{2, 3, 5, 5}));
  // a module in a Sequential, cloned
  nn::Sequential seq(nn::MaxPool2d(2), nn::Flatten(), nn::Unflatten(1, {3, -1}));
  EXPECT_EQ(seq.forward(x).shape(), (soma::Shape{2, 3, 9}));
  auto copy = seq.clone();
  EXPECT_NE(copy->describe().find("Sequential"), std::string::npos);
}

TEST(PoolingModules, UnflattenShapesAndErrors) {
  const Tensor x = soma::zeros({2, 12, 3});
  EXPECT_EQ(nn::Unflatten(1, {3, 4})(x).shape(), (soma::Shape{2, 3, 4, 3}));
  EXPECT_EQ(nn::Unflatten(-1, {3, 1})(x).shape(), (soma::Shape{2, 12, 3, 1}));
  EXPECT_EQ(nn::Unflatten(1, {-1, 6})(x).shape(), (soma::Shape{2, 2, 6, 3}));
  EXPECT_THROW(nn::Unflatten(1, {5, 2})(x), soma::Error);
  EXPECT_THROW(nn::Unflatten(3, {3})(x), soma::Error);
  EXPECT_THROW(nn::Unflatten(1, {-1, -1}), soma::Error);
  EXPECT_THROW(nn::Unflatten(1, {}), soma::Error);
  EXPECT_THROW(nn::Unflatten(1, {0, 3}), soma::Error);
}

TEST(PoolingModules, Dropout2dZeroesWholeChannels) {
  soma::manual_seed(7);
  nn::Dropout2d m(0.4);
  const Tensor x = soma::ones({64, 32, 3, 4}, soma::kFloat64);
  const Tensor y = m(x);
  const auto v = y.to_vector<double>();
  int64_t zeros = 0;
  for (int64_t ch = 0; ch < 64 * 32; ++ch) {
    const double first = v[ch * 12];
    EXPECT_TRUE(first == 0.0 || std::abs(first - 1.0 / 0.6) < 1e-12);
    for (int64_t i = 1; i < 12; ++i) ASSERT_EQ(v[ch * 12 + i], first);
    zeros += first == 0.0;
  }
  // 2048 channels, p = 0.4: 819 expected, sd ~22
  EXPECT_NEAR(static_cast<double>(zeros), 0.4 * 2048, 5 * 22.2);
  // gradient: the same mask
  Tensor xg = soma::ones({4, 8, 2, 2}, soma::kFloat64).requires_grad_(true);
  Tensor yg = F::dropout2d(xg, 0.5, true);
  yg.sum().backward();
  expect_equal(xg.grad(), yg.detach());
  // eval mode and p = 0 are the identity, p = 1 zeroes everything
  m.eval();
  expect_equal(m(x), x);
  expect_equal(F::dropout2d(x, 0.0, true), x);
  EXPECT_EQ(F::dropout2d(x, 1.0, true).sum().item<double>(), 0.0);
  EXPECT_THROW(nn::Dropout2d(-0.1), soma::Error);
  // reproducible with the global generator
  soma::manual_seed(3);
  const Tensor a = F::dropout2d(x, 0.5);
  soma::manual_seed(3);
  expect_equal(F::dropout2d(x, 0.5), a);
}

}  // namespace
