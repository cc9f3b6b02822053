// Custom autograd functions (autograd::Function<T>) and module forward hooks.
#include <gtest/gtest.h>

#include "autograd/node.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
namespace ag = soma::autograd;
using ag::AutogradContext;
using ag::variable_list;

// y = x * c with a constant c (the libtorch documentation's example).
struct MulConstant : ag::Function<MulConstant> {
  static Tensor forward(AutogradContext* ctx, Tensor x, double c) {
    ctx->saved_data["c"] = c;
    return x * c;
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    return {g[0] * ctx->saved_data["c"].toDouble(), Tensor()};
  }
};

// y = x * w + x^3 with the gradient written with soma's ops (so it is twice differentiable).
struct Cubic : ag::Function<Cubic> {
  static Tensor forward(AutogradContext* ctx, Tensor x, Tensor w) {
    ctx->save_for_backward({x, w});
    return x * w + x * x * x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    auto s = ctx->get_saved_variables();
    const Tensor& x = s[0];
    const Tensor& w = s[1];
    return {g[0] * (w + x * x * 3.0), g[0] * x};
  }
};

// exp(x), saving its output: the saved output is re-attached for double backward.
struct MyExp : ag::Function<MyExp> {
  static Tensor forward(AutogradContext* ctx, Tensor x) {
    Tensor y = soma::exp(x);
    ctx->save_for_backward({y});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    return {g[0] * ctx->saved_tensors()[0]};
  }
};

// Two outputs, one of them an integer index that gets no gradient.
struct MaxWithIndex : ag::Function<MaxWithIndex> {
  static variable_list forward(AutogradContext* ctx, Tensor x) {
    Tensor i = soma::argmax(x);
    Tensor v = soma::max(x);
    ctx->save_for_backward({x});
    ctx->saved_data["i"] = i.item<int64_t>();
    ctx->mark_non_differentiable({i});
    return {v, i};
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    Tensor x = ctx->saved_tensors()[0];
    Tensor onehot = soma::zeros_like(x);
    {
      soma::NoGradGuard ng;
      onehot.data<double>()[ctx->saved_data["i"].toInt()] = 1.0;
    }
    return {onehot * g[0]};
  }
};

struct TwoOutputs : ag::Function<TwoOutputs> {
  static variable_list forward(AutogradContext*, Tensor x) { return {x * 2.0, x * 3.0}; }
  static variable_list backward(AutogradContext*, variable_list g) { return {g[0] + g[1]}; }
};

TEST(CustomFunction, TwoDifferentiableOutputsAreRefused) {
  Tensor x = soma::ones({2}, soma::kFloat64).requires_grad_();
  EXPECT_THROW(TwoOutputs::apply(x), soma::Error);
}

struct Identity : ag::Function<Identity> {
  static Tensor forward(AutogradContext*, Tensor x) { return x; }
  static variable_list backward(AutogradContext*, variable_list g) { return {g[0] * 2.0}; }
};

struct WrongCount : ag::Function<WrongCount> {
  static Tensor forward(AutogradContext*, Tensor x) { return x * 1.0; }
  static variable_list backward(AutogradContext*, variable_list g) { return {g[0], g[0]}; }
};

Tensor dvec(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return soma::tensor(std::move(v), {n});
}

TEST(CustomFunction, ForwardAndBackwardWithANonTensorArgument) {
  Tensor x = dvec({1, 2, 3}).requires_grad_();
  Tensor y = MulConstant::apply(x, 2.5);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{2.5, 5, 7.5}));
  ASSERT_NE(y.grad_fn(), nullptr);
  EXPECT_NE(std::string(y.grad_fn()->name).find("MulConstant"), std::string::npos);
  y.sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.5, 2.5, 2.5}));
}

TEST(CustomFunction, Gradcheck) {
  Tensor x = soma::randn({4}, soma::kFloat64).requires_grad_();
  Tensor w = soma::randn({4}, soma::kFloat64).requires_grad_();
  auto f = [](const std::vector<Tensor>& in) { return Cubic::apply(in[0], in[1]); };
  EXPECT_TRUE(ag::gradcheck(f, {x, w}));
  EXPECT_TRUE(ag::gradgradcheck(f, {x, w}));
}

TEST(CustomFunction, SavedOutputSupportsDoubleBackward) {
  Tensor x = soma::randn({3}, soma::kFloat64).requires_grad_();
  auto f = [](const std::vector<Tensor>& in) { return MyExp::apply(in[0]); };
  EXPECT_TRUE(ag::gradcheck(f, {x}));
  EXPECT_TRUE(ag::gradgradcheck(f, {x}));
  // No cycle through the saved output: the graph dies with its tensors.
  const int64_t before = ag::live_node_count();
  { Tensor y = MyExp::apply(x).sum(); }
  EXPECT_EQ(ag::live_node_count(), before);
}

TEST(CustomFunction, NonDifferentiableOutput) {
  Tensor x = dvec({1, 5, 3}).requires_grad_();
  variable_list out = MaxWithIndex::apply(x);
  EXPECT_TRUE(out[0].requires_grad());
  EXPECT_FALSE(out[1].requires_grad());
  EXPECT_EQ(out[1].item<int64_t>(), 1);
  out[0].backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1, 0}));
}

TEST(CustomFunction, ReturningTheInputDoesNotRewriteItsHistory) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor y = Identity::apply(x);
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(y.is_leaf());
  y.sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 2}));
}

TEST(CustomFunction, NoGraphWithoutGrad) {
  Tensor x = dvec({1, 2});
  Tensor y = MulConstant::apply(x, 3.0);
  EXPECT_FALSE(y.requires_grad());
}

TEST(CustomFunction, WrongGradientCountIsAnError) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor y = WrongCount::apply(x);
  try {
    y.sum().backward();
    FAIL() << "expected soma::Error";
  } catch (const soma::Error& e) {
    EXPECT_NE(std::string(e.what()).find("WrongCount"), std::string::npos) << e.what();
  }
}

TEST(CustomFunction, InPlaceChangeOfASavedTensorIsCaught) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor w = dvec({3, 4});
  Tensor y = Cubic::apply(x, w);
  {
    soma::NoGradGuard ng;
    w.add_(1.0);
  }
  EXPECT_THROW(y.sum().backward(), soma::Error);
}

TEST(ModuleHooks, FireThroughSequentialAndReplaceValues) {
  soma::manual_seed(1);
  soma::nn::Sequential model(soma::nn::Linear(3, 4), soma::nn::ReLU(), soma::nn::Linear(4, 2));
  std::vector<std::string> calls;
  auto first = model.children()[0];
  const unsigned pre = first->register_forward_pre_hook(
      [&](soma::nn::Module& m, const Tensor&) { calls.push_back("pre " + m.describe()); });
  const unsigned post = model.children()[2]->register_forward_hook(
      [&](soma::nn::Module&, const Tensor&, const Tensor& y) { return y * 0.0; });
  Tensor out = model(soma::randn({5, 3}));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], "pre " + first->describe());
  EXPECT_EQ(out.abs().sum().item<float>(), 0.0f);
  model.children()[2]->remove_hook(post);
  first->remove_hook(pre);
  EXPECT_THROW(first->remove_hook(pre), soma::Error);
  out = model(soma::randn({5, 3}));
  EXPECT_GT(out.abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(calls.size(), 1u);
}

TEST(ModuleHooks, FireInsideFit) {
  soma::manual_seed(2);
  soma::nn::Sequential model(soma::nn::Linear(2, 2));
  int64_t rows = 0;
  model.register_forward_hook(
      [&](soma::nn::Module&, const Tensor& x, const Tensor&) { rows += x.size(0); });
  Tensor x = soma::randn({8, 2});
  Tensor y = soma::randint(0, 2, {8});
  soma::data::TensorDataset ds(x, y);
  soma::data::DataLoader loader(ds, {.batch_size = 4});
  soma::optim::SGD opt(model.parameters(), soma::optim::SGDOptions{.lr = 0.1});
  soma::train::fit(
      model, opt,
      [](const Tensor& o, const Tensor& t) { return soma::nn::functional::cross_entropy(o, t); },
      loader, {.epochs = 2});
  EXPECT_EQ(rows, 16);
}

TEST(ModuleHooks, PreHookReplacesTheInputAndCloneDropsHooks) {
  soma::nn::Linear lin(2, 2);
  lin.register_forward_pre_hook([](soma::nn::Module&, const Tensor& x) { return x * 0.0; });
  Tensor out = lin(soma::ones({1, 2}));
  EXPECT_EQ(out.to_vector<float>(), lin.bias.to_vector<float>());
  auto copy = lin.clone();
  Tensor out2 = (*copy)(soma::ones({1, 2}));
  EXPECT_NE(out2.to_vector<float>(), lin.bias.to_vector<float>());
}

}  // namespace
