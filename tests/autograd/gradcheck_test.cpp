// Finite-difference checks (float64, central differences) of every differentiable op: one line
// per case, including broadcasting, size-1 dims and non-contiguous (transposed) inputs.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace {

using soma::Shape;
using soma::Tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

enum class Range { Any, Positive, AwayFromZero };

struct Case {
  std::string name;
  std::vector<Shape> shapes;  // one float64 input per shape, all requiring grad
  Fn fn;
  Range range = Range::Any;
};

Tensor input(const Shape& shape, Range range) {
  Tensor x = soma::randn(shape, soma::kFloat64);
  if (range == Range::Positive) x = soma::rand(shape, soma::kFloat64) * 1.5 + 0.25;
  if (range == Range::AwayFromZero) {
    // |x| in [0.2, 1.2], random sign: keeps kinks (relu, abs, clamp) out of the eps window
    Tensor mag = soma::rand(shape, soma::kFloat64) + 0.2;
    Tensor sign =
        soma::where(soma::gt(soma::randn(shape, soma::kFloat64), 0.0),
                    soma::ones(shape, soma::kFloat64), soma::full(shape, -1.0, soma::kFloat64));
    x = mag * sign;
  }
  return x.detach().requires_grad_(true);
}

const Tensor kIdx = soma::tensor(std::vector<int64_t>{2, 0, 2, 1}, {4});

std::vector<Case> cases() {
  using V = const std::vector<Tensor>&;
  // clang-format off
  return {
      // arithmetic, same shape and broadcast
      {"add", {{3, 4}, {3, 4}}, [](V x) { return x[0] + x[1]; }},
      {"add_broadcast_row", {{3, 4}, {4}}, [](V x) { return x[0] + x[1]; }},
      {"add_broadcast_both", {{3, 1}, {1, 4}}, [](V x) { return x[0] + x[1]; }},
      {"add_alpha", {{2, 3}, {2, 3}}, [](V x) { return soma::add(x[0], x[1], 0.5); }},
      {"add_scalar", {{2, 3}}, [](V x) { return x[0] + 2.0; }},
      {"sub", {{3, 4}, {3, 4}}, [](V x) { return x[0] - x[1]; }},
      {"sub_broadcast", {{2, 3, 4}, {3, 1}}, [](V x) { return x[0] - x[1]; }},
      {"sub_alpha", {{4}, {4}}, [](V x) { return soma::sub(x[0], x[1], 2.0); }},
      {"rsub_scalar", {{2, 3}}, [](V x) { return 1.0 - x[0]; }},
      {"mul", {{3, 4}, {3, 4}}, [](V x) { return x[0] * x[1]; }},
      {"mul_broadcast", {{3, 1}, {1, 4}}, [](V x) { return x[0] * x[1]; }},
      {"mul_scalar_tensor", {{3, 4}, {}}, [](V x) { return x[0] * x[1]; }},
      {"mul_transposed", {{4, 3}, {3, 4}}, [](V x) { return x[0].t() * x[1]; }},
      {"mul_scalar", {{2, 3}}, [](V x) { return 3.0 * x[0]; }},
      {"div", {{3, 4}, {3, 4}}, [](V x) { return x[0] / x[1]; }, Range::Positive},
      {"div_broadcast", {{2, 3, 4}, {3, 1}}, [](V x) { return x[0] / x[1]; }, Range::Positive},
      {"div_scalar", {{2, 3}}, [](V x) { return x[0] / 4.0; }},
      {"rdiv_scalar", {{2, 3}}, [](V x) { return 2.0 / x[0]; }, Range::Positive},
      {"neg", {{2, 3}}, [](V x) { return -x[0]; }},
      // math
      {"exp", {{2, 3}}, [](V x) { return soma::exp(x[0]); }},
      {"exp_transposed", {{3, 2}}, [](V x) { return soma::exp(x[0].t()); }},
      {"log", {{2, 3}}, [](V x) { return soma::log(x[0]); }, Range::Positive},
      {"sqrt", {{2, 3}}, [](V x) { return soma::sqrt(x[0]); }, Range::Positive},
      {"abs", {{2, 3}}, [](V x) { return soma::abs(x[0]); }, Range::AwayFromZero},
      {"pow_scalar", {{2, 3}}, [](V x) { return soma::pow(x[0], 2.5); }, Range::Positive},
      {"pow_square", {{2, 3}}, [](V x) { return soma::pow(x[0], 2.0); }},
      {"pow_tensor", {{2, 3}, {2, 3}}, [](V x) { return soma::pow(x[0], x[1]); }, Range::Positive},
      {"pow_tensor_broadcast", {{2, 3}, {3}}, [](V x) { return soma::pow(x[0], x[1]); }, Range::Positive},
      {"clamp", {{3, 4}}, [](V x) { return soma::clamp(x[0], -0.5, 0.7); }, Range::AwayFromZero},
      {"maximum", {{3, 4}, {3, 4}}, [](V x) { return soma::maximum(x[0], x[1]); }},
      {"maximum_broadcast", {{3, 4}, {4}}, [](V x) { return soma::maximum(x[0], x[1]); }},
      {"minimum", {{3, 4}, {3, 1}}, [](V x) { return soma::minimum(x[0], x[1]); }},
      {"where", {{3, 4}, {3, 4}},
       [](V x) { return soma::where(soma::gt(x[0], 0.0), x[0] * 2.0, x[1]); }, Range::AwayFromZero},
      {"where_broadcast", {{3, 4}, {4}},
       [](V x) { return soma::where(soma::gt(x[0], 0.0), x[0], x[1]); }, Range::AwayFromZero},
      // activations
      {"relu", {{3, 4}}, [](V x) { return soma::relu(x[0]); }, Range::AwayFromZero},
      {"sigmoid", {{3, 4}}, [](V x) { return soma::sigmoid(x[0]); }},
      {"tanh", {{3, 4}}, [](V x) { return soma::tanh(x[0]); }},
      {"tanh_transposed", {{4, 3}}, [](V x) { return soma::tanh(x[0].t()); }},
      {"leaky_relu", {{3, 4}}, [](V x) { return soma::leaky_relu(x[0], 0.1); }, Range::AwayFromZero},
      {"gelu", {{3, 4}}, [](V x) { return soma::gelu(x[0]); }},
      {"softmax_dim1", {{3, 5}}, [](V x) { return soma::softmax(x[0], 1); }},
      {"softmax_dim0", {{3, 5}}, [](V x) { return soma::softmax(x[0], 0); }},
      {"softmax_3d_mid", {{2, 3, 4}}, [](V x) { return soma::softmax(x[0], 1); }},
      {"softmax_size1", {{3, 1}}, [](V x) { return soma::softmax(x[0], 1) * x[0]; }},
      {"log_softmax_dim1", {{3, 5}}, [](V x) { return soma::log_softmax(x[0], 1); }},
      {"log_softmax_transposed", {{5, 3}}, [](V x) { return soma::log_softmax(x[0].t(), 1); }},
      {"log_softmax_large_logits", {{2, 4}},
       [](V x) { return soma::log_softmax(x[0] * 1000.0, 1); }},
      // matmul
      {"matmul", {{5, 3}, {3, 4}}, [](V x) { return soma::matmul(x[0], x[1]); }},
      {"matmul_a_transposed", {{3, 5}, {3, 4}}, [](V x) { return soma::matmul(x[0].t(), x[1]); }},
      {"matmul_b_transposed", {{5, 3}, {4, 3}}, [](V x) { return soma::matmul(x[0], x[1].t()); }},
      {"matmul_both_transposed", {{3, 5}, {4, 3}},
       [](V x) { return soma::matmul(x[0].t(), x[1].t()); }},
      {"matmul_size1", {{1, 3}, {3, 1}}, [](V x) { return soma::matmul(x[0], x[1]); }},
      {"matmul_batched", {{2, 3, 4}, {2, 4, 5}}, [](V x) { return soma::matmul(x[0], x[1]); }},
      {"matmul_batched_broadcast", {{2, 3, 4}, {4, 5}}, [](V x) { return soma::matmul(x[0], x[1]); }},
      {"matmul_batched_transposed", {{2, 4, 3}, {2, 4, 5}},
       [](V x) { return soma::matmul(soma::transpose(x[0], 1, 2), x[1]); }},
      {"matmul_vector_matrix", {{3}, {3, 4}}, [](V x) { return soma::matmul(x[0], x[1]); }},
      {"matmul_matrix_vector", {{4, 3}, {3}}, [](V x) { return soma::matmul(x[0], x[1]); }},
      // shape
      {"transpose", {{2, 3, 4}}, [](V x) { return soma::transpose(x[0], 0, 2) * 1.0; }},
      {"t", {{2, 3}}, [](V x) { return x[0].t(); }},
      {"reshape", {{2, 6}}, [](V x) { return soma::reshape(x[0], {3, -1}); }},
      {"reshape_transposed", {{3, 4}}, [](V x) { return x[0].t().reshape({12}); }},
      {"view", {{2, 6}}, [](V x) { return x[0].view({4, 3}); }},
      {"flatten", {{2, 3, 2}}, [](V x) { return soma::flatten(x[0], 1); }},
      {"squeeze", {{3, 1, 2}}, [](V x) { return soma::squeeze(x[0], 1); }},
      {"squeeze_all", {{1, 3, 1}}, [](V x) { return soma::squeeze(x[0]); }},
      {"unsqueeze", {{3, 2}}, [](V x) { return soma::unsqueeze(x[0], 1); }},
      {"cat_dim0", {{2, 3}, {1, 3}}, [](V x) { return soma::cat({x[0], x[1]}, 0); }},
      {"cat_dim1_transposed", {{3, 2}, {2, 4}}, [](V x) { return soma::cat({x[0].t(), x[1]}, 1); }},
      {"narrow", {{4, 5}}, [](V x) { return soma::narrow(x[0], 1, 1, 3); }},
      {"slice_step", {{7, 3}}, [](V x) { return soma::slice(x[0], 0, 1, 7, 2); }},
      {"index_select_dim0", {{3, 4}}, [](V x) { return soma::index_select(x[0], 0, kIdx); }},
      {"index_select_dim1", {{2, 3}}, [](V x) { return x[0].index_select(1, kIdx); }},
      {"contiguous", {{3, 4}}, [](V x) { return x[0].t().contiguous(); }},
      {"clone", {{3, 4}}, [](V x) { return x[0].clone(); }},
      // reductions
      {"sum", {{3, 4}}, [](V x) { return soma::sum(x[0]); }},
      {"sum_dim", {{3, 4}}, [](V x) { return soma::sum(x[0], 1); }},
      {"sum_dim_keepdim", {{2, 3, 4}}, [](V x) { return soma::sum(x[0], 1, true); }},
      {"sum_negative_dim", {{2, 3}}, [](V x) { return x[0].sum(-2); }},
      {"sum_transposed", {{3, 4}}, [](V x) { return x[0].t().sum(1); }},
      {"mean", {{3, 4}}, [](V x) { return soma::mean(x[0]); }},
      {"mean_dim", {{3, 4}}, [](V x) { return soma::mean(x[0], 0, true); }},
      {"max", {{3, 4}}, [](V x) { return soma::max(x[0]); }},
      {"max_dim", {{3, 4}}, [](V x) { return std::get<0>(soma::max(x[0], 1)); }},
      {"max_dim_keepdim", {{2, 3, 4}}, [](V x) { return std::get<0>(soma::max(x[0], 1, true)); }},
      {"min", {{3, 4}}, [](V x) { return soma::min(x[0]); }},
      {"min_dim", {{3, 4}}, [](V x) { return std::get<0>(soma::min(x[0], 0)); }},
      // a small composite: one MLP layer with bias and cross-entropy style loss
      {"mlp_layer", {{4, 3}, {3, 5}, {5}},
       [](V x) { return -soma::log_softmax(soma::relu(soma::matmul(x[0], x[1]) + x[2]), 1).mean(); }},
  };
  // clang-format on
}

class Gradcheck : public ::testing::TestWithParam<Case> {};

TEST_P(Gradcheck, MatchesFiniteDifferences) {
  const Case& c = GetParam();
  soma::manual_seed(1234);
  std::vector<Tensor> inputs;
  for (const Shape& s : c.shapes) inputs.push_back(input(s, c.range));
  EXPECT_NO_THROW({
    try {
      soma::autograd::gradcheck(c.fn, inputs, {.eps = 1e-6, .atol = 1e-7, .rtol = 1e-5});
    } catch (const soma::Error& e) {
      ADD_FAILURE() << c.name << ": " << e.what();
      throw;
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Ops, Gradcheck, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

// gradcheck itself must catch a wrong gradient: abs(x) with the gradient of x is detected.
TEST(GradcheckSelf, ReportsWrongGradient) {
  soma::manual_seed(0);
  Tensor x = soma::randn({3}, soma::kFloat64).requires_grad_(true);
  // x * sign(x) computed with the sign detached has the gradient sign(x); calling it x's
  // gradient for x^2/|x| is wrong: f(x) = x * |x| but we give d/dx = |x| only.
  auto wrong = [](const std::vector<Tensor>& in) { return in[0] * soma::abs(in[0]).detach(); };
  try {
    soma::autograd::gradcheck(wrong, {x});
    FAIL() << "gradcheck accepted a wrong gradient";
  } catch (const soma::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("input 0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("analytic"), std::string::npos) << msg;
    EXPECT_NE(msg.find("numeric"), std::string::npos) << msg;
  }
  EXPECT_FALSE(soma::autograd::gradcheck(wrong, {x}, {.raise = false}));
}

TEST(GradcheckSelf, RejectsFloat32Inputs) {
  Tensor x = soma::randn({3}).requires_grad_(true);
  EXPECT_THROW(
      soma::autograd::gradcheck([](const std::vector<Tensor>& in) { return in[0] * 2.0; }, {x}),
      soma::Error);
}

}  // namespace
