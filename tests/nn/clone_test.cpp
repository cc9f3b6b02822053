// Module::clone() (deep copy, nn::Cloneable<T>) and the copy semantics of modules (a copy is
// another handle to the same state, like libtorch's ModuleHolder). DESIGN.md, "Copy semantics".
//
// Regression: copying a Sequential shared its children but not its training flag, so after
// `m2 = m; m2.eval()` m said it was training while its Dropout was in eval mode; and there was
// no clone().
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace {

namespace nn = soma::nn;
using soma::Tensor;

// The lecture's MyDenseLayer, made cloneable the libtorch way: parameters created in reset().
struct MyDenseLayer : nn::Cloneable<MyDenseLayer> {
  int64_t in, out;
  soma::Tensor w, b;
  MyDenseLayer(int64_t in, int64_t out) : in(in), out(out) { reset(); }
  void reset() override {
    w = register_parameter("w", soma::randn({in, out}));
    b = register_parameter("b", soma::randn({1, out}));
  }
  soma::Tensor forward(const soma::Tensor& x) override {
    return soma::relu(soma::matmul(x, w) + b);
  }
};

// The same layer as in DESIGN.md, deriving from plain nn::Module: not cloneable.
struct PlainDense : nn::Module {
  soma::Tensor w;
  PlainDense() { w = register_parameter("w", soma::randn({2, 2})); }
  soma::Tensor forward(const soma::Tensor& x) override { return soma::matmul(x, w); }
};

// A buffer, a submodule held as a member, and a non-trainable parameter.
struct Block : nn::Cloneable<Block> {
  std::shared_ptr<nn::Linear> fc;
  Tensor shift, frozen;
  void reset() override {
    fc = register_module("fc", nn::Linear(3, 2));
    shift = register_buffer("shift", soma::zeros({2}));
    frozen = register_parameter("frozen", soma::ones({2}), /*requires_grad=*/false);
  }
  Block() { reset(); }
  Tensor forward(const Tensor& x) override { return (*fc)(x) + shift + frozen; }
};

// Registers its parameter in the constructor, not in reset(): clone() must say so.
struct BadReset : nn::Cloneable<BadReset> {
  Tensor w;
  BadReset() { w = register_parameter("w", soma::ones({2})); }
  void reset() override {}
};

std::vector<float> values(const Tensor& t) {
  return t.to_vector<float>();
}

TEST(Clone, MyDenseLayerIsIndependent) {
  soma::manual_seed(0);
  MyDenseLayer layer(3, 4);
  const std::vector<float> w0 = values(layer.w), b0 = values(layer.b);
  const std::string rng = soma::get_rng_state();
  std::shared_ptr<nn::Module> base = layer.clone();
  EXPECT_EQ(soma::get_rng_state(), rng) << "clone() changed the random generator";
  auto copy = std::dynamic_pointer_cast<MyDenseLayer>(base);
  ASSERT_NE(copy, nullptr);
  // New tensors with the same values; the copy's members are its registered parameters.
  EXPECT_NE(copy->w.impl(), layer.w.impl());
  EXPECT_NE(copy->b.impl(), layer.b.impl());
  EXPECT_EQ(copy->named_parameters()[0].second.impl(), copy->w.impl());
  EXPECT_EQ(copy->named_parameters()[1].second.impl(), copy->b.impl());
  EXPECT_EQ(values(copy->w), w0);
  EXPECT_EQ(values(copy->b), b0);
  for (const Tensor& p : copy->parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_TRUE(p.is_leaf());
    EXPECT_FALSE(p.grad().defined());
  }
  // Changing the clone leaves the original alone, and the clone's forward uses its own w and b.
  {
    soma::NoGradGuard no_grad;
    copy->w.fill_(0.5);
    copy->b.fill_(-1.0);
  }
  EXPECT_EQ(values(layer.w), w0);
  EXPECT_EQ(values(layer.b), b0);
  const Tensor x = soma::ones({2, 3});
  EXPECT_EQ(values((*copy)(x)), std::vector<float>(8, 0.5f));  // relu(3 * 0.5 - 1)
  EXPECT_EQ(values(layer(x)), values(soma::relu(soma::matmul(x, layer.w) + layer.b)));
  // Gradients go to the clone's tensors only.
  (*copy)(x).sum().backward();
  EXPECT_TRUE(copy->w.grad().defined());
  EXPECT_FALSE(layer.w.grad().defined());
}

TEST(Clone, SequentialWithCustomLayer) {
  soma::manual_seed(1);
  nn::Sequential model(MyDenseLayer(3, 4), nn::Dropout(0.5), nn::Linear(4, 2));
  auto copy = std::dynamic_pointer_cast<nn::Sequential>(model.clone());
  ASSERT_NE(copy, nullptr);
  ASSERT_EQ(copy->size(), 3u);
  EXPECT_EQ(copy->ptr(0) == model.ptr(0), false);
  EXPECT_EQ(copy->at<MyDenseLayer>(0).w.impl(), copy->named_parameters()[0].second.impl());
  EXPECT_NE(copy->at<MyDenseLayer>(0).w.impl(), model.at<MyDenseLayer>(0).w.impl());
  EXPECT_NE(copy->at<nn::Linear>(2).weight.impl(), model.at<nn::Linear>(2).weight.impl());
  const auto a = model.named_parameters(), b = copy->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(values(a[i].second), values(b[i].second)) << a[i].first;
    EXPECT_NE(a[i].second.impl(), b[i].second.impl()) << a[i].first;
  }
  // Same outputs in eval mode; then the clone's weights change and the original's do not.
  model.eval();
  copy->eval();
  const Tensor x = soma::randn({5, 3});
  EXPECT_EQ(values((*copy)(x)), values(model(x)));
  {
    soma::NoGradGuard no_grad;
    copy->at<nn::Linear>(2).weight.fill_(0.0);
    copy->at<nn::Linear>(2).bias.fill_(0.25);
  }
  EXPECT_EQ(values((*copy)(x)), std::vector<float>(10, 0.25f));
  EXPECT_NE(values(model(x)), std::vector<float>(10, 0.25f));
}

TEST(Clone, TrainingFlagIsCopiedAndIndependent) {
  nn::Sequential model(nn::Linear(2, 2), nn::Dropout(0.5));
  model.eval();
  auto copy = model.clone();
  EXPECT_FALSE(copy->is_training());
  EXPECT_FALSE(copy->children()[1]->is_training());
  copy->train();
  EXPECT_TRUE(copy->is_training());
  EXPECT_TRUE(copy->children()[1]->is_training());
  EXPECT_FALSE(model.is_training());
  EXPECT_FALSE(model[1].is_training());
  model.train();
  copy->eval();
  EXPECT_TRUE(model.is_training());
  EXPECT_TRUE(model[1].is_training());
}

TEST(Clone, BuffersSubmodulesAndFrozenParameters) {
  Block block;
  {
    soma::NoGradGuard no_grad;
    block.shift.fill_(2.0);
    block.frozen.fill_(3.0);
  }
  auto copy = std::dynamic_pointer_cast<Block>(block.clone());
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(values(copy->shift), std::vector<float>(2, 2.0f));
  EXPECT_NE(copy->shift.impl(), block.shift.impl());
  EXPECT_EQ(copy->named_buffers()[0].second.impl(), copy->shift.impl());
  EXPECT_FALSE(copy->frozen.requires_grad());
  EXPECT_EQ(values(copy->frozen), std::vector<float>(2, 3.0f));
  // The member fc is the registered child, a deep copy of the original's.
  ASSERT_EQ(copy->children().size(), 1u);
  EXPECT_EQ(copy->children()[0].get(), copy->fc.get());
  EXPECT_NE(copy->fc.get(), block.fc.get());
  EXPECT_NE(copy->fc->weight.impl(), block.fc->weight.impl());
  EXPECT_EQ(values(copy->fc->weight), values(block.fc->weight));
  for (const auto& [name, p] : copy->named_parameters()) {
    if (name == "fc.weight") {
      EXPECT_EQ(p.impl(), copy->fc->weight.impl());
    }
  }
  const Tensor x = soma::randn({4, 3});
  EXPECT_EQ(values((*copy)(x)), values(block(x)));
  {
    soma::NoGradGuard no_grad;
    copy->shift.fill_(0.0);
  }
  EXPECT_EQ(values(block.shift), std::vector<float>(2, 2.0f));
  // Converted dtypes are kept.
  block.to(soma::kFloat64);
  EXPECT_EQ(block.clone()->parameters()[0].dtype(), soma::kFloat64);
}

TEST(Clone, UncloneableModulesAreErrors) {
  PlainDense plain;
  try {
    plain.clone();
    ADD_FAILURE() << "clone() of a plain Module did not throw";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("PlainDense"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Cloneable"), std::string::npos) << e.what();
  }
  nn::Sequential seq(nn::Linear(2, 2), PlainDense());
  EXPECT_THROW(seq.clone(), soma::Error);
  BadReset bad;
  try {
    bad.clone();
    ADD_FAILURE() << "clone() with parameters outside reset() did not throw";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("reset()"), std::string::npos) << e.what();
  }
}

TEST(Clone, EveryBuiltInModuleClones) {
  std::vector<std::shared_ptr<nn::Module>> modules = {
      std::make_shared<nn::Linear>(2, 3),       std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Sigmoid>(),          std::make_shared<nn::Tanh>(),
      std::make_shared<nn::LeakyReLU>(0.2),     std::make_shared<nn::GELU>(),
      std::make_shared<nn::Softmax>(1),         std::make_shared<nn::LogSoftmax>(1),
      std::make_shared<nn::Identity>(),         std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Dropout>(0.3),       std::make_shared<nn::ModuleList>(nn::Linear(2, 2)),
      std::make_shared<nn::MSELoss>(),          std::make_shared<nn::L1Loss>(),
      std::make_shared<nn::BCELoss>(),          std::make_shared<nn::BCEWithLogitsLoss>(),
      std::make_shared<nn::CrossEntropyLoss>(), std::make_shared<nn::NLLLoss>()};
  for (const auto& m : modules) {
    auto c = m->clone();
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->describe(), m->describe());
    EXPECT_EQ(typeid(*c), typeid(*m)) << m->describe();
    EXPECT_EQ(c->num_parameters(), m->num_parameters());
  }
  nn::Linear nobias(2, 3, {.bias = false});
  EXPECT_EQ(nobias.clone()->parameters().size(), 1u);
}

// Copying a module gives another handle to the same state (libtorch ModuleHolder semantics).
TEST(CopySemantics, CopiedSequentialSharesStateAndMode) {
  nn::Sequential m(nn::Linear(3, 2), nn::Dropout(0.5));
  nn::Sequential m2 = m;
  m2.eval();
  EXPECT_FALSE(m.is_training());  // was true before: m said training, its Dropout did not
  EXPECT_FALSE(m[1].is_training());
  EXPECT_EQ(m.is_training(), m[1].is_training());
  m.train();
  EXPECT_TRUE(m2.is_training());
  EXPECT_TRUE(m2[1].is_training());
  EXPECT_EQ(m.ptr(0), m2.ptr(0));
  EXPECT_EQ(m.parameters()[0].impl(), m2.parameters()[0].impl());
  // A layer copied into a container is the same layer.
  nn::Dropout d(0.5);
  nn::Sequential s(d);
  s.eval();
  EXPECT_FALSE(d.is_training());
  // A moved-from module is still usable.
  nn::Sequential moved = std::move(m2);
  EXPECT_TRUE(moved.is_training());
  EXPECT_NO_THROW(m2.train());
}

}  // namespace
