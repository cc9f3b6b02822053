// Autograd semantics: accumulation, shared inputs, detach, NoGradGuard, retain_graph, deep
// graphs, and a whole MLP against a hand-written forward/backward oracle.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "soma/soma.h"

namespace {

using soma::Tensor;

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = soma::tensor(std::vector<double>{1, 2, 3}).requires_grad_();
  (x * x).sum().backward();
  (x * 3.0).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));  // 2x + 3
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, SharedInputGradientsAdd) {
  // y = x*x + exp(x): x feeds three edges of one graph
  Tensor x = soma::tensor(std::vector<double>{0.5, -1.0}).requires_grad_();
  (x * x + soma::exp(x)).sum().backward();
  const std::vector<double> g = x.grad().to_vector<double>();
  EXPECT_DOUBLE_EQ(g[0], 2 * 0.5 + std::exp(0.5));
  EXPECT_DOUBLE_EQ(g[1], 2 * -1.0 + std::exp(-1.0));
}

TEST(Autograd, GradientBuffersAreNotShared) {
  Tensor a = soma::ones({3}).requires_grad_();
  Tensor b = soma::ones({3}).requires_grad_();
  (a + b).sum().backward();
  {
    soma::NoGradGuard no_grad;
    a.grad().add_(1.0);
  }
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{1, 1, 1}));
}

TEST(Autograd, DetachAndNoGradStopTheGraph) {
  Tensor x = soma::randn({3}).requires_grad_();
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.data<float>(), x.data<float>());  // shares storage
  {
    soma::NoGradGuard no_grad;
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
  }
  Tensor y = (x * 2.0 + d).sum();
  y.backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 2, 2}));
}

TEST(Autograd, RetainGraphAllowsSecondBackward) {
  Tensor x = soma::tensor(std::vector<double>{2.0}).requires_grad_();
  Tensor y = (x * x * x).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 2 * 3 * 4.0);
  EXPECT_THROW(y.backward(), soma::Error);  // freed now
}

TEST(Autograd, ExplicitGradientForNonScalar) {
  Tensor x = soma::tensor(std::vector<double>{1, 2}).requires_grad_();
  Tensor y = x * x;
  y.backward(soma::tensor(std::vector<double>{10, 100}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{20, 400}));
}

TEST(Autograd, OnlyInputsThatRequireGradGetGradients) {
  Tensor w = soma::randn({3, 2}).requires_grad_();
  Tensor x = soma::randn({4, 3});
  soma::matmul(x, w).sum().backward();
  EXPECT_TRUE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, DeepGraphDoesNotOverflowTheStack) {
  Tensor x = soma::tensor(std::vector<double>{1.0}).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 200000; ++i) y = y * 1.0;
  y.sum().backward();
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 1.0);
  Tensor z = x;
  for (int i = 0; i < 200000; ++i) z = z + 0.0;
  z = Tensor();  // destroying the unused chain is iterative too
}

TEST(Autograd, LeafCanBeUpdatedInPlaceUnderNoGrad) {
  // the lecture's manual gradient descent step
  Tensor w = soma::tensor(std::vector<float>{1, 2}).requires_grad_();
  (w * w).sum().backward();
  {
    soma::NoGradGuard no_grad;
    w.sub_(w.grad() * 0.1f);
  }
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{0.8f, 1.6f}));
  EXPECT_TRUE(w.requires_grad());
}

// Two-layer MLP with MSE, forward and backward written out by hand in plain loops (double):
//   h = relu(x W1 + b1), y = h W2 + b2, L = mean((y - t)^2)
TEST(Autograd, MlpMatchesHandWrittenBackprop) {
  constexpr int B = 5, N = 4, H = 6, M = 3;
  soma::manual_seed(7);
  Tensor x = soma::randn({B, N}, soma::kFloat64), t = soma::randn({B, M}, soma::kFloat64);
  Tensor W1 = soma::randn({N, H}, soma::kFloat64).requires_grad_();
  Tensor b1 = soma::randn({H}, soma::kFloat64).requires_grad_();
  Tensor W2 = soma::randn({H, M}, soma::kFloat64).requires_grad_();
  Tensor b2 = soma::randn({M}, soma::kFloat64).requires_grad_();
  Tensor y = soma::matmul(soma::relu(soma::matmul(x, W1) + b1), W2) + b2;
  Tensor loss = soma::mean(soma::pow(y - t, 2.0));
  loss.backward();

  auto X = x.to_vector<double>(), T = t.to_vector<double>(), w1 = W1.to_vector<double>(),
       c1 = b1.to_vector<double>(), w2 = W2.to_vector<double>(), c2 = b2.to_vector<double>();
  std::vector<double> h(B * H), yv(B * M), dy(B * M), dh(B * H), dw1(N * H, 0), db1(H, 0),
      dw2(H * M, 0), db2(M, 0);
  double l = 0;
  for (int i = 0; i < B; ++i) {
    for (int j = 0; j < H; ++j) {
      double s = c1[j];
      for (int k = 0; k < N; ++k) s += X[i * N + k] * w1[k * H + j];
      h[i * H + j] = s > 0 ? s : 0;
    }
    for (int j = 0; j < M; ++j) {
      double s = c2[j];
      for (int k = 0; k < H; ++k) s += h[i * H + k] * w2[k * M + j];
      yv[i * M + j] = s;
      l += (s - T[i * M + j]) * (s - T[i * M + j]) / (B * M);
      dy[i * M + j] = 2 * (s - T[i * M + j]) / (B * M);
    }
  }
  for (int i = 0; i < B; ++i) {
    for (int j = 0; j < M; ++j) {
      db2[j] += dy[i * M + j];
      for (int k = 0; k < H; ++k) dw2[k * M + j] += h[i * H + k] * dy[i * M + j];
    }
    for (int k = 0; k < H; ++k) {
      double s = 0;
      for (int j = 0; j < M; ++j) s += dy[i * M + j] * w2[k * M + j];
      dh[i * H + k] = h[i * H + k] > 0 ? s : 0;
      db1[k] += dh[i * H + k];
      for (int n = 0; n < N; ++n) dw1[n * H + k] += X[i * N + n] * dh[i * H + k];
    }
  }
  EXPECT_NEAR(loss.item<double>(), l, 1e-12);
  auto expect_near = [](const std::vector<double>& a, const std::vector<double>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-12) << "index " << i;
  };
  expect_near(W1.grad().to_vector<double>(), dw1);
  expect_near(b1.grad().to_vector<double>(), db1);
  expect_near(W2.grad().to_vector<double>(), dw2);
  expect_near(b2.grad().to_vector<double>(), db2);
}

}  // namespace

// ---- anomaly detection (soma::DetectAnomalyGuard, like torch.autograd.detect_anomaly) ------
namespace {
std::string anomaly_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const soma::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(AutogradAnomaly, ForwardNamesTheOpThatProducedNaN) {
  soma::DetectAnomalyGuard anomaly;
  Tensor x = soma::tensor({1.0f, -4.0f}).requires_grad_(true);
  const std::string e = anomaly_error([&] { (void)soma::sqrt(x * 2.0f); });
  EXPECT_NE(e.find("detect_anomaly: the forward of sqrt produced nan (element 1"),
            std::string::npos)
      << e;
}

TEST(AutogradAnomaly, BackwardNamesTheOpThatReturnedInf) {
  Tensor x = soma::tensor({0.0f, 4.0f}).requires_grad_(true);
  Tensor y = soma::sqrt(x).sum();  // forward finite; d sqrt(x)/dx = 1 / (2 sqrt(x)) is inf at 0
  soma::DetectAnomalyGuard anomaly;
  const std::string e = anomaly_error([&] { y.backward(); });
  EXPECT_NE(e.find("detect_anomaly: the backward of sqrt returned inf in the gradient for input 0 "
                   "(element 0 of shape [2])"),
            std::string::npos)
      << e;
}

TEST(AutogradAnomaly, NonFiniteDataIsReportedAsComingFromOutside) {
  soma::DetectAnomalyGuard anomaly;
  Tensor w = soma::ones({2}).requires_grad_(true);
  const Tensor data = soma::tensor({1.0f, std::numeric_limits<float>::quiet_NaN()});
  const std::string e = anomaly_error([&] { (void)(w * data); });
  EXPECT_NE(e.find("input 1 of mul already holds nan"), std::string::npos) << e;
  EXPECT_NE(e.find("check the data"), std::string::npos) << e;
}

TEST(AutogradAnomaly, OffByDefaultAndRestoredByTheGuard) {
  EXPECT_FALSE(soma::autograd::is_anomaly_enabled());
  {
    soma::DetectAnomalyGuard anomaly;
    EXPECT_TRUE(soma::autograd::is_anomaly_enabled());
  }
  EXPECT_FALSE(soma::autograd::is_anomaly_enabled());
  Tensor x = soma::tensor({0.0f, 4.0f}).requires_grad_(true);
  soma::sqrt(x).sum().backward();  // inf gradient, no error: that is PyTorch's default too
  EXPECT_TRUE(std::isinf(x.grad().to_vector<float>()[0]));
}
