// Factories against PyTorch (tests/reference/toolkit_factory.py: linspace, eye, one_hot), and
// the random ops, which cannot have goldens, by statistics over many draws, seed
// reproducibility and their errors.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "ops/toolkit_driver.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
using toolkit::Inputs;
using toolkit::one;

toolkit::Op constant(std::function<Tensor(const Inputs&)> f) {
  return {one(f), true, false};
}

const toolkit::Table& table() {
  static const toolkit::Table t = {
      {"linspace_m1_1_7_f64",
       constant([](const Inputs&) { return soma::linspace(-1, 1, 7, soma::kFloat64); })},
      {"linspace_5_m3_9_f64",
       constant([](const Inputs&) { return soma::linspace(5, -3, 9, soma::kFloat64); })},
      {"linspace_0_10_4_i64",
       constant([](const Inputs&) { return soma::linspace(0, 10, 4, soma::kInt64); })},
      {"linspace_m5p5_5_6_i64",
       constant([](const Inputs&) { return soma::linspace(-5.5, 5, 6, soma::kInt64); })},
      {"linspace_one", constant([](const Inputs&) { return soma::linspace(2.5, 7, 1); })},
      {"linspace_zero", constant([](const Inputs&) { return soma::linspace(0, 1, 0); })},
      {"linspace_neg", constant([](const Inputs&) { return soma::linspace(0, 1, -1); })},
      {"eye_3", constant([](const Inputs&) { return soma::eye(3); })},
      {"eye_2x4_f64", constant([](const Inputs&) { return soma::eye(2, 4, soma::kFloat64); })},
      {"eye_4x2_i64", constant([](const Inputs&) { return soma::eye(4, 2, soma::kInt64); })},
      {"eye_2x3_bool", constant([](const Inputs&) { return soma::eye(2, 3, soma::kBool); })},
      {"eye_0", constant([](const Inputs&) { return soma::eye(0); })},
      {"eye_neg", constant([](const Inputs&) { return soma::eye(-1); })},
      {"eye_neg_m", constant([](const Inputs&) { return soma::eye(2, -1); })},
      {"one_hot", constant([](const Inputs& x) { return soma::one_hot(x[0]); })},
      {"one_hot_5", constant([](const Inputs& x) { return soma::one_hot(x[0], 5); })},
      {"one_hot_float",
       constant([](const Inputs& x) { return soma::one_hot(x[0].to(soma::kFloat64), 3); })},
  };
  return t;
}

}  // namespace

SOMA_TOOLKIT_SUITE(Factory, "toolkit_factory_reference.txt", table);

namespace {

double mean_of(const Tensor& t) {
  return soma::mean(t.to(soma::kFloat64)).item<double>();
}
double var_of(const Tensor& t) {
  const Tensor d = t.to(soma::kFloat64) - mean_of(t);
  return soma::mean(d * d).item<double>();
}

constexpr int64_t kDraws = 200000;

// float32 (the default): computed in float like PyTorch (the reference file's values are
// float64 ones, so the float32 rounding is checked here).
TEST(ToolkitFactoryLinspace, Float32Default) {
  Tensor x = soma::linspace(-1, 1, 7);
  EXPECT_EQ(x.dtype(), soma::kFloat32);
  const auto v = x.to_vector<float>();
  // torch.linspace(-1, 1, 7) bit for bit
  EXPECT_EQ(v, (std::vector<float>{-1.0f, -0x1.555554p-1f, -0x1.555554p-2f, -0x1.0p-25f,
                                   0x1.555554p-2f, 0x1.555554p-1f, 1.0f}));
  EXPECT_FLOAT_EQ(v[3], -2.98023224e-08f);  // torch.linspace(-1, 1, 7)[3]
  EXPECT_EQ(soma::linspace(3, 3, 4).to_vector<float>(), (std::vector<float>{3, 3, 3, 3}));
}

TEST(ToolkitFactoryRandom, NormalFillMatchesMeanAndStd) {
  for (soma::DType dtype : {soma::kFloat32, soma::kFloat64}) {
    soma::manual_seed(11);
    Tensor x = soma::empty({kDraws}, dtype);
    Tensor& r = x.normal_(2.0, 3.0);
    EXPECT_EQ(&r, &x);
    EXPECT_NEAR(mean_of(x), 2.0, 0.05);
    EXPECT_NEAR(std::sqrt(var_of(x)), 3.0, 0.05);
    soma::manual_seed(11);
    Tensor y = soma::empty({kDraws}, dtype).normal_(2.0, 3.0);
    EXPECT_EQ(x.to_vector<double>(), y.to_vector<double>());  // reproducible under a seed
  }
  Tensor z = soma::ones({3}).normal_(5.0, 0.0);
  EXPECT_EQ(z.to_vector<float>(), (std::vector<float>{5, 5, 5}));
}

TEST(ToolkitFactoryRandom, UniformFillStaysInRange) {
  soma::manual_seed(12);
  Tensor x = soma::empty({kDraws}, soma::kFloat64).uniform_(-1.0, 3.0);
  const auto v = x.to_vector<double>();
  for (double e : v) ASSERT_TRUE(e >= -1.0 && e < 3.0) << e;
  EXPECT_NEAR(mean_of(x), 1.0, 0.02);
  EXPECT_NEAR(var_of(x), 16.0 / 12.0, 0.02);
  // a non-contiguous view is filled in place, through the base's storage
  Tensor base = soma::zeros({4, 6});
  base.t().uniform_(1.0, 2.0);
  for (float e : base.to_vector<float>()) EXPECT_TRUE(e >= 1.0f && e < 2.0f);
}

TEST(ToolkitFactoryRandom, FillsBumpVersionAndRefuseLeavesThatRequireGrad) {
  Tensor w = soma::zeros({3}).requires_grad_();
  EXPECT_THROW(w.normal_(), soma::Error);
  {
    soma::NoGradGuard no_grad;
    w.uniform_(0.5, 1.0);  // allowed without grad, like torch's init functions
  }
  for (float e : w.to_vector<float>()) EXPECT_GE(e, 0.5f);
  // a tensor saved for backward and then refilled: backward reports the in-place change
  Tensor a = soma::ones({3}).requires_grad_();
  Tensor b = soma::ones({3});
  Tensor y = (a * b).sum();
  b.normal_();
  EXPECT_THROW(y.backward(), soma::Error);
}

TEST(ToolkitFactoryRandom, BernoulliMatchesProbability) {
  soma::manual_seed(13);
  Tensor p = soma::full({kDraws}, 0.3, soma::kFloat64);
  Tensor b = soma::bernoulli(p);
  EXPECT_EQ(b.dtype(), soma::kFloat64);
  std::set<double> values;
  for (double e : b.to_vector<double>()) values.insert(e);
  EXPECT_EQ(values, (std::set<double>{0.0, 1.0}));
  EXPECT_NEAR(mean_of(b), 0.3, 0.01);
  EXPECT_NEAR(mean_of(p.bernoulli()), 0.3, 0.01);
  // p of exactly 0 and 1 is deterministic
  Tensor edge = soma::bernoulli(soma::tensor(std::vector<float>{0, 1, 0, 1}));
  EXPECT_EQ(edge.to_vector<float>(), (std::vector<float>{0, 1, 0, 1}));
  Tensor c = soma::bernoulli(soma::zeros({kDraws}), 0.7);
  EXPECT_EQ(c.dtype(), soma::kFloat32);
  EXPECT_NEAR(mean_of(c), 0.7, 0.01);
  Tensor d = soma::zeros({kDraws}, soma::kInt64);
  d.bernoulli_(0.2);
  EXPECT_NEAR(mean_of(d), 0.2, 0.01);
  // per-column probabilities broadcast over rows
  Tensor e = soma::zeros({kDraws / 2, 2});
  e.bernoulli_(soma::tensor(std::vector<float>{0.1f, 0.9f}));
  EXPECT_NEAR(mean_of(soma::narrow(e, 1, 0, 1)), 0.1, 0.01);
  EXPECT_NEAR(mean_of(soma::narrow(e, 1, 1, 1)), 0.9, 0.01);
  soma::manual_seed(5);
  const auto first = soma::bernoulli(soma::full({100}, 0.5)).to_vector<float>();
  soma::manual_seed(5);
  EXPECT_EQ(soma::bernoulli(soma::full({100}, 0.5)).to_vector<float>(), first);
}

TEST(ToolkitFactoryRandom, BernoulliErrors) {
  EXPECT_THROW(soma::bernoulli(soma::tensor(std::vector<float>{0.5f, 1.5f})), soma::Error);
  EXPECT_THROW(soma::bernoulli(soma::zeros({2}), -0.1), soma::Error);
  EXPECT_THROW(soma::zeros({2}).bernoulli_(2.0), soma::Error);
  EXPECT_THROW(soma::bernoulli(soma::zeros({2}, soma::kInt64)), soma::Error);
  EXPECT_THROW(soma::zeros({2}).bernoulli_(soma::full({3}, 0.5)), soma::Error);
}

TEST(ToolkitFactoryRandom, MultinomialWithReplacementMatchesWeights) {
  soma::manual_seed(14);
  Tensor probs = soma::tensor(std::vector<double>{1, 0, 2, 7});  // unnormalised weights
  Tensor s = soma::multinomial(probs, kDraws, true);
  EXPECT_EQ(s.dtype(), soma::kInt64);
  EXPECT_EQ(s.shape(), (soma::Shape{kDraws}));
  std::vector<double> freq(4, 0.0);
  for (int64_t c : s.to_vector<int64_t>()) freq.at(static_cast<size_t>(c)) += 1.0 / kDraws;
  EXPECT_NEAR(freq[0], 0.1, 0.01);
  EXPECT_EQ(freq[1], 0.0);  // a zero-weight category is never drawn
  EXPECT_NEAR(freq[2], 0.2, 0.01);
  EXPECT_NEAR(freq[3], 0.7, 0.01);
  Tensor rows = soma::tensor(std::vector<float>{1, 0, 0, 1}, {2, 2}).multinomial(5, true);
  EXPECT_EQ(rows.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
}

TEST(ToolkitFactoryRandom, MultinomialWithoutReplacement) {
  soma::manual_seed(15);
  // all categories: a permutation of each row
  Tensor s = soma::multinomial(soma::rand({50, 6}, soma::kFloat64) + 0.1, 6);
  EXPECT_EQ(s.shape(), (soma::Shape{50, 6}));
  const auto v = s.to_vector<int64_t>();
  for (int64_t r = 0; r < 50; ++r) {
    std::set<int64_t> row(v.begin() + r * 6, v.begin() + r * 6 + 6);
    EXPECT_EQ(row.size(), 6u);
  }
  // the first draw follows the weights: P(1) = 3/4
  Tensor many = soma::multinomial(
      soma::expand(soma::tensor(std::vector<double>{1, 3}, {1, 2}), {20000, 2}), 1);
  EXPECT_NEAR(mean_of(many), 0.75, 0.015);
  // zero-weight categories come after the positive ones
  Tensor z = soma::multinomial(soma::tensor(std::vector<double>{0, 1, 0}), 2);
  EXPECT_EQ(z.to_vector<int64_t>()[0], 1);
  soma::manual_seed(9);
  const auto first = soma::multinomial(soma::ones({10}), 10).to_vector<int64_t>();
  soma::manual_seed(9);
  EXPECT_EQ(soma::multinomial(soma::ones({10}), 10).to_vector<int64_t>(), first);
}

TEST(ToolkitFactoryRandom, MultinomialErrors) {
  using toolkit::error_message;
  auto message = [](auto f) { return error_message(f); };
  const Tensor p = soma::tensor(std::vector<double>{1, 2});
  EXPECT_NE(message([&] {
              soma::multinomial(soma::tensor(std::vector<double>{1, -1}), 1);
            }).find("element < 0"),
            std::string::npos);
  EXPECT_NE(message([&] {
              soma::multinomial(soma::zeros({2, 3}), 1);
            }).find("sum of probabilities <= 0"),
            std::string::npos);
  EXPECT_NE(message([&] { soma::multinomial(p, 3); }).find("without replacement"),
            std::string::npos);
  EXPECT_NO_THROW(soma::multinomial(p, 3, true));
  EXPECT_THROW(soma::multinomial(p, 0), soma::Error);
  EXPECT_THROW(soma::multinomial(soma::ones({2, 2, 2}), 1), soma::Error);
  EXPECT_THROW(soma::multinomial(soma::ones({2}, soma::kInt64), 1), soma::Error);
  EXPECT_THROW(soma::multinomial(soma::tensor(std::vector<double>{1, NAN}), 1), soma::Error);
}

TEST(ToolkitFactoryRandom, FillErrors) {
  EXPECT_THROW(soma::zeros({2}).normal_(0.0, -1.0), soma::Error);
  EXPECT_THROW(soma::zeros({2}, soma::kInt64).normal_(), soma::Error);
  EXPECT_THROW(soma::zeros({2}).uniform_(1.0, 0.0), soma::Error);
  EXPECT_THROW(soma::zeros({2}, soma::kInt64).uniform_(), soma::Error);
}

}  // namespace
