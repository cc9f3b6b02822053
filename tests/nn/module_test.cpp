// nn::Module semantics (names, children, train/eval, zero_grad, to, state dicts, summary),
// Linear, nn::init formulas, Dropout statistics, Sequential/ModuleList, a user-defined layer,
// loss argument errors, and DESIGN.md's public-API snippet compiled as written.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernels.h"
#include "nn/fusion_internal.h"
#include "soma/soma.h"

namespace nn = soma::nn;
namespace F = soma::nn::functional;

namespace {

using soma::Shape;
using soma::Tensor;

// The lecture's MyDenseLayer, exactly as in DESIGN.md.
// clang-format off
struct MyDenseLayer : nn::Module {
  soma::Tensor w, b;
  MyDenseLayer(int64_t in, int64_t out) {
    w = register_parameter("w", soma::randn({in, out}));
    b = register_parameter("b", soma::randn({1, out}));
  }
  soma::Tensor forward(const soma::Tensor& x) override { return soma::relu(soma::matmul(x, w) + b); }
};
// clang-format on

// A custom module with named submodules: encoder.fc1, encoder.fc2.
struct Encoder : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  Encoder() {
    fc1 = register_module("fc1", nn::Linear(4, 8));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(8, 3));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)(soma::relu((*fc1)(x))); }
};

struct AutoEncoder : nn::Module {
  std::shared_ptr<Encoder> encoder;
  std::shared_ptr<nn::Linear> decoder;
  AutoEncoder() {
    encoder = register_module("encoder", Encoder());
    decoder = register_module("decoder", nn::Linear(3, 4));
  }
  Tensor forward(const Tensor& x) override { return (*decoder)((*encoder)(x)); }
};

// A parameter and a buffer held as members (to() must keep both handles valid).
struct Scale : nn::Module {
  Tensor w, shift;
  Scale() {
    w = register_parameter("w", soma::randn({3, 2}));
    shift = register_buffer("shift", soma::ones({2}));
  }
  Tensor forward(const Tensor& x) override { return soma::matmul(x, w) + shift; }
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> out;
  for (const auto& [name, t] : named) out.push_back(name);
  return out;
}

// The message of the soma::Error thrown by fn ("" and a test failure when nothing is thrown).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const soma::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected soma::Error";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "expected \"" << (needle) << "\" in:\n"                   \
      << (haystack)

nn::Sequential mnist_mlp() {
  return nn::Sequential(nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 128), nn::ReLU(),
                        nn::Linear(128, 10));
}

std::vector<std::vector<float>> snapshot(const nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (const Tensor& p : m.parameters()) out.push_back(p.to_vector<float>());
  return out;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double std_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size()));
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// ---- names, children, modes ---------------------------------------------------------------

TEST(Module, SequentialParameterNamesArePyTorchs) {
  nn::Sequential model(nn::Linear(3, 4), nn::ReLU(), nn::Linear(4, 2));
  EXPECT_EQ(names_of(model.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(model.parameters().size(), 4u);
  EXPECT_TRUE(model.named_parameters(/*recurse=*/false).empty());
  // The handles are the layer's own tensors.
  EXPECT_EQ(model.parameters()[0].impl(), model.at<nn::Linear>(0).weight.impl());
  EXPECT_EQ(model.parameters()[3].impl(), model.at<nn::Linear>(2).bias.impl());
}

TEST(Module, NestedNamesAreDotted) {
  AutoEncoder model;
  EXPECT_EQ(
      names_of(model.named_parameters()),
      (std::vector<std::string>{"encoder.fc1.weight", "encoder.fc1.bias", "encoder.fc2.weight",
                                "encoder.fc2.bias", "decoder.weight", "decoder.bias"}));
  const auto sd = model.state_dict();
  ASSERT_TRUE(sd.count("encoder.fc1.bias"));
  EXPECT_EQ(sd.at("encoder.fc1.bias").shape(), Shape{8});
  // register_module returns the registered object: the member is the child, and the state
  // dict's tensor shares its storage.
  EXPECT_EQ(model.encoder.get(), model.children()[0].get());
  EXPECT_EQ(model.encoder->fc1->bias.data<float>(), sd.at("encoder.fc1.bias").data<float>());
  EXPECT_EQ(model(soma::randn({5, 4})).shape(), (Shape{5, 4}));

  nn::Sequential nested(nn::Sequential(nn::Linear(2, 3), nn::ReLU()), nn::Linear(3, 1));
  EXPECT_EQ(names_of(nested.named_parameters()),
            (std::vector<std::string>{"0.0.weight", "0.0.bias", "1.weight", "1.bias"}));
}

TEST(Module, RegisterParameterAndBuffer) {
  Scale m;
  ASSERT_EQ(m.named_parameters().size(), 1u);
  EXPECT_EQ(m.named_parameters()[0].first, "w");
  EXPECT_EQ(m.named_parameters()[0].second.impl(), m.w.impl());
  EXPECT_TRUE(m.w.requires_grad());
  EXPECT_EQ(names_of(m.named_buffers()), (std::vector<std::string>{"shift"}));
  EXPECT_EQ(m.state_dict().size(), 2u);  // parameter and buffer
  EXPECT_EQ(m.num_parameters(), 6);      // the buffer is not a parameter
  // Names are unique and contain no '.'.
  EXPECT_CONTAINS(error_of([&] { m.register_parameter("w", soma::zeros({1})); }), "'w'");
  EXPECT_CONTAINS(error_of([&] { m.register_parameter("a.b", soma::zeros({1})); }), "'a.b'");
  EXPECT_CONTAINS(error_of([&] { m.register_module("shift", nn::ReLU()); }), "'shift'");
}

TEST(Module, Children) {
  AutoEncoder model;
  ASSERT_EQ(model.children().size(), 2u);
  EXPECT_EQ(model.children()[0].get(), model.encoder.get());
  EXPECT_EQ(model.children()[1].get(), model.decoder.get());
  EXPECT_EQ(model.named_children()[0].first, "encoder");
  EXPECT_EQ(model.encoder->children().size(), 2u);
  EXPECT_TRUE(nn::Linear(2, 2).children().empty());
}

TEST(Module, TrainEvalIsRecursive) {
  AutoEncoder model;
  nn::Sequential outer(nn::Sequential(nn::Dropout(0.5), nn::Linear(2, 2)), nn::ReLU());
  EXPECT_TRUE(model.is_training());
  model.eval();
  outer.eval();
  EXPECT_FALSE(model.is_training());
  EXPECT_FALSE(model.encoder->is_training());
  EXPECT_FALSE(model.encoder->fc1->is_training());
  EXPECT_FALSE(outer[0].is_training());
  EXPECT_FALSE(dynamic_cast<nn::Sequential&>(outer[0])[0].is_training());
  model.train();
  EXPECT_TRUE(model.encoder->fc2->is_training());
  model.train(false);
  EXPECT_FALSE(model.decoder->is_training());
}

TEST(Module, ZeroGrad) {
  soma::manual_seed(0);
  nn::Sequential model(nn::Linear(3, 4), nn::ReLU(), nn::Linear(4, 2));
  model(soma::randn({5, 3})).sum().backward();
  for (const Tensor& p : model.parameters()) ASSERT_TRUE(p.grad().defined());
  model.zero_grad(/*set_to_none=*/false);
  for (const Tensor& p : model.parameters()) {
    ASSERT_TRUE(p.grad().defined());
    for (float g : p.grad().to_vector<float>()) EXPECT_EQ(g, 0.0f);
  }
  model(soma::randn({5, 3})).sum().backward();
  model.zero_grad();
  for (const Tensor& p : model.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Module, ToFloat64KeepsMemberHandles) {
  soma::manual_seed(0);
  Scale m;
  const std::vector<float> before = m.w.to_vector<float>();
  const Tensor handle = m.w;
  m.to(soma::kFloat64);
  EXPECT_EQ(m.w.dtype(), soma::kFloat64);
  EXPECT_EQ(handle.dtype(), soma::kFloat64);
  EXPECT_EQ(m.shift.dtype(), soma::kFloat64);
  EXPECT_EQ(m.named_parameters()[0].second.impl(), m.w.impl());
  EXPECT_TRUE(m.w.requires_grad());
  const std::vector<double> after = m.w.to_vector<double>();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i], static_cast<double>(before[i]));

  Tensor y = m(soma::randn({4, 3}, soma::kFloat64));
  EXPECT_EQ(y.dtype(), soma::kFloat64);
  y.sum().backward();
  ASSERT_TRUE(m.w.grad().defined());
  EXPECT_EQ(m.w.grad().dtype(), soma::kFloat64);

  nn::Sequential model = mnist_mlp();
  model.to(soma::kFloat64);
  EXPECT_EQ(model.at<nn::Linear>(0).weight.dtype(), soma::kFloat64);
  EXPECT_EQ(model(soma::randn({2, 784}, soma::kFloat64)).dtype(), soma::kFloat64);
  EXPECT_THROW(model.to(soma::kInt64), soma::Error);
}

// ---- state dicts ----------------------------------------------------------------------------

TEST(Module, StateDictRoundTripGivesIdenticalOutputs) {
  soma::manual_seed(0);
  nn::Sequential a(nn::Linear(784, 256), nn::ReLU(), nn::Dropout(0.5), nn::Linear(256, 128),
                   nn::ReLU(), nn::Linear(128, 10));
  soma::manual_seed(1);
  nn::Sequential b(nn::Linear(784, 256), nn::ReLU(), nn::Dropout(0.5), nn::Linear(256, 128),
                   nn::ReLU(), nn::Linear(128, 10));
  a.eval();
  b.eval();
  const Tensor x = soma::randn({8, 784});
  EXPECT_NE(a(x).to_vector<float>(), b(x).to_vector<float>());

  const nn::StateDict sd = a.state_dict();
  EXPECT_EQ(sd.size(), 6u);
  EXPECT_EQ(sd.at("0.weight").shape(), (Shape{256, 784}));
  EXPECT_EQ(sd.at("5.bias").shape(), Shape{10});
  b.load_state_dict(sd);
  EXPECT_EQ(a(x).to_vector<float>(), b(x).to_vector<float>());
  // b got copies: still its own leaves that require grad, and independent of a.
  for (const Tensor& p : b.parameters()) {
    EXPECT_TRUE(p.is_leaf());
    EXPECT_TRUE(p.requires_grad());
  }
  {
    soma::NoGradGuard no_grad;
    a.at<nn::Linear>(0).bias.fill_(0.0);
  }
  EXPECT_NE(a(x).to_vector<float>(), b(x).to_vector<float>());
}

TEST(Module, LoadStateDictErrorsNameKeysAndShapes) {
  soma::manual_seed(0);
  nn::Sequential model(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2));
  const auto before = snapshot(model);
  soma::manual_seed(1);
  nn::Sequential other(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2));
  const nn::StateDict good = other.state_dict();

  nn::StateDict missing = good;
  missing.erase("2.bias");
  std::string msg = error_of([&] { model.load_state_dict(missing); });
  EXPECT_CONTAINS(msg, "missing");
  EXPECT_CONTAINS(msg, "2.bias");
  EXPECT_EQ(snapshot(model), before);

  nn::StateDict unexpected = good;
  unexpected["extra.weight"] = soma::zeros({2, 2});
  msg = error_of([&] { model.load_state_dict(unexpected); });
  EXPECT_CONTAINS(msg, "unexpected");
  EXPECT_CONTAINS(msg, "extra.weight");
  EXPECT_EQ(snapshot(model), before);

  nn::StateDict both = missing;
  both["3.weight"] = soma::zeros({1});
  msg = error_of([&] { model.load_state_dict(both); });
  EXPECT_CONTAINS(msg, "2.bias");
  EXPECT_CONTAINS(msg, "3.weight");

  // A shape mismatch in a later key leaves the earlier ones untouched too.
  nn::StateDict wrong_shape = good;
  wrong_shape["2.weight"] = soma::zeros({3, 2});
  msg = error_of([&] { model.load_state_dict(wrong_shape); });
  EXPECT_CONTAINS(msg, "2.weight");
  EXPECT_CONTAINS(msg, "[3, 2]");
  EXPECT_CONTAINS(msg, "[2, 3]");
  EXPECT_EQ(snapshot(model), before);

  nn::StateDict wrong_dtype = good;
  wrong_dtype["0.bias"] = soma::zeros({3}, soma::kFloat64);
  msg = error_of([&] { model.load_state_dict(wrong_dtype); });
  EXPECT_CONTAINS(msg, "0.bias");
  EXPECT_EQ(snapshot(model), before);

  // Non-strict loading skips the missing and unexpected keys and loads the rest.
  model.load_state_dict(missing, /*strict=*/false);
  EXPECT_EQ(model.at<nn::Linear>(0).weight.to_vector<float>(),
            good.at("0.weight").to_vector<float>());
  EXPECT_EQ(model.at<nn::Linear>(2).bias.to_vector<float>(), before[3]);
}

TEST(Module, NumParameters) {
  nn::Sequential model = mnist_mlp();
  EXPECT_EQ(model.num_parameters(), 235146);  // 784*256+256 + 256*128+128 + 128*10+10
  EXPECT_EQ(model.num_parameters(/*trainable_only=*/true), 235146);
  model.at<nn::Linear>(0).bias.requires_grad_(false);
  EXPECT_EQ(model.num_parameters(true), 235146 - 256);
  EXPECT_EQ(nn::Linear(5, 3, {.bias = false}).num_parameters(), 15);
  EXPECT_EQ(nn::ReLU().num_parameters(), 0);
}

TEST(Module, Summary) {
  nn::Sequential model = mnist_mlp();
  const std::string s = model.summary({1, 784});
  for (const char* part : {"Linear(784 -> 256)", "ReLU", "Linear(256 -> 128)", "Linear(128 -> 10)",
                           "[1, 256]", "[1, 128]", "[1, 10]", "200,960", "32,896", "1,290",
                           "Total params: 235,146", "Trainable params: 235,146"}) {
    EXPECT_CONTAINS(s, part);
  }
  EXPECT_TRUE(model.is_training());  // summary runs in eval mode and restores the mode
  for (const Tensor& p : model.parameters()) EXPECT_FALSE(p.grad().defined());

  nn::Sequential with_dropout(nn::Linear(784, 256), nn::ReLU(), nn::Dropout(0.5),
                              nn::Linear(256, 128), nn::ReLU(), nn::Linear(128, 10));
  const std::string d = with_dropout.summary({32, 784});
  EXPECT_CONTAINS(d, "Dropout(p=0.5)");
  EXPECT_CONTAINS(d, "[32, 10]");
  EXPECT_CONTAINS(d, "Total params: 235,146");

  std::ostringstream os;
  os << model;
  EXPECT_CONTAINS(os.str(), "Sequential(");
  EXPECT_CONTAINS(os.str(), "(0): Linear(784 -> 256)");
  EXPECT_CONTAINS(os.str(), "(4): Linear(128 -> 10)");
}

// ---- Linear ---------------------------------------------------------------------------------

TEST(NnLinear, ShapesAndForward) {
  soma::manual_seed(0);
  nn::Linear lin(4, 3);
  EXPECT_EQ(lin.weight.shape(), (Shape{3, 4}));
  EXPECT_EQ(lin.bias.shape(), Shape{3});
  EXPECT_EQ(lin.describe(), "Linear(4 -> 3)");
  const Tensor x = soma::randn({5, 4});
  const std::vector<float> y = lin(x).to_vector<float>();
  const std::vector<float> xs = x.to_vector<float>(), w = lin.weight.to_vector<float>(),
                           b = lin.bias.to_vector<float>();
  for (int i = 0; i < 5; ++i) {
    for (int o = 0; o < 3; ++o) {
      float ref = b[o];
      for (int k = 0; k < 4; ++k) ref += xs[i * 4 + k] * w[o * 4 + k];
      EXPECT_NEAR(y[i * 3 + o], ref, 1e-5f);
    }
  }
  EXPECT_EQ(lin(soma::randn({2, 6, 4})).shape(), (Shape{2, 6, 3}));
  nn::Linear no_bias(4, 3, {.bias = false});
  EXPECT_FALSE(no_bias.bias.defined());
  EXPECT_EQ(no_bias.describe(), "Linear(4 -> 3, bias=false)");
  EXPECT_THROW(nn::Linear(0, 3), soma::Error);
}

TEST(NnLinear, ErrorNamesLayerShapeAndFeatures) {
  nn::Linear lin(784, 256);
  const std::string msg = error_of([&] { lin(soma::randn({32, 100})); });
  EXPECT_CONTAINS(msg, "Linear(784 -> 256): input of shape [32, 100] has 100 features");
  EXPECT_CONTAINS(msg, "784");
  EXPECT_CONTAINS(error_of([&] { lin(soma::randn({32, 784}, soma::kFloat64)); }), "float64");
}

TEST(NnLinear, InitIsUniformWithinOneOverSqrtIn) {
  soma::manual_seed(0);
  nn::Linear lin(1000, 500);
  const double bound = 1.0 / std::sqrt(1000.0);
  const std::vector<double> w = lin.weight.to(soma::kFloat64).to_vector<double>();
  EXPECT_LE(max_abs(w), bound);
  EXPECT_GT(max_abs(w), 0.999 * bound);
  EXPECT_NEAR(mean_of(w), 0.0, 0.01 * bound);
  EXPECT_NEAR(std_of(w), bound / std::sqrt(3.0), 0.01 * bound / std::sqrt(3.0));
  const std::vector<double> b = lin.bias.to(soma::kFloat64).to_vector<double>();
  EXPECT_LE(max_abs(b), bound);
  EXPECT_NEAR(std_of(b), bound / std::sqrt(3.0), 0.1 * bound / std::sqrt(3.0));
  // Re-seeding reproduces the initialisation.
  soma::manual_seed(0);
  nn::Linear again(1000, 500);
  EXPECT_EQ(again.weight.to_vector<float>(), lin.weight.to_vector<float>());
}

// ---- nn::init -------------------------------------------------------------------------------

TEST(Init, CalculateGain) {
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("linear"), 1.0);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("sigmoid"), 1.0);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("conv2d"), 1.0);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("tanh"), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("relu"), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("leaky_relu", 0.2), std::sqrt(2.0 / 1.04));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("leaky_relu"), std::sqrt(2.0 / (1.0 + 1e-4)));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("selu"), 0.75);
  EXPECT_CONTAINS(error_of([] { nn::init::calculate_gain("swish"); }), "swish");
}

TEST(Init, FanInAndFanOut) {
  EXPECT_EQ(nn::init::calculate_fan_in_and_fan_out(soma::empty({3, 4})),
            std::make_pair(int64_t{4}, int64_t{3}));
  EXPECT_EQ(nn::init::calculate_fan_in_and_fan_out(soma::empty({8, 4, 3, 3})),
            std::make_pair(int64_t{36}, int64_t{72}));
  EXPECT_THROW(nn::init::calculate_fan_in_and_fan_out(soma::empty({5})), soma::Error);
}

TEST(Init, XavierUniformBound) {
  soma::manual_seed(0);
  Tensor t = soma::empty({300, 500}, soma::kFloat64);
  Tensor r = nn::init::xavier_uniform_(t);
  EXPECT_EQ(r.impl(), t.impl());  // fills and returns the same handle
  const double a = std::sqrt(6.0 / 800.0);
  const std::vector<double> v = t.to_vector<double>();
  EXPECT_LE(max_abs(v), a);
  EXPECT_GT(max_abs(v), 0.999 * a);
  EXPECT_NEAR(std_of(v), a / std::sqrt(3.0), 0.02 * a / std::sqrt(3.0));
  nn::init::xavier_uniform_(t, /*gain=*/2.0);
  EXPECT_GT(max_abs(t.to_vector<double>()), 0.999 * 2.0 * a);
  EXPECT_LE(max_abs(t.to_vector<double>()), 2.0 * a);
}

TEST(Init, XavierNormalStd) {
  soma::manual_seed(1);
  Tensor t = soma::empty({400, 600});
  nn::init::xavier_normal_(t, nn::init::calculate_gain("tanh"));
  const std::vector<double> v = t.to(soma::kFloat64).to_vector<double>();
  const double expected = 5.0 / 3.0 * std::sqrt(2.0 / 1000.0);
  EXPECT_NEAR(mean_of(v), 0.0, 0.02 * expected);
  EXPECT_NEAR(std_of(v), expected, 0.02 * expected);
}

TEST(Init, KaimingNormalStd) {
  soma::manual_seed(2);
  Tensor t = soma::empty({256, 512});
  nn::init::kaiming_normal_(t);  // a = 0, leaky_relu: gain sqrt(2), fan_in 512
  std::vector<double> v = t.to(soma::kFloat64).to_vector<double>();
  EXPECT_NEAR(std_of(v), std::sqrt(2.0 / 512.0), 0.02 * std::sqrt(2.0 / 512.0));
  nn::init::kaiming_normal_(t, 0.0, nn::init::FanMode::FanOut, "relu");
  v = t.to(soma::kFloat64).to_vector<double>();
  EXPECT_NEAR(std_of(v), std::sqrt(2.0 / 256.0), 0.02 * std::sqrt(2.0 / 256.0));
  EXPECT_NEAR(mean_of(v), 0.0, 0.02 * std::sqrt(2.0 / 256.0));
}

TEST(Init, KaimingUniformRelu) {
  soma::manual_seed(3);
  Tensor t = soma::empty({200, 600}, soma::kFloat64);
  nn::init::kaiming_uniform_(t, 0.0, nn::init::FanMode::FanIn, "relu");
  const double bound = std::sqrt(2.0) * std::sqrt(3.0 / 600.0);
  const std::vector<double> v = t.to_vector<double>();
  EXPECT_LE(max_abs(v), bound);
  EXPECT_GT(max_abs(v), 0.999 * bound);
  EXPECT_NEAR(std_of(v), bound / std::sqrt(3.0), 0.02 * bound / std::sqrt(3.0));
  // Linear's default: a = sqrt(5) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  nn::init::kaiming_uniform_(t, std::sqrt(5.0));
  EXPECT_LE(max_abs(t.to_vector<double>()), 1.0 / std::sqrt(600.0) + 1e-12);
  EXPECT_GT(max_abs(t.to_vector<double>()), 0.999 / std::sqrt(600.0));
}

TEST(Init, SimpleFillsOnParameters) {
  nn::Linear lin(3, 2);
  nn::init::constant_(lin.weight, 0.5);
  for (float v : lin.weight.to_vector<float>()) EXPECT_EQ(v, 0.5f);
  nn::init::zeros_(lin.bias);
  for (float v : lin.bias.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  nn::init::ones_(lin.bias);
  for (float v : lin.bias.to_vector<float>()) EXPECT_EQ(v, 1.0f);
  nn::init::uniform_(lin.weight, 2.0, 3.0);
  for (float v : lin.weight.to_vector<float>()) {
    EXPECT_GE(v, 2.0f);
    EXPECT_LE(v, 3.0f);
  }
  nn::init::normal_(lin.weight, 10.0, 0.01);
  for (float v : lin.weight.to_vector<float>()) EXPECT_NEAR(v, 10.0f, 0.1f);
  // Still a leaf parameter (the fills record no graph).
  EXPECT_TRUE(lin.weight.is_leaf());
  EXPECT_TRUE(lin.weight.requires_grad());
  EXPECT_THROW(nn::init::uniform_(lin.weight, 1.0, 0.0), soma::Error);
  EXPECT_THROW(nn::init::zeros_(soma::zeros({2}, soma::kInt64)), soma::Error);
}

// ---- Dropout --------------------------------------------------------------------------------

TEST(Dropout, EvalIsIdentity) {
  soma::manual_seed(0);
  const Tensor x = soma::randn({50, 40});
  nn::Dropout d(0.5);
  d.eval();
  EXPECT_EQ(d(x).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(F::dropout(x, 0.9, /*training=*/false).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(F::dropout(x, 0.0, true).to_vector<float>(), x.to_vector<float>());
}

TEST(Dropout, TrainingZeroesAboutPAndScalesTheRestExactly) {
  for (double p : {0.1, 0.3, 0.5, 0.8}) {
    soma::manual_seed(42);
    const int64_t n = 100000;
    const Tensor x = soma::rand({n}) + 0.5;  // no zeros in the input
    nn::Dropout d(p);
    ASSERT_TRUE(d.is_training());
    const std::vector<float> in = x.to_vector<float>(), out = d(x).to_vector<float>();
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (out[i] == 0.0f) {
        ++zeros;
      } else {
        ASSERT_FLOAT_EQ(out[i], in[i] * scale) << "p " << p << " element " << i;
      }
    }
    // Binomial(n, p): standard deviation of the fraction <= 0.0016.
    EXPECT_NEAR(static_cast<double>(zeros) / n, p, 0.01) << "p " << p;
  }
}

TEST(Dropout, PreservesTheMean) {
  soma::manual_seed(3);
  const Tensor ones = soma::ones({100000});
  for (double p : {0.2, 0.5}) {
    const double m = F::dropout(ones, p, true).mean().item<double>();
    EXPECT_NEAR(m, 1.0, 0.02) << "p " << p;
  }
}

TEST(Dropout, ReproducibleWithManualSeed) {
  const Tensor x = soma::ones({1000});
  soma::manual_seed(5);
  const std::vector<float> a = F::dropout(x, 0.5).to_vector<float>();
  soma::manual_seed(5);
  const std::vector<float> b = F::dropout(x, 0.5).to_vector<float>();
  soma::manual_seed(6);
  const std::vector<float> c = F::dropout(x, 0.5).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Consecutive calls draw new masks.
  EXPECT_NE(F::dropout(x, 0.5).to_vector<float>(), F::dropout(x, 0.5).to_vector<float>());
}

TEST(Dropout, GradientIsTheMask) {
  soma::manual_seed(7);
  Tensor x = soma::randn({200}).requires_grad_(true);
  const Tensor y = F::dropout(x, 0.25);
  y.sum().backward();
  const std::vector<float> g = x.grad().to_vector<float>(), out = y.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i) {
    if (out[i] == 0.0f)
      EXPECT_EQ(g[i], 0.0f);
    else
      EXPECT_FLOAT_EQ(g[i], 1.0f / 0.75f);
  }
}

TEST(Dropout, InvalidProbabilities) {
  for (double p : {1.0, 1.5, -0.1}) {
    std::ostringstream want;
    want << p;
    EXPECT_CONTAINS(error_of([p] { nn::Dropout d(p); }), want.str());
    EXPECT_CONTAINS(error_of([p] { F::dropout(soma::ones({3}), p, true); }), want.str());
  }
  EXPECT_EQ(nn::Dropout(0.25).describe(), "Dropout(p=0.25)");
}

TEST(Dropout, FollowsTheModelsMode) {
  soma::manual_seed(0);
  nn::Sequential model(nn::Linear(10, 200), nn::Dropout(0.5));
  const Tensor x = soma::randn({4, 10});
  model.eval();
  const std::vector<float> a = model(x).to_vector<float>(), b = model(x).to_vector<float>();
  EXPECT_EQ(a, b);
  model.train();
  EXPECT_NE(model(x).to_vector<float>(), a);
}

// ---- Sequential, ModuleList -------------------------------------------------------------------

TEST(NnSequential, IndexingAndAt) {
  nn::Sequential model = mnist_mlp();
  EXPECT_EQ(model.size(), 5u);
  EXPECT_EQ(model[0].describe(), "Linear(784 -> 256)");
  EXPECT_EQ(model[1].describe(), "ReLU");
  EXPECT_EQ(model[-1].describe(), "Linear(128 -> 10)");
  EXPECT_EQ(&model[-5], &model[0]);
  EXPECT_EQ(model.at<nn::Linear>(0).in_features, 784);
  EXPECT_EQ(model.at<nn::Linear>(-1).out_features, 10);
  EXPECT_EQ(model.ptr(2).get(), &model[2]);
  EXPECT_THROW((void)model.at<nn::ReLU>(0), soma::Error);
  EXPECT_CONTAINS(error_of([&] { (void)model.at<nn::ReLU>(0); }), "Linear(784 -> 256)");
  EXPECT_CONTAINS(error_of([&] { (void)model[5]; }), "5");
  EXPECT_THROW((void)model[-6], soma::Error);
}

TEST(NnSequential, PushBackAndNesting) {
  soma::manual_seed(0);
  nn::Sequential model;
  EXPECT_TRUE(model.empty());
  model.push_back(nn::Linear(2, 3));
  model.push_back(nn::ReLU());
  auto head = std::make_shared<nn::Linear>(3, 1);
  model.push_back(head);
  EXPECT_EQ(model.size(), 3u);
  EXPECT_EQ(names_of(model.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(&model.at<nn::Linear>(2), head.get());  // a shared_ptr is shared, not copied
  EXPECT_EQ(model(soma::randn({5, 2})).shape(), (Shape{5, 1}));

  nn::Sequential outer(nn::Sequential(nn::Linear(2, 4), nn::Tanh()), std::move(model));
  EXPECT_EQ(outer.size(), 2u);
  EXPECT_EQ(outer.parameters().size(), 6u);
  EXPECT_EQ(names_of(outer.named_parameters())[0], "0.0.weight");
  EXPECT_EQ(names_of(outer.named_parameters())[2], "1.0.weight");
  EXPECT_THROW(outer(soma::randn({5, 2})), soma::Error);  // 4 features into Linear(2 -> 3)
  const std::string s =
      nn::Sequential(nn::Sequential(nn::Linear(2, 4), nn::Tanh()), nn::Linear(4, 1))
          .summary({3, 2});
  EXPECT_CONTAINS(s, "0.0");
  EXPECT_CONTAINS(s, "[3, 4]");
  EXPECT_CONTAINS(s, "[3, 1]");
}

TEST(ModuleList, LoopAndNames) {
  soma::manual_seed(0);
  nn::ModuleList layers(nn::Linear(4, 4), nn::Linear(4, 4), nn::Linear(4, 2));
  EXPECT_EQ(layers.size(), 3u);
  Tensor x = soma::randn({3, 4});
  int count = 0;
  for (const auto& [name, layer] : layers) {
    EXPECT_EQ(name, std::to_string(count++));
    x = (*layer)(x);
  }
  EXPECT_EQ(x.shape(), (Shape{3, 2}));
  EXPECT_EQ(layers[-1].describe(), "Linear(4 -> 2)");
  EXPECT_EQ(layers.parameters().size(), 6u);
  EXPECT_THROW(layers(x), soma::Error);  // a ModuleList has no forward

  struct Stack : nn::Module {
    std::shared_ptr<nn::ModuleList> blocks;
    Stack() {
      blocks = register_module("blocks", nn::ModuleList(nn::Linear(2, 2), nn::Linear(2, 2)));
    }
  } stack;
  EXPECT_EQ(names_of(stack.named_parameters())[2], "blocks.1.weight");
}

TEST(Module, CustomDenseLayerInSequential) {
  soma::manual_seed(0);
  nn::Sequential model(MyDenseLayer(2, 4), nn::Linear(4, 3));
  EXPECT_EQ(model.parameters().size(), 4u);
  EXPECT_EQ(model.parameters()[0].impl(), model.at<MyDenseLayer>(0).w.impl());
  EXPECT_EQ(model.parameters()[1].impl(), model.at<MyDenseLayer>(0).b.impl());
  std::vector<std::string> keys;
  for (const auto& [k, t] : model.state_dict()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"0.b", "0.w", "1.bias", "1.weight"}));
  EXPECT_EQ(model.state_dict().at("0.w").shape(), (Shape{2, 4}));
  EXPECT_EQ(model.state_dict().at("0.b").shape(), (Shape{1, 4}));
  EXPECT_EQ(model.num_parameters(), 2 * 4 + 4 + 4 * 3 + 3);
  EXPECT_CONTAINS(model[0].describe(), "MyDenseLayer");
  EXPECT_CONTAINS(model.summary({1, 2}), "MyDenseLayer");

  const Tensor x = soma::randn({5, 2});
  F::cross_entropy(model(x), soma::tensor(std::vector<int64_t>{0, 1, 2, 1, 0}, {5})).backward();
  EXPECT_EQ(model.at<MyDenseLayer>(0).w.grad().shape(), (Shape{2, 4}));

  soma::manual_seed(1);
  nn::Sequential copy(MyDenseLayer(2, 4), nn::Linear(4, 3));
  copy.load_state_dict(model.state_dict());
  EXPECT_EQ(copy(x).to_vector<float>(), model(x).to_vector<float>());
  EXPECT_THROW(nn::Module().forward(x), soma::Error);
}

// Like PyTorch's repr (the class's __name__): a user-defined module is printed by its bare class
// name, without namespaces such as "(anonymous namespace)::" or "app::".
TEST(Module, DescribeIsTheBareClassName) {
  EXPECT_EQ(MyDenseLayer(2, 3).describe(), "MyDenseLayer");
  EXPECT_EQ(Encoder().describe(), "Encoder");
  std::ostringstream os;
  os << AutoEncoder();
  EXPECT_CONTAINS(os.str(), "AutoEncoder(\n  (encoder): Encoder(\n");
}

// A module registered under two names (tied weights): like PyTorch, parameters() and
// num_parameters() count each tensor once (else gradient descent would update it twice), while
// the state dict keeps both names.
TEST(Module, SharedSubmoduleParametersAreListedOnce) {
  struct Tied : nn::Module {
    std::shared_ptr<nn::Linear> a, b;
    Tied() {
      a = register_module("a", std::make_shared<nn::Linear>(2, 2));
      b = register_module("b", a);
    }
  } tied;
  EXPECT_EQ(tied.parameters().size(), 2u);
  EXPECT_EQ(tied.num_parameters(), 6);
  EXPECT_EQ(tied.state_dict().size(), 4u);
}

TEST(Module, CopiesShareParameters) {
  nn::Linear a(2, 2);
  nn::Linear b = a;
  EXPECT_EQ(a.weight.impl(), b.weight.impl());
  EXPECT_EQ(a.parameters()[0].impl(), b.parameters()[0].impl());
}

// ---- loss argument errors -------------------------------------------------------------------

TEST(NnLossErrors, CrossEntropyTargetOutOfRange) {
  const Tensor logits = soma::randn({3, 10});
  std::string msg = error_of([&] {
    F::cross_entropy(logits, soma::tensor(std::vector<int64_t>{1, 10, 2}, {3}));
  });
  EXPECT_CONTAINS(msg, "cross_entropy");
  EXPECT_CONTAINS(msg, "10");
  EXPECT_CONTAINS(msg, "target 10");
  EXPECT_CONTAINS(error_of([&] {
                    F::cross_entropy(logits, soma::tensor(std::vector<int64_t>{1, -1, 2}, {3}));
                  }),
                  "-1");
  EXPECT_CONTAINS(error_of([&] {
                    F::nll_loss(logits, soma::tensor(std::vector<int64_t>{1, 2, 12}, {3}));
                  }),
                  "12");
  EXPECT_CONTAINS(error_of([&] {
                    F::cross_entropy(logits, soma::tensor(std::vector<int64_t>{1, 2}, {2}));
                  }),
                  "[3, 10]");
  F::CrossEntropyOptions smoothing;
  smoothing.label_smoothing = 1.5;
  EXPECT_CONTAINS(
      error_of([&] {
        F::cross_entropy(logits, soma::tensor(std::vector<int64_t>{1, 2, 3}, {3}), smoothing);
      }),
      "1.5");
}

TEST(NnLossErrors, BinaryCrossEntropyTargetOutOfRange) {
  const Tensor p = soma::full({2, 2}, 0.5);
  const Tensor t = soma::tensor({0.0f, 1.0f, 1.5f, 0.0f}, {2, 2});
  EXPECT_CONTAINS(error_of([&] { F::binary_cross_entropy(p, t); }), "1.5");
  const Tensor bad_p = soma::tensor({0.5f, 1.25f, 0.5f, 0.5f}, {2, 2});
  EXPECT_CONTAINS(error_of([&] { F::binary_cross_entropy(bad_p, soma::zeros({2, 2})); }), "1.25");
}

TEST(NnLossErrors, MseShapeMismatchNamesBothShapes) {
  const std::string msg = error_of([] { F::mse_loss(soma::zeros({2, 3}), soma::zeros({3, 2})); });
  EXPECT_CONTAINS(msg, "mse_loss");
  EXPECT_CONTAINS(msg, "[2, 3]");
  EXPECT_CONTAINS(msg, "[3, 2]");
  EXPECT_CONTAINS(error_of([] { F::l1_loss(soma::zeros({4}), soma::zeros({5})); }), "[5]");
}

// ---- DESIGN.md's public-API snippet ---------------------------------------------------------
// Compiled as written, except soma::save/load (commented out until the io layer lands). The
// DataLoader is a vector of random (xb, yb) batches.
TEST(NnDesignSnippet, RunsUnchanged) {
  std::vector<std::pair<soma::Tensor, soma::Tensor>> loader;
  soma::manual_seed(123);
  for (int i = 0; i < 3; ++i)
    loader.emplace_back(soma::randn({16, 784}), soma::randint(0, 10, {16}));
  const soma::Tensor X = soma::randn({6, 784});
  const soma::Tensor idx = soma::tensor(std::vector<int64_t>{4, 0, 2}, {3});

  std::vector<float> losses;
  // clang-format off
  // ---- DESIGN.md, verbatim from here ---------------------------------------------------------
  soma::manual_seed(0);
  soma::Tensor x = soma::tensor(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});   // row-major
  soma::Tensor w = soma::randn({3, 4}).requires_grad_(true);
  soma::Tensor y = soma::relu(soma::matmul(x, w) + soma::ones({4}));        // broadcasting
  soma::Tensor loss = y.sum();
  loss.backward();
  std::vector<float> g = w.grad().to_vector<float>();
  { soma::NoGradGuard no_grad; /* inference */ }

  nn::Sequential model(nn::Linear(784, 256), nn::ReLU(), nn::Dropout(0.5),
                       nn::Linear(256, 128), nn::ReLU(), nn::Linear(128, 10));
  soma::optim::Adam opt(model.parameters(), {.lr = 1e-3});
  for (auto& [xb, yb] : loader) {          // soma::data::DataLoader
    soma::Tensor loss = F::cross_entropy(model.forward(xb), yb);   // yb: int64 class ids
    opt.zero_grad();
    loss.backward();
    opt.step();
    losses.push_back(loss.item<float>());  // (not in the snippet: checked below)
  }
  soma::save(model, "model.safetensors");   // names = named_parameters(): "0.weight", "0.bias", ...
  soma::load(model, "model.safetensors");   // shapes and names checked

  // Manual gradient descent, as in the lecture
  { soma::NoGradGuard g; for (auto& p : model.parameters()) p.sub_(p.grad() * 0.1f); }
  soma::Tensor batch = soma::index_select(X, 0, idx);   // idx: int64 [B]; also X.index_select(0, idx)
  soma::Tensor wt = w.t();                              // transpose of a 2-D tensor (a view)
  // ---- end of DESIGN.md --------------------------------------------------------------------
  // clang-format on

  EXPECT_EQ(g.size(), 12u);
  EXPECT_EQ(losses.size(), 3u);
  for (float l : losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_EQ(names_of(model.named_parameters())[0], "0.weight");
  EXPECT_EQ(names_of(model.named_parameters())[5], "5.bias");
  EXPECT_EQ(batch.shape(), (Shape{3, 784}));
  EXPECT_EQ(batch.to_vector<float>(), X.index_select(0, idx).to_vector<float>());
  EXPECT_EQ(wt.shape(), (Shape{4, 3}));
  model.eval();
  EXPECT_EQ(model(X).shape(), (Shape{6, 10}));

  nn::Sequential custom(MyDenseLayer(784, 32), nn::Linear(32, 10));
  EXPECT_EQ(custom(X).shape(), (Shape{6, 10}));
  std::remove("model.safetensors");
}

}  // namespace

// ---- nn::Linear at batch 1-4 under no grad: the packed kernel (kernels/cpu/small_gemm.h) -----
namespace {

Tensor gemm_linear(const nn::Linear& lin, const Tensor& x) {
  soma::NoGradGuard no_grad;
  return F::linear(x, lin.weight, lin.bias);  // the GEMM path, whatever the batch
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto g = got.to_vector<float>(), w = want.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i)
    ASSERT_NEAR(g[i], w[i], 1e-5 * (1 + std::abs(w[i]))) << what << ", element " << i;
}

// Whether this process runs the packed kernel (an AVX-512 CPU, no cap or backend against it).
bool packs() {
  const std::string b = soma::kernels::Kernel<soma::kernels::LinearSmallF32>::selected_backend();
  return b == "avx512" || b == "reference";
}

// lin(x) under no grad, twice, each checked against the GEMM path. `first` / `second`: whether
// each call must take the packed kernel (on a CPU that runs it): the first sighting of a weight
// (a new one, or one changed since) runs the GEMM, the second packs.
void check_calls(nn::Linear& lin, const Tensor& x, bool first, bool second,
                 const std::string& what) {
  soma::NoGradGuard no_grad;
  const bool expect[2] = {first, second};
  for (int call = 0; call < 2; ++call) {
    const int64_t before = soma::detail::small_linear_run_count();
    const std::string label = what + (call == 0 ? ", first call" : ", second call");
    expect_close(lin(x), gemm_linear(lin, x), label);
    EXPECT_EQ(soma::detail::small_linear_run_count() - before, expect[call] && packs() ? 1 : 0)
        << label << ": the path it took";
  }
}

// A weight soma sees for the first time (or changed): the GEMM, then the packed kernel.
void check_twice(nn::Linear& lin, const Tensor& x, bool packed, const std::string& what) {
  check_calls(lin, x, false, packed, what);
}

}  // namespace

TEST(LinearSmallBatch, MatchesTheGemmPathForEveryShape) {
  soma::manual_seed(11);
  for (bool bias : {true, false})
    for (auto [in, out] : {std::pair<int64_t, int64_t>{300, 37}, {784, 256}}) {
      nn::Linear lin(in, out, {.bias = bias});
      check_twice(lin, soma::randn({1, in}), true, "a new weight");
      // The weight is packed now: every shape of 1-4 rows takes the kernel at once.
      for (const Shape& s :
           {Shape{in}, Shape{2, in}, Shape{3, in}, Shape{4, in}, Shape{2, 2, in}, Shape{1, 1, in}})
        check_calls(lin, soma::randn(s), true, true, "input " + soma::shape_str(s));
      check_calls(lin, soma::randn({5, in}), false, false, "5 rows (the GEMM)");
      check_calls(lin, soma::randn({in, 2}).t(), true, true, "transposed input");
    }
}

TEST(LinearSmallBatch, FollowsEveryWeightChangeSomaSees) {
  soma::manual_seed(12);
  nn::Linear lin(64, 40);
  const Tensor x = soma::randn({1, 64});
  check_twice(lin, x, true, "fresh");
  {
    soma::NoGradGuard no_grad;
    lin.weight.mul_(2.0);
  }
  check_twice(lin, x, true, "after mul_");
  soma::optim::SGD opt(lin.parameters(), {.lr = 0.5});
  for (int step = 0; step < 2; ++step) {
    opt.zero_grad();
    soma::sum(lin(soma::randn({8, 64}))).backward();
    opt.step();
    check_twice(lin, x, true, "after SGD step " + std::to_string(step));
  }
  nn::Linear other(64, 40);
  lin.load_state_dict(other.state_dict());
  check_twice(lin, x, true, "after load_state_dict");
  {
    soma::NoGradGuard no_grad;
    lin.weight.copy_(soma::randn({40, 64}));
    lin.bias.fill_(0.25);
  }
  check_twice(lin, x, true, "after copy_ and fill_");
  // A clone has its own weights: changing them leaves the original's results alone.
  auto copy = std::dynamic_pointer_cast<nn::Linear>(lin.clone());
  ASSERT_NE(copy, nullptr);
  {
    soma::NoGradGuard no_grad;
    copy->weight.zero_();
  }
  check_twice(*copy, x, true, "the zeroed clone");
  check_calls(lin, x, true, true, "the original after its clone changed (still packed)");
  // Other views of the same memory (same storage, version and offset): a transpose, and a
  // [16, 16] window of a [16, 64] block against one of a [64, 16] view of it.
  nn::Linear square(16, 16);
  const Tensor xs = soma::randn({1, 16});
  check_twice(square, xs, true, "square");
  square.weight = square.weight.t();
  check_twice(square, xs, true, "the transposed weight");
  const Tensor block = soma::randn({16, 64});
  square.weight = block.narrow(1, 0, 16);
  check_twice(square, xs, true, "a window of a [16, 64] block");
  square.weight = block.view({64, 16}).narrow(0, 0, 16);
  check_twice(square, xs, true, "the same memory as [64, 16] rows");
}

TEST(LinearSmallBatch, MemoryHandedOutIsNotPacked) {
  soma::manual_seed(13);
  nn::Linear lin(48, 24);
  const Tensor x = soma::randn({1, 48});
  check_twice(lin, x, true, "fresh");
  // A share in progress (a NumPy array over the weight): written behind soma's back.
  soma::begin_external_share(lin.weight);
  lin.weight.data<float>()[5] += 1.0f;
  check_twice(lin, x, false, "while shared");
  lin.weight.data<float>()[6] += 1.0f;
  soma::end_external_share(lin.weight);
  check_twice(lin, x, true, "after the share ended");
  // A share for good.
  soma::mark_shared_externally(lin.weight);
  lin.weight.data<float>()[7] += 1.0f;
  check_twice(lin, x, false, "after mark_shared_externally");
  // from_blob weights: the caller's memory.
  std::vector<float> mem(24 * 48, 0.01f);
  nn::Linear blob(48, 24);
  blob.weight = soma::from_blob(mem.data(), {24, 48});
  check_twice(blob, x, false, "from_blob");
  mem[7] = 3.0f;
  check_twice(blob, x, false, "after the caller changed from_blob memory");
}

TEST(LinearSmallBatch, AGradModeForwardDropsThePack) {
  soma::manual_seed(15);
  nn::Linear lin(32, 8);
  const Tensor x = soma::randn({1, 32});
  check_twice(lin, x, true, "packed");
  (void)lin(x);  // grad mode: the GEMM, and the pack is dropped
  check_twice(lin, x, true, "after a grad-mode forward");
}

TEST(LinearSmallBatch, AnUnmatchedShareEndIsAnError) {
  nn::Linear lin(4, 2);
  EXPECT_THROW(soma::end_external_share(lin.weight), soma::Error);
  soma::begin_external_share(lin.weight);
  soma::end_external_share(lin.weight);
  EXPECT_THROW(soma::end_external_share(lin.weight), soma::Error);
}

TEST(LinearSmallBatch, GradModeAndOtherDtypesTakeTheGemm) {
  soma::manual_seed(14);
  nn::Linear lin(32, 8);
  const Tensor x = soma::randn({1, 32});
  const int64_t before = soma::detail::small_linear_run_count();
  const Tensor y1 = lin(x), y2 = lin(x);
  EXPECT_TRUE(y2.requires_grad());
  soma::sum(y2).backward();
  ASSERT_TRUE(lin.weight.grad().defined());
  EXPECT_EQ(soma::detail::small_linear_run_count(), before);
  check_twice(lin, x, true, "no grad");
  lin.to(soma::kFloat64);
  soma::NoGradGuard no_grad;
  const Tensor x64 = x.to(soma::kFloat64);
  const int64_t before64 = soma::detail::small_linear_run_count();
  (void)lin(x64);
  (void)lin(x64);
  EXPECT_EQ(soma::detail::small_linear_run_count(), before64);
}
