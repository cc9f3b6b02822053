// Pooling and resampling against PyTorch (tests/reference/toolkit_pool.py): outputs, indices,
// gradients, gradcheck and gradgradcheck; plus the fast kernels against the references at
// larger shapes and the error messages.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "kernels/kernels.h"
#include "ops/toolkit_driver.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using toolkit::Inputs;
using toolkit::one;
using toolkit::two;
namespace F = soma::nn::functional;

F::InterpolateOptions near(std::vector<int64_t> size) {
  return F::InterpolateOptions().size(std::move(size));
}
F::InterpolateOptions near_scale(std::vector<double> f) {
  return F::InterpolateOptions().scale_factor(std::move(f));
}
F::InterpolateOptions bilinear(std::vector<int64_t> size, bool ac) {
  return F::InterpolateOptions().size(std::move(size)).mode("bilinear").align_corners(ac);
}
F::InterpolateOptions bilinear_scale(std::vector<double> f, bool ac) {
  return F::InterpolateOptions().scale_factor(std::move(f)).mode("bilinear").align_corners(ac);
}

const toolkit::Table& table() {
  static const toolkit::Table t = {
      {"max_pool2d_k2", {one([](const Inputs& x) { return F::max_pool2d(x[0], {2}); })}},
      {"max_pool2d_k3s2p1",
       {one([](const Inputs& x) { return F::max_pool2d(x[0], {3}, {2}, {1}); })}},
      {"max_pool2d_k3s1p1d2",
       {one([](const Inputs& x) { return F::max_pool2d(x[0], {3}, {1}, {1}, {2}); })}},
      {"max_pool2d_k2x3s1x2p1", {one([](const Inputs& x) {
         return F::max_pool2d(x[0], {2, 3}, {1, 2}, {1, 1});
       })}},
      {"max_pool2d_k3s2_ceil",
       {one([](const Inputs& x) { return F::max_pool2d(x[0], {3}, {2}, {0}, {1}, true); })}},
      {"max_pool2d_k2s2p1_ceil",
       {one([](const Inputs& x) { return F::max_pool2d(x[0], {2}, {2}, {1}, {1}, true); })}},
      {"max_pool2d_k3s2d2_ceil",
       {one([](const Inputs& x) { return F::max_pool2d(x[0], {3}, {2}, {1}, {2}, true); })}},
      {"max_pool2d_indices",
       {two([](const Inputs& x) { return F::max_pool2d_with_indices(x[0], {3}, {2}, {1}); })}},
      {"max_pool2d_t",
       {one([](const Inputs& x) { return F::max_pool2d(x[0].transpose(2, 3), {2}, {1}); })}},
      {"max_pool1d_k3s2p1", {one([](const Inputs& x) { return F::max_pool1d(x[0], 3, 2, 1); })}},
      {"max_pool1d_indices",
       {two([](const Inputs& x) { return F::max_pool1d_with_indices(x[0], 2, 1, 1, 2); })}},
      {"avg_pool2d_k2", {one([](const Inputs& x) { return F::avg_pool2d(x[0], {2}); })}},
      {"avg_pool2d_k3s2p1",
       {one([](const Inputs& x) { return F::avg_pool2d(x[0], {3}, {2}, {1}); })}},
      {"avg_pool2d_k3s2p1_nopad",
       {one([](const Inputs& x) { return F::avg_pool2d(x[0], {3}, {2}, {1}, false, false); })}},
      {"avg_pool2d_k3s2p1_ceil",
       {one([](const Inputs& x) { return F::avg_pool2d(x[0], {3}, {2}, {1}, true); })}},
      {"avg_pool2d_k3s2p1_ceil_nopad",
       {one([](const Inputs& x) { return F::avg_pool2d(x[0], {3}, {2}, {1}, true, false); })}},
      {"avg_pool2d_div3",
       {one([](const Inputs& x) { return F::avg_pool2d(x[0], {2}, {1}, {1}, false, true, 3); })}},
      {"avg_pool2d_k2x3s2x1p1x0", {one([](const Inputs& x) {
         return F::avg_pool2d(x[0], {2, 3}, {2, 1}, {1, 0});
       })}},
      {"avg_pool2d_perm", {one([](const Inputs& x) {
         return F::avg_pool2d(x[0].permute({0, 3, 1, 2}), {2}, {1});
       })}},
      {"avg_pool1d_k3s2p1", {one([](const Inputs& x) { return F::avg_pool1d(x[0], 3, 2, 1); })}},
      {"avg_pool1d_ceil_nopad",
       {one([](const Inputs& x) { return F::avg_pool1d(x[0], 2, 2, 1, true, false); })}},
      {"adaptive_avg_pool2d_3x2", {one([](const Inputs& x) {
         return F::adaptive_avg_pool2d(x[0], {3, 2});
       })}},
      {"adaptive_avg_pool2d_1",
       {one([](const Inputs& x) { return F::adaptive_avg_pool2d(x[0], {1}); })}},
      {"adaptive_avg_pool2d_5x4", {one([](const Inputs& x) {
         return F::adaptive_avg_pool2d(x[0], {5, 4});
       })}},
      {"adaptive_avg_pool1d_3",
       {one([](const Inputs& x) { return F::adaptive_avg_pool1d(x[0], 3); })}},
      {"adaptive_max_pool2d_3x2", {one([](const Inputs& x) {
         return F::adaptive_max_pool2d(x[0], {3, 2});
       })}},
      {"adaptive_max_pool2d_indices",
       {two([](const Inputs& x) { return F::adaptive_max_pool2d_with_indices(x[0], {3}); })}},
      {"adaptive_max_pool1d_3",
       {one([](const Inputs& x) { return F::adaptive_max_pool1d(x[0], 3); })}},
      {"nearest_size7x9", {one([](const Inputs& x) {
         return F::interpolate(x[0], near({7, 9}));
       })}},
      {"nearest_size3x2", {one([](const Inputs& x) {
         return F::interpolate(x[0], near({3, 2}));
       })}},
      {"nearest_size6", {one([](const Inputs& x) { return F::interpolate(x[0], near({6})); })}},
      {"nearest_scale2",
       {one([](const Inputs& x) { return F::interpolate(x[0], near_scale({2.0})); })}},
      {"nearest_scale1p5",
       {one([](const Inputs& x) { return F::interpolate(x[0], near_scale({1.5})); })}},
      {"nearest_scale1p7x0p6", {one([](const Inputs& x) {
         return F::interpolate(x[0], near_scale({1.7, 0.6}));
       })}},
      {"nearest_1d_size7", {one([](const Inputs& x) { return F::interpolate(x[0], near({7})); })}},
      {"bilinear_size7x9", {one([](const Inputs& x) {
         return F::interpolate(x[0], bilinear({7, 9}, false));
       })}},
      {"bilinear_size7x9_ac", {one([](const Inputs& x) {
         return F::interpolate(x[0], bilinear({7, 9}, true));
       })}},
      {"bilinear_size3x2", {one([](const Inputs& x) {
         return F::interpolate(x[0], bilinear({3, 2}, false));
       })}},
      {"bilinear_size3x1_ac", {one([](const Inputs& x) {
         return F::interpolate(x[0], bilinear({3, 1}, true));
       })}},
      {"bilinear_scale2",
       {one([](const Inputs& x) { return F::interpolate(x[0], bilinear_scale({2.0}, false)); })}},
      {"bilinear_scale2_ac",
       {one([](const Inputs& x) { return F::interpolate(x[0], bilinear_scale({2.0}, true)); })}},
      {"bilinear_scale1p7x0p6", {one([](const Inputs& x) {
         return F::interpolate(x[0], bilinear_scale({1.7, 0.6}, false));
       })}},
      {"bilinear_t", {one([](const Inputs& x) {
         return F::interpolate(x[0].transpose(2, 3), bilinear({4, 6}, false));
       })}},
      {"nearest_align", {one([](const Inputs& x) {
         return F::interpolate(x[0], near({4, 4}).align_corners(true));
       })}},
      {"nearest_nosize",
       {one([](const Inputs& x) { return F::interpolate(x[0], F::InterpolateOptions()); })}},
      {"bilinear_3d",
       {one([](const Inputs& x) { return F::interpolate(x[0], bilinear({4}, false)); })}},
      {"max_pool2d_k2p2",
       {one([](const Inputs& x) { return F::max_pool2d(x[0], {2}, {2}, {2}); })}},
      {"max_pool2d_k7", {one([](const Inputs& x) { return F::max_pool2d(x[0], {7}); })}},
      {"max_pool2d_k0", {one([](const Inputs& x) { return F::max_pool2d(x[0], {0}); })}},
      {"avg_pool2d_div0",
       {one([](const Inputs& x) { return F::avg_pool2d(x[0], {2}, {}, {0}, false, true, 0); })}},
      {"adaptive_max_pool2d_2",
       {one([](const Inputs& x) { return F::adaptive_max_pool2d(x[0], {2}); })}},
  };
  return t;
}

}  // namespace

SOMA_TOOLKIT_SUITE(Pool, "toolkit_pool_reference.txt", table);

namespace {

using soma::kernels::BackendGuard;

void expect_close(const Tensor& a, const Tensor& b, double tol, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const auto u = a.to(soma::kFloat64).to_vector<double>();
  const auto v = b.to(soma::kFloat64).to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < u.size(); ++i)
    worst = std::max(worst, std::abs(u[i] - v[i]) / std::max(1.0, std::abs(v[i])));
  EXPECT_LE(worst, tol) << what;
}

// Forward, indices and backward of the fast kernels against the references.
TEST(ToolkitPoolKernels, FastMatchesReference) {
  struct Cfg {
    soma::Shape shape;
    std::vector<int64_t> k, s, p, d;
    bool ceil;
  };
  const std::vector<Cfg> cfgs = {
      {{4, 32, 28, 28}, {2}, {2}, {0}, {1}, false},
      {{2, 64, 14, 14}, {2}, {2}, {0}, {1}, false},
      {{4, 16, 15, 13}, {2}, {2}, {0}, {1}, true},
      {{3, 8, 17, 19}, {3}, {2}, {1}, {1}, true},
      {{2, 8, 20, 21}, {3, 2}, {1, 3}, {1, 1}, {2, 1}, false},
  };
  soma::manual_seed(11);
  for (const Cfg& c : cfgs) {
    for (soma::DType dt : {soma::kFloat32, soma::kFloat64}) {
      const Tensor x = soma::randn(c.shape, dt);
      std::ostringstream os;
      os << "shape " << c.shape[0] << "x" << c.shape[1] << "x" << c.shape[2] << "x" << c.shape[3];
      const std::string what = os.str();
      auto run = [&](const char* backend) {
        BackendGuard guard(backend);
        Tensor xi = x.clone().requires_grad_(true);
        auto [y, idx] = F::max_pool2d_with_indices(xi, c.k, c.s, c.p, c.d, c.ceil);
        Tensor a = F::avg_pool2d(xi, c.k, c.s, c.p, c.ceil, false);
        Tensor am = F::adaptive_max_pool2d(xi, {5, 3});
        (y * y).sum().backward();
        Tensor gmax = xi.grad().clone();
        xi.grad().zero_();
        (a * a).sum().backward();
        Tensor gavg = xi.grad().clone();
        xi.grad().zero_();
        (am * am).sum().backward();
        return std::vector<Tensor>{y, idx, gmax, a, gavg, am, xi.grad().clone()};
      };
      const auto fast = run("cpu"), ref = run("reference");
      EXPECT_EQ(fast[1].to_vector<int64_t>(), ref[1].to_vector<int64_t>()) << what;
      for (size_t i : {0u, 2u, 5u, 6u}) expect_close(fast[i], ref[i], 0.0, what + " max");
      for (size_t i : {3u, 4u}) expect_close(fast[i], ref[i], 1e-6, what + " avg");
    }
  }
}

// NaN wins the max like torch; padded cells never win.
TEST(ToolkitPoolKernels, NanAndNegativeValues) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = soma::tensor(std::vector<double>{-5, nan, -7, -1}, {1, 1, 2, 2});
  for (const char* backend : {"cpu", "reference"}) {
    BackendGuard guard(backend);
    auto [y, idx] = F::max_pool2d_with_indices(x, {2});
    EXPECT_TRUE(std::isnan(y.item<double>()));
    EXPECT_EQ(idx.item<int64_t>(), 1);
    auto [y2, idx2] = F::max_pool2d_with_indices(x * 0.0 - 3.0, {3}, {1}, {1});
    for (double v : y2.to_vector<double>()) EXPECT_TRUE(std::isnan(v) || v == -3.0);
  }
}

// max_pool2d's backward under create_graph is an op of the graph: its gradient with respect to
// the upstream gradient gathers at the indices.
TEST(ToolkitPoolKernels, DoubleBackwardThroughIndices) {
  Tensor x = soma::tensor(std::vector<double>{1, 4, 2, 3, 8, 5, 7, 9, 0}, {1, 1, 3, 3});
  x.requires_grad_(true);
  Tensor y = F::max_pool2d(x, {2}, {1});  // [[8, 8], [9, 9]] at flat indices 4, 4, 7, 7
  Tensor w = soma::tensor(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}).requires_grad_(true);
  auto g = soma::autograd::grad({(y * w).sum()}, {x}, {}, std::nullopt, true);
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{0, 0, 0, 0, 3, 0, 0, 7, 0}));
  auto gw = soma::autograd::grad({(g[0] * x).sum()}, {w});
  EXPECT_EQ(gw[0].to_vector<double>(), (std::vector<double>{8, 8, 9, 9}));
}

TEST(ToolkitPoolErrors, NameTheOpAndValues) {
  using toolkit::error_message;
  const Tensor x = soma::zeros({1, 1, 5, 5});
  EXPECT_NE(error_message([&] { F::max_pool2d(x, {2}, {2}, {2}); }).find("max_pool2d: pad should"),
            std::string::npos);
  EXPECT_NE(error_message([&] { F::max_pool2d(x, {7}); }).find("Output size is too small"),
            std::string::npos);
  EXPECT_NE(error_message([&] {
              F::avg_pool2d(soma::zeros({5, 5}), {2});
            }).find("avg_pool2d"),
            std::string::npos);
  EXPECT_NE(error_message([&] { F::max_pool2d(x.to(soma::kInt64), {2}); }).find("int64"),
            std::string::npos);
  EXPECT_THROW(F::max_pool2d(x, {2, 2, 2}), soma::Error);
  EXPECT_THROW(F::max_pool2d(x, {2}, {-1}), soma::Error);
  EXPECT_THROW(F::max_pool2d(x, {2}, {2}, {0}, {0}), soma::Error);
  EXPECT_THROW(F::max_pool2d(soma::zeros({1, 0, 5, 5}), {2}), soma::Error);
  EXPECT_THROW(F::avg_pool2d(x.to(soma::kInt64), {2}), soma::Error);
  EXPECT_THROW(F::adaptive_avg_pool2d(x, {-1, 2}), soma::Error);
  EXPECT_THROW(F::interpolate(x, F::InterpolateOptions().size({2}).scale_factor({2.0})),
               soma::Error);
  EXPECT_THROW(F::interpolate(x, F::InterpolateOptions().size({2}).mode("bicubic")), soma::Error);
  EXPECT_THROW(F::interpolate(x, F::InterpolateOptions().scale_factor({0.1})), soma::Error);
  EXPECT_THROW(F::dropout2d(x, 1.5), soma::Error);
  // a batch of zero images pools to an empty batch
  EXPECT_EQ(F::max_pool2d(soma::zeros({0, 2, 4, 4}), {2}).shape(), (soma::Shape{0, 2, 2, 2}));
}

}  // namespace

namespace {

// Timing (not run by default): --gtest_also_run_disabled_tests
// --gtest_filter='*DISABLED_MaxPoolTiming*'
TEST(ToolkitPoolKernels, DISABLED_MaxPoolTiming) {
  for (const soma::Shape& shape : {soma::Shape{128, 32, 28, 28}, soma::Shape{128, 64, 14, 14}}) {
    Tensor x = soma::randn(shape).requires_grad_(true);
    const Tensor gy = soma::randn({shape[0], shape[1], shape[2] / 2, shape[3] / 2});
    double best_f = 1e9, best_fb = 1e9;
    for (int rep = 0; rep < 20; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      Tensor y = F::max_pool2d(x, {2});
      const auto t1 = std::chrono::steady_clock::now();
      y.backward(gy);
      const auto t2 = std::chrono::steady_clock::now();
      x.zero_grad();
      best_f = std::min(best_f, std::chrono::duration<double, std::milli>(t1 - t0).count());
      best_fb = std::min(best_fb, std::chrono::duration<double, std::milli>(t2 - t0).count());
    }
    std::printf(
        "max_pool2d(2) [%lld, %lld, %lld, %lld] float32: forward %.3f ms, forward+backward "
        "%.3f ms (best of 20, %d threads)\n",
        static_cast<long long>(shape[0]), static_cast<long long>(shape[1]),
        static_cast<long long>(shape[2]), static_cast<long long>(shape[3]), best_f, best_fb,
        soma::get_num_threads());
  }
}

}  // namespace
