// Finite-difference checks (float64, central differences) of every loss in every reduction mode
// and option, and of every layer: one line per case. Inputs that do not require grad (targets,
// class weights, int64 labels) are passed to gradcheck too; it skips them.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
namespace F = soma::nn::functional;
using soma::Shape;
using soma::Tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
using Make = std::function<Tensor()>;
using R = nn::Reduction;
constexpr soma::DType f64 = soma::kFloat64;

// ---- inputs (drawn after manual_seed, in order) --------------------------------------------
// Differentiable: standard normal.
Make G(Shape s) {
  return [s] { return soma::randn(s, f64).requires_grad_(true); };
}
// Differentiable, |x| in [0.2, 1.2] with a random sign: keeps relu-like kinks out of reach.
Make A(Shape s) {
  return [s] {
    Tensor mag = soma::rand(s, f64) + 0.2;
    Tensor sign = soma::where(soma::gt(soma::randn(s, f64), 0.0), soma::ones(s, f64),
                              soma::full(s, -1.0, f64));
    return (mag * sign).detach().requires_grad_(true);
  };
}
// Differentiable probabilities in (0.05, 0.95) (BCE's input).
Make P(Shape s) {
  return [s] { return (soma::rand(s, f64) * 0.9 + 0.05).detach().requires_grad_(true); };
}
// Constant soft targets in [0, 1).
Make T(Shape s) {
  return [s] { return soma::rand(s, f64); };
}
// Constant hard 0/1 targets.
Make Bits(Shape s) {
  return [s] { return soma::gt(soma::randn(s, f64), 0.0).to(f64); };
}
// Constant positive weights in [0.5, 2).
Make W(Shape s) {
  return [s] { return soma::rand(s, f64) * 1.5 + 0.5; };
}
// Constant probability rows over the last dim (cross-entropy's soft targets).
Make Probs(Shape s) {
  return [s] { return soma::softmax(soma::randn(s, f64), -1); };
}
// Constant standard normal (a target that does not require grad).
Make C(Shape s) {
  return [s] { return soma::randn(s, f64); };
}
// int64 class ids; Label(2) is a 0-dim target for a [C] input.
Make Labels(std::vector<int64_t> v) {
  return [v] { return soma::tensor(v, {static_cast<int64_t>(v.size())}); };
}
Make Label(int64_t v) {
  return [v] { return soma::tensor(std::vector<int64_t>{v}, Shape{}); };
}

struct Case {
  std::string name;
  std::vector<Make> inputs;
  Fn fn;
};

using V = const std::vector<Tensor>&;

// Short names for the table below.
Tensor bce(const Tensor& x, const Tensor& t, F::BCEOptions o = {}) {
  return F::binary_cross_entropy(x, t, std::move(o));
}
Tensor bcel(const Tensor& x, const Tensor& t, F::BCEWithLogitsOptions o = {}) {
  return F::binary_cross_entropy_with_logits(x, t, std::move(o));
}
Tensor ce(const Tensor& x, const Tensor& t, F::CrossEntropyOptions o = {}) {
  return F::cross_entropy(x, t, std::move(o));
}
Tensor nll(const Tensor& x, const Tensor& t, F::NLLOptions o = {}) {
  return F::nll_loss(x, t, std::move(o));
}

// clang-format off
std::vector<Case> cases() {
  const Make y4 = Labels({1, 0, 4, 2});        // class ids for [4, 5] logits
  const Make y4_ign = Labels({1, -100, 4, 2});  // one target at the default ignore_index
  return {
      // ---- mse_loss / l1_loss (the target is differentiable too in *_target_grad) ----------
      {"mse_mean", {G({3, 4}), C({3, 4})}, [](V x) { return F::mse_loss(x[0], x[1]); }},
      {"mse_sum", {G({3, 4}), C({3, 4})}, [](V x) { return F::mse_loss(x[0], x[1], {R::Sum}); }},
      {"mse_none", {G({3, 4}), C({3, 4})}, [](V x) { return F::mse_loss(x[0], x[1], {R::None}); }},
      {"mse_target_grad", {G({2, 3}), G({2, 3})}, [](V x) { return F::mse_loss(x[0], x[1]); }},
      {"mse_1d", {G({5}), C({5})}, [](V x) { return F::mse_loss(x[0], x[1]); }},
      {"mse_module", {G({3, 4}), C({3, 4})}, [](V x) { return nn::MSELoss()(x[0], x[1]); }},
      {"l1_mean", {G({3, 4}), C({3, 4})}, [](V x) { return F::l1_loss(x[0], x[1]); }},
      {"l1_sum", {G({3, 4}), C({3, 4})}, [](V x) { return F::l1_loss(x[0], x[1], {R::Sum}); }},
      {"l1_none", {G({3, 4}), C({3, 4})}, [](V x) { return F::l1_loss(x[0], x[1], {R::None}); }},
      {"l1_target_grad", {G({2, 3}), G({2, 3})}, [](V x) { return F::l1_loss(x[0], x[1]); }},
      {"l1_module", {G({3, 4}), C({3, 4})}, [](V x) { return nn::L1Loss({R::Sum})(x[0], x[1]); }},
      // ---- binary_cross_entropy (input in (0.05, 0.95)) -------------------------------------
      {"bce_mean", {P({3, 4}), T({3, 4})}, [](V x) { return bce(x[0], x[1]); }},
      {"bce_sum", {P({3, 4}), T({3, 4})}, [](V x) { return bce(x[0], x[1], {.reduction = R::Sum}); }},
      {"bce_none", {P({3, 4}), T({3, 4})}, [](V x) { return bce(x[0], x[1], {.reduction = R::None}); }},
      {"bce_hard_targets", {P({3, 4}), Bits({3, 4})}, [](V x) { return bce(x[0], x[1]); }},
      {"bce_weight", {P({3, 4}), T({3, 4}), W({3, 4})}, [](V x) { return bce(x[0], x[1], {.weight = x[2]}); }},
      {"bce_weight_broadcast_sum", {P({3, 4}), T({3, 4}), W({4})}, [](V x) { return bce(x[0], x[1], {x[2], R::Sum}); }},
      {"bce_weight_none", {P({3, 4}), T({3, 4}), W({3, 4})}, [](V x) { return bce(x[0], x[1], {x[2], R::None}); }},
      {"bce_module", {P({6}), Bits({6})}, [](V x) { return nn::BCELoss()(x[0], x[1]); }},
      // ---- binary_cross_entropy_with_logits --------------------------------------------------
      {"bcel_mean", {G({3, 4}), T({3, 4})}, [](V x) { return bcel(x[0], x[1]); }},
      {"bcel_sum", {G({3, 4}), T({3, 4})}, [](V x) { return bcel(x[0], x[1], {.reduction = R::Sum}); }},
      {"bcel_none", {G({3, 4}), T({3, 4})}, [](V x) { return bcel(x[0], x[1], {.reduction = R::None}); }},
      {"bcel_pos_weight", {G({3, 4}), Bits({3, 4}), W({4})}, [](V x) { return bcel(x[0], x[1], {.pos_weight = x[2]}); }},
      {"bcel_pos_weight_sum", {G({3, 4}), T({3, 4}), W({4})}, [](V x) { return bcel(x[0], x[1], {.pos_weight = x[2], .reduction = R::Sum}); }},
      {"bcel_pos_weight_none", {G({3, 4}), T({3, 4}), W({4})}, [](V x) { return bcel(x[0], x[1], {.pos_weight = x[2], .reduction = R::None}); }},
      {"bcel_weight", {G({3, 4}), T({3, 4}), W({3, 4})}, [](V x) { return bcel(x[0], x[1], {.weight = x[2]}); }},
      {"bcel_weight_and_pos_weight", {G({3, 4}), T({3, 4}), W({3, 1}), W({4})}, [](V x) { return bcel(x[0], x[1], {x[2], x[3], R::Sum}); }},
      {"bcel_weight_and_pos_weight_none", {G({3, 4}), T({3, 4}), W({4}), W({4})}, [](V x) { return bcel(x[0], x[1], {x[2], x[3], R::None}); }},
      {"bcel_target_grad", {G({3, 4}), P({3, 4}), W({4})}, [](V x) { return bcel(x[0], x[1], {.pos_weight = x[2]}); }},
      {"bcel_large_logits", {G({2, 3}), T({2, 3})}, [](V x) { return bcel(x[0] * 40.0, x[1]); }},
      {"bcel_module", {G({3, 4}), T({3, 4}), W({4})}, [](V x) { return nn::BCEWithLogitsLoss({.pos_weight = x[2]})(x[0], x[1]); }},
      // ---- cross_entropy with class ids: the fused path (no weight, no smoothing) -----------
      {"ce_mean", {G({4, 5}), y4}, [](V x) { return ce(x[0], x[1]); }},
      {"ce_sum", {G({4, 5}), y4}, [](V x) { return ce(x[0], x[1], {.reduction = R::Sum}); }},
      {"ce_none", {G({4, 5}), y4}, [](V x) { return ce(x[0], x[1], {.reduction = R::None}); }},
      {"ce_single_sample", {G({5}), Label(3)}, [](V x) { return ce(x[0], x[1]); }},
      {"ce_single_sample_none", {G({5}), Label(0)}, [](V x) { return ce(x[0], x[1], {.reduction = R::None}); }},
      {"ce_transposed_input", {G({5, 4}), y4}, [](V x) { return ce(x[0].t(), x[1]); }},
      {"ce_large_logits", {G({4, 5}), y4}, [](V x) { return ce(x[0] * 30.0, x[1]); }},
      {"ce_ignore_default", {G({4, 5}), y4_ign}, [](V x) { return ce(x[0], x[1]); }},
      {"ce_ignore_index", {G({4, 5}), Labels({1, 2, 4, 2})}, [](V x) { return ce(x[0], x[1], {.ignore_index = 2}); }},
      {"ce_ignore_index_sum", {G({4, 5}), Labels({1, 2, 4, 2})}, [](V x) { return ce(x[0], x[1], {.ignore_index = 2, .reduction = R::Sum}); }},
      {"ce_ignore_index_none", {G({4, 5}), Labels({1, 2, 4, 2})}, [](V x) { return ce(x[0], x[1], {.ignore_index = 2, .reduction = R::None}); }},
      // ---- cross_entropy with class weights (general path) ----------------------------------
      {"ce_weight", {G({4, 5}), y4, W({5})}, [](V x) { return ce(x[0], x[1], {.weight = x[2]}); }},
      {"ce_weight_sum", {G({4, 5}), y4, W({5})}, [](V x) { return ce(x[0], x[1], {.weight = x[2], .reduction = R::Sum}); }},
      {"ce_weight_none", {G({4, 5}), y4, W({5})}, [](V x) { return ce(x[0], x[1], {.weight = x[2], .reduction = R::None}); }},
      {"ce_weight_ignore", {G({4, 5}), Labels({1, 3, 4, 3}), W({5})}, [](V x) { return ce(x[0], x[1], {.weight = x[2], .ignore_index = 3}); }},
      // ---- cross_entropy with label smoothing -----------------------------------------------
      {"ce_smoothing", {G({4, 5}), y4}, [](V x) { return ce(x[0], x[1], {.label_smoothing = 0.2}); }},
      {"ce_smoothing_sum", {G({4, 5}), y4}, [](V x) { return ce(x[0], x[1], {.label_smoothing = 0.2, .reduction = R::Sum}); }},
      {"ce_smoothing_none", {G({4, 5}), y4}, [](V x) { return ce(x[0], x[1], {.label_smoothing = 0.2, .reduction = R::None}); }},
      {"ce_smoothing_weight", {G({4, 5}), y4, W({5})}, [](V x) { return ce(x[0], x[1], {.weight = x[2], .label_smoothing = 0.1}); }},
      {"ce_smoothing_weight_ignore", {G({4, 5}), y4_ign, W({5})}, [](V x) { return ce(x[0], x[1], {.weight = x[2], .label_smoothing = 0.3}); }},
      {"ce_smoothing_weight_ignore_sum", {G({4, 5}), y4_ign, W({5})}, [](V x) { return ce(x[0], x[1], {x[2], -100, 0.3, R::Sum}); }},
      {"ce_smoothing_ignore_none", {G({4, 5}), y4_ign}, [](V x) { return ce(x[0], x[1], {.label_smoothing = 0.3, .reduction = R::None}); }},
      {"ce_smoothing_single_sample", {G({5}), Label(4)}, [](V x) { return ce(x[0], x[1], {.label_smoothing = 0.1}); }},
      // ---- cross_entropy with probability targets -------------------------------------------
      {"ce_probs", {G({4, 5}), Probs({4, 5})}, [](V x) { return ce(x[0], x[1]); }},
      {"ce_probs_sum", {G({4, 5}), Probs({4, 5})}, [](V x) { return ce(x[0], x[1], {.reduction = R::Sum}); }},
      {"ce_probs_none", {G({4, 5}), Probs({4, 5})}, [](V x) { return ce(x[0], x[1], {.reduction = R::None}); }},
      {"ce_probs_weight", {G({4, 5}), Probs({4, 5}), W({5})}, [](V x) { return ce(x[0], x[1], {.weight = x[2]}); }},
      {"ce_probs_smoothing", {G({4, 5}), Probs({4, 5})}, [](V x) { return ce(x[0], x[1], {.label_smoothing = 0.25}); }},
      {"ce_probs_single_sample", {G({5}), Probs({5})}, [](V x) { return ce(x[0], x[1]); }},
      {"ce_module", {G({4, 5}), y4, W({5})}, [](V x) { return nn::CrossEntropyLoss({.weight = x[2], .label_smoothing = 0.1})(x[0], x[1]); }},
      // ---- nll_loss (linear in its input; also after log_softmax) ---------------------------
      {"nll_mean", {G({4, 5}), y4}, [](V x) { return nll(x[0], x[1]); }},
      {"nll_sum", {G({4, 5}), y4}, [](V x) { return nll(x[0], x[1], {.reduction = R::Sum}); }},
      {"nll_none", {G({4, 5}), y4}, [](V x) { return nll(x[0], x[1], {.reduction = R::None}); }},
      {"nll_log_softmax", {G({4, 5}), y4}, [](V x) { return nll(soma::log_softmax(x[0], 1), x[1]); }},
      {"nll_weight", {G({4, 5}), y4, W({5})}, [](V x) { return nll(x[0], x[1], {.weight = x[2]}); }},
      {"nll_weight_sum", {G({4, 5}), y4, W({5})}, [](V x) { return nll(x[0], x[1], {.weight = x[2], .reduction = R::Sum}); }},
      {"nll_weight_none", {G({4, 5}), y4, W({5})}, [](V x) { return nll(x[0], x[1], {.weight = x[2], .reduction = R::None}); }},
      {"nll_ignore_index", {G({4, 5}), Labels({1, 0, 4, 0})}, [](V x) { return nll(x[0], x[1], {.ignore_index = 0}); }},
      {"nll_weight_ignore", {G({4, 5}), y4_ign, W({5})}, [](V x) { return nll(x[0], x[1], {.weight = x[2]}); }},
      {"nll_single_sample", {G({5}), Label(2)}, [](V x) { return nll(x[0], x[1]); }},
      {"nll_module", {G({4, 5}), y4}, [](V x) { return nn::NLLLoss()(x[0], x[1]); }},
      // ---- linear ---------------------------------------------------------------------------
      {"linear", {G({5, 4}), G({3, 4}), G({3})}, [](V x) { return F::linear(x[0], x[1], x[2]); }},
      {"linear_no_bias", {G({5, 4}), G({3, 4})}, [](V x) { return F::linear(x[0], x[1]); }},
      {"linear_3d_input", {G({2, 3, 4}), G({3, 4}), G({3})}, [](V x) { return F::linear(x[0], x[1], x[2]); }},
      {"linear_3d_no_bias", {G({2, 3, 4}), G({5, 4})}, [](V x) { return F::linear(x[0], x[1]); }},
      {"linear_1d_input", {G({4}), G({3, 4}), G({3})}, [](V x) { return F::linear(x[0], x[1], x[2]); }},
      {"linear_single_row", {G({1, 4}), G({1, 4}), G({1})}, [](V x) { return F::linear(x[0], x[1], x[2]); }},
      {"linear_transposed_input", {G({4, 5}), G({3, 4}), G({3})}, [](V x) { return F::linear(x[0].t(), x[1], x[2]); }},
      {"linear_transposed_weight", {G({5, 4}), G({4, 3}), G({3})}, [](V x) { return F::linear(x[0], x[1].t(), x[2]); }},
      {"linear_constant_weight", {G({5, 4}), C({3, 4}), G({3})}, [](V x) { return F::linear(x[0], x[1], x[2]); }},
      {"linear_relu_ce", {G({4, 3}), G({6, 3}), G({6}), y4}, [](V x) { return ce(soma::relu(F::linear(x[0], x[1], x[2])), x[3]); }},
      // ---- activation and shape layers (module forms) ---------------------------------------
      {"relu_module", {A({3, 4})}, [](V x) { return nn::ReLU()(x[0]); }},
      {"sigmoid_module", {G({3, 4})}, [](V x) { return nn::Sigmoid()(x[0]); }},
      {"tanh_module", {G({3, 4})}, [](V x) { return nn::Tanh()(x[0]); }},
      {"leaky_relu_module", {A({3, 4})}, [](V x) { return nn::LeakyReLU(0.2)(x[0]); }},
      {"gelu_module", {G({3, 4})}, [](V x) { return nn::GELU()(x[0]); }},
      {"softmax_module", {G({3, 4})}, [](V x) { return nn::Softmax(1)(x[0]); }},
      {"log_softmax_module", {G({3, 4})}, [](V x) { return nn::LogSoftmax(0)(x[0]); }},
      {"flatten_module", {G({2, 3, 2})}, [](V x) { return nn::Flatten()(x[0]); }},
      {"identity_module", {G({3, 4})}, [](V x) { return nn::Identity()(x[0]) * 1.0; }},
      // ---- dropout: identity in eval mode; linear in x for a fixed mask (re-seeded in fn) ---
      {"dropout_eval", {G({3, 4})}, [](V x) { return F::dropout(x[0], 0.5, false); }},
      {"dropout_p0_train", {G({3, 4})}, [](V x) { return F::dropout(x[0], 0.0, true); }},
      {"dropout_train_fixed_mask", {G({4, 5})}, [](V x) { soma::manual_seed(7); return F::dropout(x[0], 0.4, true); }},
      {"dropout_train_3d_times_x", {G({2, 3, 4})}, [](V x) { soma::manual_seed(8); return F::dropout(x[0], 0.25, true) * x[0]; }},
      {"dropout_module_eval", {G({3, 4})}, [](V x) { nn::Dropout d(0.5); d.eval(); return d(x[0]); }},
      {"dropout_module_train", {G({3, 4})}, [](V x) { nn::Dropout d(0.3); soma::manual_seed(9); return d(x[0]); }},
  };
}
// clang-format on

class GradcheckNn : public ::testing::TestWithParam<Case> {};

TEST_P(GradcheckNn, MatchesFiniteDifferences) {
  const Case& c = GetParam();
  soma::manual_seed(1234);
  std::vector<Tensor> inputs;
  for (const Make& make : c.inputs) inputs.push_back(make());
  EXPECT_NO_THROW({
    try {
      soma::autograd::gradcheck(c.fn, inputs, {.eps = 1e-6, .atol = 1e-7, .rtol = 1e-5});
    } catch (const soma::Error& e) {
      ADD_FAILURE() << c.name << ": " << e.what();
      throw;
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Nn, GradcheckNn, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

// ---- modules through their parameters -------------------------------------------------------
// gradcheck perturbs its inputs in place, so passing a module's own parameter handles as inputs
// checks d out / d weight and d out / d bias of the module's forward.
void check_module(nn::Module& m, const Tensor& x) {
  std::vector<Tensor> inputs = {x};
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  EXPECT_TRUE(soma::autograd::gradcheck([&m](const std::vector<Tensor>& in) { return m(in[0]); },
                                        inputs, {.eps = 1e-6, .atol = 1e-7, .rtol = 1e-5}));
}

TEST(GradcheckNnModule, Linear) {
  soma::manual_seed(1);
  nn::Linear lin(4, 3, {.dtype = f64});
  ASSERT_EQ(lin.weight.dtype(), f64);
  check_module(lin, soma::randn({5, 4}, f64).requires_grad_(true));
}

TEST(GradcheckNnModule, LinearNoBias) {
  soma::manual_seed(2);
  nn::Linear lin(4, 3, {.bias = false, .dtype = f64});
  ASSERT_EQ(lin.parameters().size(), 1u);
  check_module(lin, soma::randn({5, 4}, f64).requires_grad_(true));
}

TEST(GradcheckNnModule, Linear3dInput) {
  soma::manual_seed(3);
  nn::Linear lin(4, 2, {.dtype = f64});
  check_module(lin, soma::randn({2, 3, 4}, f64).requires_grad_(true));
}

TEST(GradcheckNnModule, LinearConvertedWithTo) {
  soma::manual_seed(4);
  nn::Linear lin(3, 2);
  lin.to(f64);
  check_module(lin, soma::randn({4, 3}, f64).requires_grad_(true));
}

TEST(GradcheckNnModule, SequentialMlp) {
  soma::manual_seed(5);
  nn::Sequential mlp(nn::Linear(3, 4, {.dtype = f64}), nn::Tanh(), nn::Linear(4, 4, {.dtype = f64}),
                     nn::Sigmoid(), nn::Linear(4, 2, {.dtype = f64}));
  check_module(mlp, soma::randn({5, 3}, f64).requires_grad_(true));
}

TEST(GradcheckNnModule, SequentialMlpWithLoss) {
  soma::manual_seed(6);
  nn::Sequential mlp(nn::Linear(3, 5, {.dtype = f64}), nn::GELU(),
                     nn::Linear(5, 4, {.dtype = f64}));
  const Tensor y = soma::tensor(std::vector<int64_t>{3, 0, 1, 1, 2}, {5});
  std::vector<Tensor> inputs = {soma::randn({5, 3}, f64).requires_grad_(true)};
  for (const Tensor& p : mlp.parameters()) inputs.push_back(p);
  EXPECT_TRUE(soma::autograd::gradcheck(
      [&](const std::vector<Tensor>& in) { return F::cross_entropy(mlp(in[0]), y); }, inputs,
      {.eps = 1e-6, .atol = 1e-7, .rtol = 1e-5}));
}

}  // namespace
