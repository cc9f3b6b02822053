// Every loss, functional and module form, with a non-contiguous (transposed or sliced) input
// and target: the loss and the input's gradient equal those of contiguous copies.
//
// Regression: the class-target range check of cross_entropy / nll_loss read the labels through
// a pointer into a temporary contiguous() copy, already freed when it was read. The caching
// allocator kept the freed block intact and hid it; these tests run with the cache off
// (detail::set_cache_limit(0)), so the old code read malloc's free-list words as labels and
// threw "target ... is out of range" (and ASan, which SOMA_SANITIZE builds always run without
// the cache, reports a heap-use-after-free).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
namespace nn = soma::nn;
namespace F = soma::nn::functional;
using nn::Reduction;

// The cache off for one test, so a read of a freed tensor buffer sees freed memory.
struct CacheOff {
  size_t old = soma::detail::set_cache_limit(0);
  ~CacheOff() { soma::detail::set_cache_limit(old); }
};

using LossFn = std::function<Tensor(const Tensor& input, const Tensor& target, Reduction r)>;

struct LossCase {
  std::string name;
  LossFn fn;
  Tensor input_base;  // leaf that requires grad; input = input_view(input_base)
  std::function<Tensor(const Tensor&)> input_view;
  Tensor target;  // non-contiguous
};

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], w[i], 1e-12 * (1.0 + std::abs(w[i]))) << what << " at flat index " << i;
}

void check(const LossCase& c) {
  const Tensor x = c.input_view(c.input_base);
  ASSERT_FALSE(x.is_contiguous()) << c.name;
  ASSERT_FALSE(c.target.is_contiguous()) << c.name;
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    SCOPED_TRACE(c.name + " reduction " + std::to_string(static_cast<int>(r)));
    Tensor(c.input_base).zero_grad();
    const Tensor xc = x.detach().contiguous().requires_grad_(true);
    const Tensor tc = c.target.contiguous();
    ASSERT_TRUE(tc.is_contiguous());
    Tensor got = c.fn(c.input_view(c.input_base), c.target, r);
    Tensor want = c.fn(xc, tc, r);
    expect_close(got, want, c.name + " loss");
    // Upstream gradient 1, 2, 3, ... so every sample's weight differs.
    const Tensor gout = soma::arange(1, 1 + want.numel()).to(want.dtype()).reshape(want.shape());
    got.backward(gout);
    want.backward(gout);
    expect_close(c.input_view(c.input_base.grad()), xc.grad(), c.name + " input grad");
  }
}

// A [rows, cols] float64 view that is the transpose of a [cols, rows] leaf.
Tensor transposed_leaf(Tensor values) {
  return values.t().contiguous().requires_grad_(true);  // stored [cols, rows]
}
Tensor tr(const Tensor& base) {
  return base.t();
}

// Labels in [0, classes) at even positions, an invalid label (-7) at odd ones: a strided read
// that got the stride wrong would see -7.
Tensor strided_labels(int64_t n, int64_t classes, int64_t ignore_at = -1) {
  std::vector<int64_t> v(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i) {
    v[2 * i] = i == ignore_at ? -100 : (i * 3 + 1) % classes;
    v[2 * i + 1] = -7;
  }
  return soma::slice(soma::tensor(v, {2 * n}), 0, 0, 2 * n, 2);
}

std::vector<LossCase> cases() {
  soma::manual_seed(3);
  const auto D = soma::kFloat64;
  const int64_t N = 6, C = 5;
  std::vector<LossCase> c;
  // Same-shape losses: input and target both transposed views of [C, N] storage.
  const Tensor t_real = soma::randn({C, N}, D).t();
  const Tensor t_prob = soma::rand({C, N}, D).t();
  auto prob_input = [&] { return transposed_leaf(soma::rand({N, C}, D) * 0.8 + 0.1); };
  auto real_input = [&] { return transposed_leaf(soma::randn({N, C}, D)); };
  const Tensor bce_w = soma::rand({C}, D) + 0.5;
  const Tensor pos_w = soma::rand({C}, D) + 0.5;

  c.push_back({"mse_loss", [](auto& x, auto& t, Reduction r) { return F::mse_loss(x, t, {r}); },
               real_input(), tr, t_real});
  c.push_back({"MSELoss", [](auto& x, auto& t, Reduction r) { return nn::MSELoss({r})(x, t); },
               real_input(), tr, t_real});
  c.push_back({"l1_loss", [](auto& x, auto& t, Reduction r) { return F::l1_loss(x, t, {r}); },
               real_input(), tr, t_real});
  c.push_back({"L1Loss", [](auto& x, auto& t, Reduction r) { return nn::L1Loss({r})(x, t); },
               real_input(), tr, t_real});
  c.push_back({"binary_cross_entropy",
               [=](auto& x, auto& t, Reduction r) {
                 return F::binary_cross_entropy(x, t, {.weight = bce_w, .reduction = r});
               },
               prob_input(), tr, t_prob});
  c.push_back({"BCELoss",
               [](auto& x, auto& t, Reduction r) { return nn::BCELoss({.reduction = r})(x, t); },
               prob_input(), tr, t_prob});
  c.push_back({"binary_cross_entropy_with_logits",
               [=](auto& x, auto& t, Reduction r) {
                 return F::binary_cross_entropy_with_logits(
                     x, t, {.weight = bce_w, .pos_weight = pos_w, .reduction = r});
               },
               real_input(), tr, t_prob});
  c.push_back({"BCEWithLogitsLoss",
               [=](auto& x, auto& t, Reduction r) {
                 return nn::BCEWithLogitsLoss({.pos_weight = pos_w, .reduction = r})(x, t);
               },
               real_input(), tr, t_prob});
  // Probability targets for cross_entropy.
  const Tensor t_soft = soma::softmax(soma::randn({C, N}, D), 0).t();
  c.push_back({"cross_entropy_probabilities",
               [](auto& x, auto& t, Reduction r) {
                 return F::cross_entropy(x, t, {.label_smoothing = 0.2, .reduction = r});
               },
               real_input(), tr, t_soft});
  // Class targets: every path (fused; class weights; label smoothing; ignore_index), both forms.
  const Tensor y = strided_labels(N, C);
  const Tensor y_ignore = strided_labels(N, C, 2);
  const Tensor cw = soma::rand({C}, D) + 0.5;
  c.push_back(
      {"cross_entropy",
       [](auto& x, auto& t, Reduction r) { return F::cross_entropy(x, t, {.reduction = r}); },
       real_input(), tr, y});
  c.push_back({"cross_entropy_weight",
               [=](auto& x, auto& t, Reduction r) {
                 return F::cross_entropy(x, t, {.weight = cw, .reduction = r});
               },
               real_input(), tr, y});
  c.push_back({"cross_entropy_smoothing_ignore",
               [=](auto& x, auto& t, Reduction r) {
                 return F::cross_entropy(x, t, {.label_smoothing = 0.1, .reduction = r});
               },
               real_input(), tr, y_ignore});
  c.push_back(
      {"CrossEntropyLoss",
       [](auto& x, auto& t, Reduction r) { return nn::CrossEntropyLoss({.reduction = r})(x, t); },
       real_input(), tr, y_ignore});
  auto log_probs = [&] { return transposed_leaf(soma::log_softmax(soma::randn({N, C}, D), 1)); };
  c.push_back({"nll_loss",
               [=](auto& x, auto& t, Reduction r) {
                 return F::nll_loss(x, t, {.weight = cw, .reduction = r});
               },
               log_probs(), tr, y_ignore});
  c.push_back({"NLLLoss",
               [](auto& x, auto& t, Reduction r) { return nn::NLLLoss({.reduction = r})(x, t); },
               log_probs(), tr, y});
  return c;
}

TEST(LossStrided, EveryLossMatchesContiguousCopies) {
  CacheOff cache_off;
  for (const LossCase& c : cases()) check(c);
}

// The same with the cache on (the normal configuration).
TEST(LossStrided, EveryLossMatchesContiguousCopiesWithCache) {
  for (const LossCase& c : cases()) check(c);
}

// The one-sample form: input [C] (a strided row of a matrix) and a 0-d target.
TEST(LossStrided, OneSampleFromStridedViews) {
  CacheOff cache_off;
  const Tensor logits = soma::randn({5, 4}, soma::kFloat64);
  const Tensor row = soma::squeeze(soma::narrow(logits.t(), 0, 1, 1), 0);  // stride 4
  ASSERT_FALSE(row.is_contiguous());
  const Tensor labels = soma::tensor(std::vector<int64_t>{3, -7, 2, -7}, {4});
  const Tensor y = soma::squeeze(soma::narrow(soma::slice(labels, 0, 0, 4, 2), 0, 1, 1), 0);
  EXPECT_DOUBLE_EQ(F::cross_entropy(row, y).item<double>(),
                   F::cross_entropy(row.contiguous(), y.contiguous()).item<double>());
  EXPECT_DOUBLE_EQ(F::nll_loss(row, y).item<double>(), -row.to_vector<double>()[2]);
}

}  // namespace
