// The lecture's perceptron: one neuron  y = g(w0 + X^T W)  with g = sigmoid, trained by plain
// gradient descent on the binary cross-entropy of a generated, linearly separable 2-D set.
//
//   perceptron           2000 steps; fails unless training accuracy is 100%
//   perceptron --small   500 steps; fails unless training accuracy is 100%
//   perceptron --out DIR writes DIR/perceptron.svg: the neuron's two half-planes (its decision
//                        boundary w0 + X^T W = 0) with the data on top
//
// Data: points uniform in [-1, 1]^2, labelled by the side of the line 1.5 x1 - x2 + 0.25 = 0;
// points closer than 0.1 to the line are dropped, so the classes are separated by a margin.
// Shapes: X [N, 2], W [2, 1], w0 [1], y [N, 1].
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "plot.h"

namespace F = soma::nn::functional;

namespace {

// The true boundary a x1 + b x2 + c = 0 (unknown to the model).
constexpr double kA = 1.5, kB = -1.0, kC = 0.25;
constexpr double kMargin = 0.1;

struct Data {
  soma::Tensor x;  // [N, 2] float32
  soma::Tensor y;  // [N, 1] float32, 0 or 1
};

Data make_separable(int64_t candidates) {
  const std::vector<float> u = (soma::rand({candidates, 2}) * 2.0 - 1.0).to_vector<float>();
  const double norm = std::sqrt(kA * kA + kB * kB);
  std::vector<float> xs, ys;
  for (int64_t i = 0; i < candidates; ++i) {
    const double x1 = u[i * 2], x2 = u[i * 2 + 1];
    const double signed_distance = (kA * x1 + kB * x2 + kC) / norm;
    if (std::fabs(signed_distance) < kMargin) continue;
    xs.push_back(static_cast<float>(x1));
    xs.push_back(static_cast<float>(x2));
    ys.push_back(signed_distance > 0 ? 1.0f : 0.0f);
  }
  const int64_t n = static_cast<int64_t>(ys.size());
  return {soma::tensor(xs, {n, 2}), soma::tensor(ys, {n, 1})};
}

}  // namespace

int main(int argc, char** argv) {
  const bool small = plot::has_flag(argc, argv, "--small");
  const int steps = small ? 500 : 2000;
  const double lr = 1.0;

  soma::manual_seed(0);
  const Data data = make_separable(300);
  const int64_t n = data.x.size(0);

  // The neuron's parameters: weights W = [w1, w2] and bias w0, started at zero.
  soma::Tensor W = soma::zeros({2, 1}).requires_grad_(true);
  soma::Tensor w0 = soma::zeros({1}).requires_grad_(true);
  auto forward = [&](const soma::Tensor& X) { return soma::sigmoid(w0 + soma::matmul(X, W)); };

  auto accuracy = [&]() {
    soma::NoGradGuard no_grad;
    const std::vector<float> p = forward(data.x).to_vector<float>();
    const std::vector<float> y = data.y.to_vector<float>();
    int64_t correct = 0;
    for (int64_t i = 0; i < n; ++i) correct += (p[i] > 0.5f) == (y[i] > 0.5f);
    return static_cast<double>(correct) / static_cast<double>(n);
  };

  std::printf("perceptron: %lld points, y = sigmoid(w0 + X^T W), %d steps of GD (lr %.1f)\n",
              static_cast<long long>(n), steps, lr);
  float first_loss = 0.0f, last_loss = 0.0f;
  for (int step = 0; step < steps; ++step) {
    // Binary cross-entropy: -mean(y log y_hat + (1 - y) log(1 - y_hat)).
    soma::Tensor loss = F::binary_cross_entropy(forward(data.x), data.y);
    loss.backward();
    last_loss = loss.item<float>();
    if (step == 0) first_loss = last_loss;
    if (step % (steps / 5) == 0 || step == steps - 1)
      std::printf("step %5d  loss %.4f  accuracy %.2f%%\n", step, last_loss, 100.0 * accuracy());
    {
      soma::NoGradGuard no_grad;  // W <- W - lr dJ/dW, w0 <- w0 - lr dJ/dw0
      for (soma::Tensor* p : {&W, &w0}) {
        p->sub_(p->grad() * lr);
        p->zero_grad();
      }
    }
  }

  const std::vector<float> w = W.to_vector<float>();
  const float b = w0.item<float>();
  std::printf("learned weights W = [%.4f, %.4f], bias w0 = %.4f\n", w[0], w[1], b);
  if (w[1] != 0.0f) {
    // w0 + w1 x1 + w2 x2 = 0  <=>  x2 = -(w0 + w1 x1) / w2
    std::printf("decision boundary: x2 = %.4f x1 + %.4f   (true line: x2 = %.4f x1 + %.4f)\n",
                -w[0] / w[1], -b / w[1], -kA / kB, -kC / kB);
  }
  {
    const std::vector<float> xs = data.x.to_vector<float>(), ys = data.y.to_vector<float>();
    std::vector<double> px, py;
    std::vector<int> label;
    for (int64_t i = 0; i < n; ++i) {
      px.push_back(xs[2 * i]), py.push_back(xs[2 * i + 1]), label.push_back(ys[i] > 0.5f);
    }
    auto predict = [&](double x1, double x2) { return b + w[0] * x1 + w[1] * x2 > 0 ? 1 : 0; };
    if (!plot::write_file(plot::out_dir(argc, argv) / "perceptron.svg",
                          plot::page({plot::class_map("perceptron: sigmoid(w0 + X^T W) > 0.5", -1,
                                                      1, 60, predict, px, py, label)},
                                     300, 320)))
      return 1;
  }
  const double acc = accuracy();
  std::printf("training accuracy %.2f%%, loss %.4f -> %.4f\n", 100.0 * acc, first_loss, last_loss);
  if (acc < 1.0) {
    std::printf("FAIL: the perceptron must separate linearly separable data (accuracy %.4f)\n",
                acc);
    return 1;
  }
  return 0;
}
