// Trains a 2-64-64-3 MLP on a generated 3-arm 2-D spiral with raw tensors, autograd and the
// lecture's manual full-batch gradient descent (p -= lr * dL/dp under NoGradGuard).
//
//   spiral           2000 steps; fails unless training accuracy > 95%
//   spiral --small   200 steps; fails unless the loss halves and accuracy > 80%
//
// Data (cs231n's spiral): class j, point i of P: r = i / (P - 1),
// angle = 4j + 4 r + N(0, 0.2^2), x = (r sin angle, r cos angle).
#include <soma/soma.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace {

constexpr int64_t kClasses = 3;
constexpr int64_t kPointsPerClass = 300;
constexpr int64_t kHidden = 64;

struct Spiral {
  soma::Tensor x;              // [N, 2] float32
  soma::Tensor y_onehot;       // [N, 3] float32
  std::vector<int64_t> label;  // [N]
};

Spiral make_spiral(uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> noise(0.0f, 0.2f);
  const int64_t n = kClasses * kPointsPerClass;
  std::vector<float> xs(n * 2), ys(n * kClasses, 0.0f);
  std::vector<int64_t> label(n);
  for (int64_t j = 0; j < kClasses; ++j) {
    for (int64_t i = 0; i < kPointsPerClass; ++i) {
      const int64_t row = j * kPointsPerClass + i;
      const float r = static_cast<float>(i) / (kPointsPerClass - 1);
      const float angle = 4.0f * j + 4.0f * r + noise(gen);
      xs[row * 2 + 0] = r * std::sin(angle);
      xs[row * 2 + 1] = r * std::cos(angle);
      ys[row * kClasses + j] = 1.0f;
      label[row] = j;
    }
  }
  return {soma::tensor(xs, {n, 2}), soma::tensor(ys, {n, kClasses}), label};
}

// Like torch.nn.Linear's default init for both weight and bias: U(-1/sqrt(in), 1/sqrt(in)).
soma::Tensor uniform_init(const soma::Shape& shape, int64_t fan_in) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  soma::Tensor t = (soma::rand(shape) * 2.0 - 1.0) * bound;
  t.requires_grad_(true);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const bool small = argc > 1 && std::strcmp(argv[1], "--small") == 0;
  const int steps = small ? 200 : 2000;
  const double lr = 0.5;
  const int log_every = small ? 50 : 200;

  soma::manual_seed(0);
  const Spiral data = make_spiral(0);
  const int64_t n = data.x.shape()[0];

  // x [N, 2] -> h1 [N, 64] -> h2 [N, 64] -> logits [N, 3]
  soma::Tensor w1 = uniform_init({2, kHidden}, 2), b1 = uniform_init({kHidden}, 2);
  soma::Tensor w2 = uniform_init({kHidden, kHidden}, kHidden);
  soma::Tensor b2 = uniform_init({kHidden}, kHidden);
  soma::Tensor w3 = uniform_init({kHidden, kClasses}, kHidden);
  soma::Tensor b3 = uniform_init({kClasses}, kHidden);
  std::vector<soma::Tensor> params = {w1, b1, w2, b2, w3, b3};

  auto forward = [&](const soma::Tensor& x) {
    soma::Tensor h1 = soma::relu(soma::matmul(x, w1) + b1);
    soma::Tensor h2 = soma::relu(soma::matmul(h1, w2) + b2);
    return soma::matmul(h2, w3) + b3;
  };

  std::printf("spiral: %lld points, 3 classes, MLP 2-%lld-%lld-3, %d steps of GD (lr %.2f)\n",
              static_cast<long long>(n), static_cast<long long>(kHidden),
              static_cast<long long>(kHidden), steps, lr);
  const auto start = std::chrono::steady_clock::now();
  float first_loss = 0.0f, last_loss = 0.0f;
  for (int step = 0; step < steps; ++step) {
    // Cross-entropy: -mean over samples of the log-probability of the true class.
    soma::Tensor logits = forward(data.x);
    soma::Tensor loss = (soma::log_softmax(logits, 1) * data.y_onehot).sum() * (-1.0 / n);
    loss.backward();
    last_loss = loss.item<float>();
    if (step == 0) first_loss = last_loss;
    if (step % log_every == 0 || step == steps - 1) {
      std::printf("step %5d  loss %.4f\n", step, last_loss);
    }
    {
      soma::NoGradGuard no_grad;
      for (soma::Tensor& p : params) {
        p.sub_(p.grad() * lr);
        p.zero_grad();
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  int64_t correct = 0;
  {
    soma::NoGradGuard no_grad;
    const std::vector<int64_t> pred = soma::argmax(forward(data.x), 1).to_vector<int64_t>();
    for (int64_t i = 0; i < n; ++i) correct += pred[i] == data.label[i];
  }
  const double accuracy = static_cast<double>(correct) / n;
  std::printf("training accuracy %.2f%% (%lld/%lld), %.2f s\n", 100.0 * accuracy,
              static_cast<long long>(correct), static_cast<long long>(n), seconds);

  if (!(last_loss < 0.5f * first_loss)) {
    std::printf("FAIL: loss did not halve (%.4f -> %.4f)\n", first_loss, last_loss);
    return 1;
  }
  const double required = small ? 0.80 : 0.95;
  if (!(accuracy > required)) {
    std::printf("FAIL: accuracy %.4f <= %.2f\n", accuracy, required);
    return 1;
  }
  return 0;
}
