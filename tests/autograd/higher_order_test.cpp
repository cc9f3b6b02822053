// autograd::grad, create_graph (higher-order derivatives), autograd::backward with several
// roots, tensor hooks, retain_grad, and the graph's lifetime (live-node count).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/node.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;
namespace ag = soma::autograd;

Tensor dvec(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return soma::tensor(std::move(v), {n});
}

TEST(AutogradGrad, ReturnsGradientsWithoutAccumulating) {
  Tensor x = dvec({1, 2, 3}).requires_grad_();
  Tensor w = dvec({0.5, -1, 2}).requires_grad_();
  Tensor y = (x * w).sum();
  auto g = ag::grad({y}, {x, w});
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{0.5, -1, 2}));
  EXPECT_EQ(g[1].to_vector<double>(), (std::vector<double>{1, 2, 3}));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(g[0].requires_grad());
}

TEST(AutogradGrad, NonLeafInputGetsItsGradient) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor h = x * x;  // dh/dx = 2x
  Tensor y = (h * h).sum();
  auto g = ag::grad({y}, {h});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{2, 8}));  // 2h
  EXPECT_FALSE(x.grad().defined());
}

TEST(AutogradGrad, UnusedInputIsAnErrorUnlessAllowed) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor z = dvec({3, 4}).requires_grad_();
  Tensor y = (x * x).sum();
  EXPECT_THROW(ag::grad({y}, {x, z}, {}, true), soma::Error);
  auto g = ag::grad({y}, {x, z}, {}, true, false, true);
  EXPECT_TRUE(g[0].defined());
  EXPECT_FALSE(g[1].defined());
}

TEST(AutogradGrad, BadArgumentsAreErrors) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor c = dvec({1, 2});
  Tensor y = x * x;
  EXPECT_THROW(ag::grad({y}, {x}), soma::Error);  // non-scalar output without grad_outputs
  EXPECT_THROW(ag::grad({y}, {c}, {soma::ones_like(y)}), soma::Error);  // no requires_grad
  EXPECT_THROW(ag::grad({y}, {x}, {dvec({1, 2, 3})}), soma::Error);     // wrong shape
  EXPECT_THROW(ag::grad({c.sum()}, {x}), soma::Error);                  // output needs no grad
}

TEST(AutogradGrad, GradOutputsWeightTheOutputs) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor y = x * x;
  auto g = ag::grad({y}, {x}, {dvec({1, 10})});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{2, 40}));
}

TEST(AutogradGrad, SecondDerivativeOfACube) {
  Tensor x = dvec({1, 2, -3}).requires_grad_();
  Tensor y = (x * x * x).sum();
  Tensor dy = ag::grad({y}, {x}, {}, std::nullopt, true)[0];
  EXPECT_TRUE(dy.requires_grad());
  EXPECT_EQ(dy.to_vector<double>(), (std::vector<double>{3, 12, 27}));  // 3x^2
  auto d2 = ag::grad({dy.sum()}, {x});
  EXPECT_EQ(d2[0].to_vector<double>(), (std::vector<double>{6, 12, -18}));  // 6x
}

TEST(AutogradGrad, SecondDerivativeThroughASavedOutput) {
  // exp saves its output; d2/dx2 exp(x) = exp(x)
  Tensor x = dvec({0.5, -1.0}).requires_grad_();
  auto d1 = ag::grad({soma::exp(x).sum()}, {x}, {}, std::nullopt, true);
  auto d2 = ag::grad({d1[0].sum()}, {x});
  EXPECT_NEAR(d2[0].to_vector<double>()[0], std::exp(0.5), 1e-15);
  EXPECT_NEAR(d2[0].to_vector<double>()[1], std::exp(-1.0), 1e-15);
}

TEST(AutogradGrad, HessianVectorProductOfAQuadratic) {
  // f(x) = sum((x * x) * w) with w fixed: Hessian diag(2w); H v = 2 w v.
  Tensor x = dvec({1, 2, 3}).requires_grad_();
  Tensor w = dvec({1, -2, 0.5});
  Tensor v = dvec({1, 1, 2});
  auto g = ag::grad({(x * x * w).sum()}, {x}, {}, std::nullopt, true);
  auto hv = ag::grad({(g[0] * v).sum()}, {x});
  EXPECT_EQ(hv[0].to_vector<double>(), (std::vector<double>{2, -4, 2}));
}

TEST(AutogradBackward, CreateGraphKeepsTheGradientDifferentiable) {
  Tensor x = dvec({2}).requires_grad_();
  (x * x * x).sum().backward({}, std::nullopt, true);
  Tensor gx = x.grad();
  EXPECT_TRUE(gx.requires_grad());
  EXPECT_EQ(gx.item<double>(), 12);
  auto d2 = ag::grad({gx.sum()}, {x});
  EXPECT_EQ(d2[0].item<double>(), 12);  // 6x
  x.zero_grad();
}

TEST(AutogradBackward, SeveralRootsInOnePass) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor a = (x * x).sum();
  Tensor b = x * 3.0;
  ag::backward({a, b}, {Tensor(), dvec({1, 2})});
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2 + 3, 4 + 6}));
}

TEST(AutogradBackward, SecondBackwardWithoutRetainGraphIsAnError) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor y = (x * x).sum();
  ag::grad({y}, {x});
  EXPECT_THROW(ag::grad({y}, {x}), soma::Error);
}

TEST(TensorHooks, LeafHookReplacesTheGradient) {
  Tensor x = dvec({1, 2}).requires_grad_();
  const unsigned id = x.register_hook([](const Tensor& g) { return g * 2.0; });
  (x * x).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 8}));
  x.remove_hook(id);
  x.zero_grad();
  (x * x).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 4}));
  EXPECT_THROW(x.remove_hook(id), soma::Error);
}

TEST(TensorHooks, NonLeafHookSeesAndChangesTheFlowingGradient) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor h = x * 3.0;
  std::vector<double> seen;
  h.register_hook([&](const Tensor& g) { seen = g.to_vector<double>(); });
  h.register_hook([](const Tensor& g) { return g * 0.0 + 1.0; });
  (h * h).sum().backward();
  EXPECT_EQ(seen, (std::vector<double>{6, 12}));                         // 2h
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 3}));  // replaced by ones
}

TEST(TensorHooks, AutogradGradReturnsTheGradientBeforeTheInputsHooks) {
  // As torch.autograd.grad in PyTorch 1.13: a leaf input's hook does not change what grad()
  // returns; a non-leaf input's gradient is captured before its hook, while the hook's
  // replacement still flows on to the tensors behind it.
  Tensor x = dvec({1, 2}).requires_grad_();
  x.register_hook([](const Tensor& g) { return g * 10.0; });
  auto g = ag::grad({(x * x).sum()}, {x});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{2, 4}));
  Tensor w = dvec({1, 2}).requires_grad_();
  Tensor h = w * 1.0;
  h.register_hook([](const Tensor& gh) { return gh * 10.0; });
  auto gs = ag::grad({(h * h).sum()}, {h, w});
  EXPECT_EQ(gs[0].to_vector<double>(), (std::vector<double>{2, 4}));
  EXPECT_EQ(gs[1].to_vector<double>(), (std::vector<double>{20, 40}));
}

TEST(TensorHooks, AHookMayRemoveItself) {
  Tensor x = dvec({1, 2}).requires_grad_();
  unsigned id = 0;
  int calls = 0;
  id = x.register_hook([&](const Tensor&) {
    ++calls;
    x.remove_hook(id);
  });
  (x * x).sum().backward();
  (x * x).sum().backward();
  EXPECT_EQ(calls, 1);
}

TEST(AutogradBackward, CreateGraphGradIsNotTheCallersTensor) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor g = dvec({3, 4});
  (x + 0.0).backward(g, std::nullopt, true);  // add passes the gradient through
  EXPECT_NE(x.grad().data<double>(), g.data<double>());
  x.zero_grad();
}

TEST(TensorHooks, HookOnATensorWithoutGradIsAnError) {
  Tensor c = dvec({1});
  EXPECT_THROW(c.register_hook([](const Tensor& g) { return g; }), soma::Error);
}

TEST(TensorHooks, RetainGrad) {
  Tensor x = dvec({1, 2}).requires_grad_();
  Tensor h = x * x;
  Tensor k = x * 2.0;
  h.retain_grad();
  EXPECT_TRUE(h.retains_grad());
  EXPECT_FALSE(k.retains_grad());
  (h * 3.0 + k).sum().backward();
  ASSERT_TRUE(h.grad().defined());
  EXPECT_EQ(h.grad().to_vector<double>(), (std::vector<double>{3, 3}));
  EXPECT_FALSE(k.grad().defined());
}

TEST(GraphLifetime, BackwardFreesTheGraphAndLiveNodesReturnToZero) {
  const int64_t before = ag::live_node_count();
  {
    Tensor x = dvec({1, 2, 3}).requires_grad_();
    Tensor y = soma::exp(x * x) * x;
    Tensor loss = y.sum();
    EXPECT_GT(ag::live_node_count(), before);
    loss.backward();
    EXPECT_TRUE(y.grad_fn() != nullptr);  // nodes stay while tensors refer to them ...
  }
  EXPECT_EQ(ag::live_node_count(), before);  // ... and are gone with them
  {
    Tensor x = dvec({1, 2}).requires_grad_();
    auto g = ag::grad({(x * x * x).sum()}, {x}, {}, std::nullopt, true);
    auto g2 = ag::grad({g[0].sum()}, {x});
  }
  EXPECT_EQ(ag::live_node_count(), before);
  {
    // backward(create_graph) keeps .grad's graph, which refers to x (as in PyTorch, a cycle
    // between a parameter and its gradient); zero_grad() breaks it.
    Tensor x = dvec({1, 2}).requires_grad_();
    (x * x * x).sum().backward({}, std::nullopt, true);
    x.zero_grad();
  }
  EXPECT_EQ(ag::live_node_count(), before);
}

TEST(GraphLifetime, BackwardReleasesSavedTensors) {
  Tensor x = dvec({1, 2, 3}).requires_grad_();
  Tensor y;
  {
    Tensor h = soma::exp(x);  // saves its output
    y = (h * h).sum();        // saves h twice
  }
  y.backward();
  // The graph's closures are gone: a second backward names the freed node.
  EXPECT_THROW(y.backward(), soma::Error);
}

}  // namespace
