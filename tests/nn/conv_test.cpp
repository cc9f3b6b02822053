// Convolutions: the fast "cpu" kernels against the naive reference kernels at network-sized
// shapes (float32, 1e-4 relative), and the modules nn::Conv1d / Conv2d / ConvTranspose1d /
// ConvTranspose2d (parameters, torch's initialisation, describe(), clone, state_dict, padding
// modes, errors). Op values against PyTorch: tests/ops/toolkit_conv_test.cpp.
#include "kernels/cpu/conv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "kernels/registry.h"
#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
namespace F = soma::nn::functional;
using soma::Tensor;
using soma::kernels::cpu::ConvGeometry;

struct Shape {
  int64_t n, c_in, c_out, h, w, k, s, p, d, groups;
};

ConvGeometry geometry(const Shape& c) {
  ConvGeometry g;
  g.n = c.n, g.c_in = c.c_in, g.h = c.h, g.w = c.w, g.c_out = c.c_out, g.kh = c.k, g.kw = c.k;
  g.sh = g.sw = c.s, g.ph = g.pw = c.p, g.dh = g.dw = c.d, g.groups = c.groups;
  g.oh = (c.h + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1;
  g.ow = (c.w + 2 * c.p - c.d * (c.k - 1) - 1) / c.s + 1;
  return g;
}

// max |a - b| <= tol * max |b| (and every value finite).
void expect_close(const std::vector<float>& a, const std::vector<float>& b, const char* what,
                  const Shape& c) {
  ASSERT_EQ(a.size(), b.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(std::isfinite(a[i])) << what << " element " << i;
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  EXPECT_LE(err, 1e-4 * std::max(scale, 1e-30))
      << what << ": n " << c.n << " c_in " << c.c_in << " c_out " << c.c_out << " " << c.h << "x"
      << c.w << " k " << c.k << " s " << c.s << " p " << c.p << " d " << c.d << " groups "
      << c.groups << ": max error " << err << " of max " << scale;
}

std::vector<float> random_values(int64_t n) {
  const Tensor t = soma::randn({n});
  return {t.data<float>(), t.data<float>() + n};
}

TEST(ConvKernels, FastMatchesReference) {
  soma::manual_seed(7);
  const std::vector<Shape> shapes = {
      {8, 16, 32, 14, 14, 3, 1, 1, 1, 1},   // chunked im2col + GEMM
      {8, 32, 64, 14, 14, 3, 2, 1, 1, 2},   // groups 2, stride 2
      {8, 16, 16, 28, 28, 3, 1, 1, 1, 16},  // depthwise
      {8, 8, 16, 14, 14, 3, 2, 1, 1, 8},    // depthwise, multiplier 2, stride 2
      {8, 1, 32, 28, 28, 3, 1, 1, 1, 1},    // one input channel (the direct kernel)
      {8, 16, 32, 14, 14, 3, 1, 2, 2, 1},   // dilation 2
      {8, 32, 16, 14, 14, 1, 1, 0, 1, 1},   // pointwise
      {8, 32, 16, 14, 14, 1, 1, 0, 1, 4},   // pointwise, groups 4
      {8, 16, 16, 14, 14, 1, 2, 0, 1, 1},   // 1x1 stride 2 (im2col)
      {2, 8, 16, 9, 11, 5, 2, 2, 1, 1},     // one sample per thread, odd sizes
      {1, 16, 24, 13, 12, 3, 1, 1, 1, 2},   // batch 1: threaded GEMM
      {3, 4, 6, 5, 5, 3, 1, 0, 2, 2},       // kernel reach = input size
      {2, 2, 3, 1, 1, 3, 1, 2, 2, 1},       // taps wholly in the padding
      {2, 3, 4, 2, 3, 3, 2, 3, 1, 1},       // padding wider than the image
  };
  for (const Shape& c : shapes) {
    const ConvGeometry g = geometry(c);
    const int64_t nx = g.n * g.c_in * g.h * g.w, nw = g.c_out * (g.c_in / g.groups) * g.kh * g.kw;
    const int64_t ny = g.n * g.c_out * g.oh * g.ow;
    const std::vector<float> x = random_values(nx), w = random_values(nw),
                             b = random_values(g.c_out);
    const std::vector<float> gy = random_values(ny);
    std::vector<float> y(ny, NAN), y_ref(ny, NAN);
    soma::kernels::cpu::conv_forward(x.data(), w.data(), b.data(), y.data(), g);
    soma::kernels::cpu::conv_forward_reference(x.data(), w.data(), b.data(), y_ref.data(), g);
    expect_close(y, y_ref, "forward", c);
    std::vector<float> gx(nx, NAN), gx_ref(nx, NAN);
    soma::kernels::cpu::conv_backward_input(gy.data(), w.data(), gx.data(), g);
    soma::kernels::cpu::conv_backward_input_reference(gy.data(), w.data(), gx_ref.data(), g);
    expect_close(gx, gx_ref, "backward_input", c);
    std::vector<float> gw(nw, NAN), gw_ref(nw, NAN), gb(g.c_out, NAN), gb_ref(g.c_out, NAN);
    soma::kernels::cpu::conv_backward_weight(x.data(), gy.data(), gw.data(), gb.data(), g);
    soma::kernels::cpu::conv_backward_weight_reference(x.data(), gy.data(), gw_ref.data(),
                                                       gb_ref.data(), g);
    expect_close(gw, gw_ref, "backward_weight", c);
    expect_close(gb, gb_ref, "backward_bias", c);
  }
}

// The op on the "cpu" backend equals the op on the "reference" backend, forward and backward
// (float64, through autograd; a strided input).
TEST(ConvKernels, BackendsAgreeThroughTheOp) {
  soma::manual_seed(3);
  auto run = [](const std::string& backend, const Tensor& x0, const Tensor& w0, const Tensor& b0) {
    soma::kernels::BackendGuard guard(backend);
    Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    Tensor b = b0.clone().requires_grad_(true);
    Tensor y = F::conv2d(soma::transpose(x, 2, 3), w, b, {2, 1}, {1, 2}, {1, 2}, 2);
    (y * y).sum().backward();
    return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), b.grad()};
  };
  const Tensor x = soma::randn({4, 6, 9, 8}, soma::kFloat64);
  const Tensor w = soma::randn({8, 3, 3, 3}, soma::kFloat64), b = soma::randn({8}, soma::kFloat64);
  const auto fast = run("cpu", x, w, b), ref = run("reference", x, w, b);
  for (size_t i = 0; i < fast.size(); ++i)
    EXPECT_TRUE(soma::allclose(fast[i], ref[i], 1e-10, 1e-10)) << "tensor " << i;
}

// A transposed convolution with output_padding >= stride (torch allows it below the dilation)
// at a size the default float32 backend sends to oneDNN: the same values and gradients as the
// reference backend (its adjoint geometry has fewer bottom/right padding rows than top/left).
TEST(ConvKernels, TransposedWithLargeOutputPaddingOnTheDefaultBackend) {
  soma::manual_seed(4);
  auto run = [](const std::string& backend, const Tensor& x0, const Tensor& w0) {
    std::optional<soma::kernels::BackendGuard> guard;
    if (!backend.empty()) guard.emplace(backend);
    Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    Tensor y = F::conv_transpose2d(x, w, {}, {1}, {1}, {1}, 1, {2});
    (y * y).sum().backward();
    return std::vector<Tensor>{y.detach(), x.grad(), w.grad()};
  };
  const Tensor x = soma::randn({8, 16, 32, 32}), w = soma::randn({16, 16, 3, 3}) * 0.1;
  const auto fast = run("", x, w), ref = run("reference", x, w);
  EXPECT_EQ(fast[0].shape(), (soma::Shape{8, 16, 35, 35}));  // torch: [8, 16, 35, 35]
  for (size_t i = 0; i < fast.size(); ++i) {
    const double scale = soma::amax(soma::abs(ref[i])).item<double>();
    EXPECT_LE(soma::amax(soma::abs(fast[i] - ref[i])).item<double>(), 1e-4 * scale)
        << "tensor " << i;
  }
}

// ---- modules ------------------------------------------------------------------------------------
TEST(ConvModules, ParametersAndDescribe) {
  nn::Conv2d conv(nn::Conv2dOptions(1, 32, 3).stride(1).padding(1));
  const auto params = conv.named_parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0].first, "weight");
  EXPECT_EQ(params[0].second.shape(), (soma::Shape{32, 1, 3, 3}));
  EXPECT_EQ(params[1].first, "bias");
  EXPECT_EQ(params[1].second.shape(), (soma::Shape{32}));
  EXPECT_EQ(conv.describe(), "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))");
  EXPECT_EQ(nn::Conv2d(3, 8, {3, 5}).describe(), "Conv2d(3, 8, kernel_size=(3, 5), stride=(1, 1))");
  nn::Conv2d g(
      nn::Conv2dOptions(4, 8, 3).groups(2).bias(false).dilation(2).padding("same").padding_mode(
          "reflect"));
  EXPECT_EQ(g.weight.shape(), (soma::Shape{8, 2, 3, 3}));
  EXPECT_FALSE(g.bias.defined());
  EXPECT_EQ(g.describe(),
            "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=same, "
            "dilation=(2, 2), groups=2, bias=False, padding_mode=reflect)");
  nn::Conv1d c1(nn::Conv1dOptions(2, 4, 5).stride(2));
  EXPECT_EQ(c1.weight.shape(), (soma::Shape{4, 2, 5}));
  EXPECT_EQ(c1.describe(), "Conv1d(2, 4, kernel_size=(5,), stride=(2,))");
  nn::ConvTranspose2d t(
      nn::ConvTranspose2dOptions(4, 6, 3).stride(2).padding(1).output_padding(1).groups(2));
  EXPECT_EQ(t.weight.shape(), (soma::Shape{4, 3, 3, 3}));
  EXPECT_EQ(t.bias.shape(), (soma::Shape{6}));
  EXPECT_EQ(t.describe(),
            "ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), "
            "padding=(1, 1), output_padding=(1, 1), groups=2)");
  nn::ConvTranspose1d t1(3, 5, 2);
  EXPECT_EQ(t1.weight.shape(), (soma::Shape{3, 5, 2}));
  EXPECT_EQ(t1.describe(), "ConvTranspose1d(3, 5, kernel_size=(2,), stride=(1,))");
  const auto sd = t.state_dict();
  EXPECT_EQ(sd.size(), 2u);
  EXPECT_TRUE(sd.count("weight") && sd.count("bias"));
  EXPECT_EQ(nn::Conv2d(nn::Conv2dOptions(1, 2, 3).dtype(soma::kFloat64)).weight.dtype(),
            soma::kFloat64);
}

TEST(ConvModules, TorchInitialisationBounds) {
  soma::manual_seed(1);
  // fan_in = weight.size(1) * kh * kw; weight and bias within 1/sqrt(fan_in), spread over it
  auto check = [](const Tensor& w, const Tensor& b, int64_t fan_in) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (const Tensor& t : {w, b}) {
      const double mx = soma::max(t).item<double>(), mn = soma::min(t).item<double>();
      EXPECT_LE(mx, bound);
      EXPECT_GE(mn, -bound);
      EXPECT_GT(mx, 0.5 * bound);
      EXPECT_LT(mn, -0.5 * bound);
    }
  };
  nn::Conv2d c(nn::Conv2dOptions(16, 32, 3));
  check(c.weight, c.bias, 16 * 9);
  nn::Conv2d dw(nn::Conv2dOptions(32, 32, 3).groups(32));
  check(dw.weight, dw.bias, 9);
  nn::ConvTranspose2d t(nn::ConvTranspose2dOptions(8, 12, 3).groups(2));
  check(t.weight, t.bias, 6 * 9);  // torch's fan_in of a transposed weight [in, out/g, k, k]
}

TEST(ConvModules, ForwardCloneAndPaddingModes) {
  soma::manual_seed(2);
  nn::Conv2d conv(nn::Conv2dOptions(2, 3, 3).padding(1).padding_mode("circular"));
  const Tensor x = soma::randn({2, 2, 5, 6});
  const Tensor expected = F::conv2d(F::pad(x, {1, 1, 1, 1}, "circular"), conv.weight, conv.bias);
  EXPECT_TRUE(soma::allclose(conv.forward(x), expected));
  EXPECT_EQ(conv.forward(soma::randn({2, 5, 6})).shape(), (soma::Shape{3, 5, 6}));  // unbatched
  nn::Conv2d same(nn::Conv2dOptions(2, 3, {4, 3}).padding("same").padding_mode("replicate"));
  const Tensor ys = same.forward(x);
  EXPECT_EQ(ys.shape(), (soma::Shape{2, 3, 5, 6}));
  EXPECT_TRUE(
      soma::allclose(ys, F::conv2d(F::pad(x, {1, 1, 1, 2}, "replicate"), same.weight, same.bias)));
  // clone: equal values, its own storage
  auto copy = std::dynamic_pointer_cast<nn::Conv2d>(conv.clone());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(soma::allclose(copy->weight, conv.weight));
  EXPECT_NE(copy->weight.data<float>(), conv.weight.data<float>());
  EXPECT_TRUE(soma::allclose(copy->forward(x), conv.forward(x)));
  // backward reaches the parameters
  conv.forward(x).sum().backward();
  EXPECT_EQ(conv.weight.grad().shape(), conv.weight.shape());
  EXPECT_EQ(conv.bias.grad().shape(), conv.bias.shape());
  nn::Conv1d c1(nn::Conv1dOptions(2, 4, 3).padding("valid"));
  EXPECT_EQ(c1.forward(soma::randn({3, 2, 10})).shape(), (soma::Shape{3, 4, 8}));
  nn::ConvTranspose2d t(nn::ConvTranspose2dOptions(3, 2, 3).stride(2).padding(1).output_padding(1));
  EXPECT_EQ(t.forward(soma::randn({2, 3, 7, 7})).shape(), (soma::Shape{2, 2, 14, 14}));
}

TEST(ConvModules, Errors) {
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)), soma::Error);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(4, 3, 3).groups(2)), soma::Error);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).groups(0)), soma::Error);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding("same").stride(2)), soma::Error);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding("full")), soma::Error);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding_mode("mirror")), soma::Error);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(4, 4, 0)), soma::Error);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).dtype(soma::kInt64)), soma::Error);
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(4, 4, {3, 3, 3})), soma::Error);
  EXPECT_THROW(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(4, 4, 3).padding_mode("reflect")),
               soma::Error);
  EXPECT_THROW(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(4, 4, 3).output_padding(1)),
               soma::Error);
  nn::Conv2d conv(nn::Conv2dOptions(1, 32, 3).padding(1));
  // an MNIST batch without its channel dimension
  const std::string msg = [&] {
    try {
      conv.forward(soma::randn({16, 28, 28}));
    } catch (const soma::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  }();
  EXPECT_NE(msg.find("Conv2d(1, 32"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[16, 28, 28]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unbatched"), std::string::npos) << msg;
  EXPECT_THROW(conv.forward(soma::randn({2, 1, 28})), soma::Error);
  EXPECT_THROW(conv.forward(soma::randn({2, 3, 28, 28})), soma::Error);
}

// ms per forward + backward at the benchmark shapes on the "cpu" backend (not a timed test:
// run with --gtest_also_run_disabled_tests --gtest_filter='*ConvTiming*').
TEST(ConvTiming, DISABLED_ForwardBackward) {
  struct Case {
    soma::Shape x;
    int64_t c_out;
  };
  for (const Case& c : {Case{{128, 32, 14, 14}, 64}, Case{{128, 1, 28, 28}, 32}}) {
    const Tensor x = soma::randn(c.x);
    nn::Conv2d conv(nn::Conv2dOptions(c.x[1], c.c_out, 3).padding(1));
    const bool input_grad = c.x[1] > 1;
    auto step = [&] {
      Tensor xi = input_grad ? x.detach().requires_grad_(true) : x;
      conv.zero_grad();
      conv.forward(xi).sum().backward();
    };
    step();
    const int reps = 10;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) step();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
        reps;
    std::printf("conv2d %lld->%lld 3x3 pad 1 on [%lld, %lld, %lld, %lld]: %.2f ms fwd+bwd%s\n",
                static_cast<long long>(c.x[1]), static_cast<long long>(c.c_out),
                static_cast<long long>(c.x[0]), static_cast<long long>(c.x[1]),
                static_cast<long long>(c.x[2]), static_cast<long long>(c.x[3]), ms,
                input_grad ? " (incl. input grad)" : " (no input grad)");
  }
}

}  // namespace
