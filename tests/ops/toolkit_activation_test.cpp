// Activations against PyTorch (tests/reference/toolkit_activation.py): outputs, gradients,
// gradcheck and gradgradcheck, including the losses and linear whose backward switches to
// differentiable formulas under create_graph; plus modules, errors and double backward checks.
#include <gtest/gtest.h>

#include <sstream>

#include "ops/toolkit_driver.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using toolkit::Inputs;
using toolkit::one;
namespace F = soma::nn::functional;
using soma::nn::Reduction;

const toolkit::Table& table() {
  static const toolkit::Table t = {
      {"relu", {one([](const Inputs& x) { return soma::relu(x[0]); })}},
      {"sigmoid", {one([](const Inputs& x) { return soma::sigmoid(x[0]); })}},
      {"tanh", {one([](const Inputs& x) { return soma::tanh(x[0]); })}},
      {"leaky_relu_0p2", {one([](const Inputs& x) { return soma::leaky_relu(x[0], 0.2); })}},
      {"gelu", {one([](const Inputs& x) { return soma::gelu(x[0]); })}},
      {"softmax_dim1", {one([](const Inputs& x) { return soma::softmax(x[0], 1); })}},
      {"log_softmax_dimm1", {one([](const Inputs& x) { return soma::log_softmax(x[0], -1); })}},
      {"elu", {one([](const Inputs& x) { return soma::elu(x[0]); })}},
      {"elu_a0p5", {one([](const Inputs& x) { return soma::elu(x[0], 0.5); })}},
      {"elu_t", {one([](const Inputs& x) { return soma::elu(x[0].t()); })}},
      {"selu", {one([](const Inputs& x) { return soma::selu(x[0]); })}},
      {"celu", {one([](const Inputs& x) { return soma::celu(x[0]); })}},
      {"celu_a2", {one([](const Inputs& x) { return soma::celu(x[0], 2.0); })}},
      {"silu", {one([](const Inputs& x) { return soma::silu(x[0]); })}},
      {"silu_t", {one([](const Inputs& x) { return soma::silu(x[0].t()); })}},
      {"mish", {one([](const Inputs& x) { return soma::mish(x[0]); })}},
      {"softplus", {one([](const Inputs& x) { return soma::softplus(x[0]); })}},
      {"softplus_b2_t1", {one([](const Inputs& x) { return soma::softplus(x[0], 2.0, 1.0); })}},
      {"hardtanh", {one([](const Inputs& x) { return soma::hardtanh(x[0]); })}},
      {"hardtanh_m2_3", {one([](const Inputs& x) { return soma::hardtanh(x[0], -2.0, 3.0); })}},
      {"hardsigmoid", {one([](const Inputs& x) { return soma::hardsigmoid(x[0]); })}},
      {"hardswish", {one([](const Inputs& x) { return soma::hardswish(x[0]); })}},
      {"log_sigmoid", {one([](const Inputs& x) { return soma::log_sigmoid(x[0]); })}},
      {"log_sigmoid_t", {one([](const Inputs& x) { return soma::log_sigmoid(x[0].t()); })}},
      {"prelu", {one([](const Inputs& x) { return soma::prelu(x[0], x[1]); })}},
      {"glu", {one([](const Inputs& x) { return soma::glu(x[0]); })}},
      {"glu_dim0", {one([](const Inputs& x) { return soma::glu(x[0], 0); })}},
      {"glu_t", {one([](const Inputs& x) { return soma::glu(x[0].t(), 1); })}},
      {"softmin_dim1", {one([](const Inputs& x) { return soma::softmin(x[0], 1); })}},
      {"softmin_dimm1_t", {one([](const Inputs& x) { return x[0].t().softmin(-1); })}},
      {"mse", {one([](const Inputs& x) { return F::mse_loss(x[0], x[1]); })}},
      {"cross_entropy", {one([](const Inputs& x) { return F::cross_entropy(x[0], x[1]); })}},
      {"cross_entropy_sum", {one([](const Inputs& x) {
         return F::cross_entropy(x[0], x[1], {.reduction = Reduction::Sum});
       })}},
      {"cross_entropy_none", {one([](const Inputs& x) {
         return F::cross_entropy(x[0], x[1], {.reduction = Reduction::None});
       })}},
      {"cross_entropy_smooth", {one([](const Inputs& x) {
         return F::cross_entropy(x[0], x[1], {.label_smoothing = 0.1});
       })}},
      {"nll_loss", {one([](const Inputs& x) { return F::nll_loss(x[0], x[1]); })}},
      {"bce", {one([](const Inputs& x) { return F::binary_cross_entropy(x[0], x[1]); })}},
      {"bce_logits",
       {one([](const Inputs& x) { return F::binary_cross_entropy_with_logits(x[0], x[1]); })}},
      {"linear", {one([](const Inputs& x) { return F::linear(x[0], x[1], x[2]); })}},
  };
  return t;
}

}  // namespace

SOMA_TOOLKIT_SUITE(Activation, "toolkit_activation_reference.txt", table);

namespace {

Tensor vec(std::vector<double> v) {
  return soma::tensor(v);
}

TEST(ToolkitActivationErrors, NameTheOpAndValues) {
  using toolkit::error_message;
  auto message = [](auto f) { return error_message(f); };
  EXPECT_NE(message([] { soma::celu(vec({1.0}), 0.0); }).find("celu: alpha cannot be 0"),
            std::string::npos);
  EXPECT_NE(message([] {
              soma::glu(soma::zeros({2, 3}), 1);
            }).find("dimension 1 is size 3"),
            std::string::npos);
  EXPECT_NE(message([] {
              soma::prelu(soma::zeros({2, 3}), soma::zeros({2}));
            }).find("parameter numbers = 2 and channel size = 3"),
            std::string::npos);
  EXPECT_THROW(soma::prelu(soma::zeros({2, 3}), soma::zeros({3}, soma::kFloat64)), soma::Error);
  EXPECT_THROW(soma::nn::CELU(0.0), soma::Error);
  EXPECT_THROW(soma::nn::Hardtanh(1.0, 0.0), soma::Error);
  EXPECT_THROW(soma::nn::PReLU(0), soma::Error);
}

// relu and leaky_relu are piecewise linear: their second derivative is 0 (torch's double
// backward exists and gives zeros), and create_graph still gives a differentiable gradient.
TEST(ToolkitActivationDoubleBackward, PiecewiseLinearHasZeroSecondDerivative) {
  for (auto f : {+[](const Tensor& x) { return soma::relu(x); },
                 +[](const Tensor& x) { return soma::leaky_relu(x, 0.1); },
                 +[](const Tensor& x) { return soma::hardtanh(x); }}) {
    Tensor x = vec({-0.5, 0.3, 2.0}).requires_grad_();
    Tensor y = (f(x) * x).sum();  // d/dx = f(x) + x f'(x); d2/dx2 = 2 f'(x)
    auto g = soma::autograd::grad({y}, {x}, {}, std::nullopt, true);
    ASSERT_TRUE(g[0].requires_grad());
    auto gg = soma::autograd::grad({g[0].sum()}, {x});
    const auto v = gg[0].to_vector<double>();
    EXPECT_NEAR(v[1], 2.0, 1e-12);
  }
}

// The plain backward (fused kernels) and the create_graph backward (differentiable formulas)
// give the same first derivative.
TEST(ToolkitActivationDoubleBackward, FusedAndDifferentiableGradientsAgree) {
  soma::manual_seed(3);
  const Tensor base = soma::randn({4, 5}, soma::kFloat64);
  for (auto f : {+[](const Tensor& x) { return soma::sigmoid(x); },
                 +[](const Tensor& x) { return soma::tanh(x); },
                 +[](const Tensor& x) { return soma::gelu(x); },
                 +[](const Tensor& x) { return soma::softmax(x, 1); },
                 +[](const Tensor& x) { return soma::log_softmax(x, 0); },
                 +[](const Tensor& x) { return soma::mish(x); },
                 +[](const Tensor& x) { return soma::elu(x); }}) {
    Tensor w = soma::randn({4, 5}, soma::kFloat64);
    Tensor x1 = base.clone().requires_grad_(), x2 = base.clone().requires_grad_();
    auto plain = soma::autograd::grad({(f(x1) * w).sum()}, {x1});
    auto graph = soma::autograd::grad({(f(x2) * w).sum()}, {x2}, {}, std::nullopt, true);
    const auto a = plain[0].to_vector<double>(), b = graph[0].to_vector<double>();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-12);
  }
}

TEST(ToolkitActivationModules, ForwardDescribeAndClone) {
  Tensor x = soma::tensor(std::vector<double>{-2, -0.5, 0.5, 2}, {1, 4});
  auto same = [](const Tensor& a, const Tensor& b) {
    const auto u = a.to_vector<double>(), v = b.to_vector<double>();
    ASSERT_EQ(u.size(), v.size());
    for (size_t i = 0; i < u.size(); ++i) EXPECT_DOUBLE_EQ(u[i], v[i]);
  };
  same(soma::nn::ELU(0.5)(x), soma::elu(x, 0.5));
  same(soma::nn::SELU()(x), soma::selu(x));
  same(soma::nn::CELU(2.0)(x), soma::celu(x, 2.0));
  same(soma::nn::SiLU()(x), soma::silu(x));
  same(soma::nn::Mish()(x), soma::mish(x));
  same(soma::nn::Softplus(2.0, 1.0)(x), soma::softplus(x, 2.0, 1.0));
  same(soma::nn::Hardtanh(-1.0, 0.0)(x), soma::hardtanh(x, -1.0, 0.0));
  same(soma::nn::Hardsigmoid()(x), soma::hardsigmoid(x));
  same(soma::nn::Hardswish()(x), soma::hardswish(x));
  same(soma::nn::LogSigmoid()(x), soma::log_sigmoid(x));
  same(soma::nn::GLU()(x), soma::glu(x, -1));
  same(soma::nn::Softmin(1)(x), soma::softmin(x, 1));
  EXPECT_EQ(soma::nn::ELU(0.5).describe(), "ELU(alpha=0.5)");
  EXPECT_EQ(soma::nn::Softplus().describe(), "Softplus(beta=1, threshold=20)");
  EXPECT_EQ(soma::nn::Hardtanh().describe(), "Hardtanh(min_val=-1, max_val=1)");
  EXPECT_EQ(soma::nn::GLU().describe(), "GLU(dim=-1)");
  EXPECT_EQ(soma::nn::SiLU().describe(), "SiLU");
  EXPECT_EQ(soma::nn::PReLU(3).describe(), "PReLU(num_parameters=3)");
}

TEST(ToolkitActivationModules, PReLULearnsItsWeight) {
  soma::nn::PReLU m(3, 0.25, soma::kFloat64);
  auto params = m.named_parameters();
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params.begin()->first, "weight");
  EXPECT_EQ(m.weight.shape(), (soma::Shape{3}));
  for (double v : m.weight.to_vector<double>()) EXPECT_EQ(v, 0.25);
  Tensor x = soma::tensor(std::vector<double>{-1, 2, -3, 4, -5, 6}, {2, 3});
  Tensor y = m(x);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-0.25, 2, -0.75, 4, -1.25, 6}));
  y.sum().backward();
  // d/dw_c = sum of x over the negative entries of channel c
  EXPECT_EQ(m.weight.grad().to_vector<double>(), (std::vector<double>{-1, -5, -3}));
  auto copy = std::dynamic_pointer_cast<soma::nn::PReLU>(m.clone());
  ASSERT_TRUE(copy);
  EXPECT_NE(copy->weight.impl(), m.weight.impl());
  EXPECT_EQ(copy->weight.to_vector<double>(), m.weight.to_vector<double>());
}

}  // namespace
