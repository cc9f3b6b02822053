// Linear vs. hidden layers: on a 3-arm spiral, compare a linear model, a single-hidden-layer
// network and a deep network, all nn::Sequential / nn::Linear models trained the same way
// (full-batch gradient descent on F::cross_entropy, the lecture's p <- p - lr dJ/dp).
//
//   mlp           2000 steps; fails unless linear < 70% and deep > 95% training accuracy
//   mlp --small   300 steps;  fails unless linear < 70% and deep > 90% training accuracy
//   mlp --out DIR writes DIR/hidden_layers.svg: the decision regions of the three models
// Either way it also fails unless the one-hidden-layer network beats the linear model by 25
// points: a hidden layer is what separates the arms.
//
// Data (cs231n's spiral, as in examples/spiral.cpp): class j, point i of P: r = i / (P - 1),
// angle = 4j + 4 r + N(0, 0.2^2), x = (r sin angle, r cos angle). x [N, 2], labels int64 [N].
#include <soma/soma.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <vector>

#include "plot.h"

namespace nn = soma::nn;
namespace F = soma::nn::functional;

namespace {

constexpr int64_t kClasses = 3;
constexpr int64_t kPointsPerClass = 300;

struct Spiral {
  soma::Tensor x;  // [N, 2] float32
  soma::Tensor y;  // [N] int64
};

// The noise is drawn with soma's generator (soma::manual_seed), class by class, so
// examples/python/lecture1.py draws the same spiral.
Spiral make_spiral() {
  const soma::Tensor r =
      soma::arange(kPointsPerClass, soma::kFloat32) / double(kPointsPerClass - 1);
  std::vector<soma::Tensor> xs;
  std::vector<int64_t> ys;
  for (int64_t j = 0; j < kClasses; ++j) {
    const soma::Tensor angle = r * 4.0 + 4.0 * double(j) + soma::randn({kPointsPerClass}) * 0.2;
    xs.push_back(soma::stack({r * soma::sin(angle), r * soma::cos(angle)}, 1));
    ys.insert(ys.end(), static_cast<size_t>(kPointsPerClass), j);
  }
  return {soma::cat(xs), soma::tensor(ys, {kClasses * kPointsPerClass})};
}

struct Result {
  float first_loss, last_loss;
  double accuracy, seconds;
};

Result train(nn::Module& model, const Spiral& data, int steps, double lr) {
  const auto start = std::chrono::steady_clock::now();
  Result r{0.0f, 0.0f, 0.0, 0.0};
  for (int step = 0; step < steps; ++step) {
    soma::Tensor loss = F::cross_entropy(model(data.x), data.y);
    model.zero_grad();
    loss.backward();
    r.last_loss = loss.item<float>();
    if (step == 0) r.first_loss = r.last_loss;
    soma::NoGradGuard g;
    for (auto& p : model.parameters()) p.sub_(p.grad() * lr);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  soma::NoGradGuard no_grad;
  const std::vector<int64_t> pred = soma::argmax(model(data.x), 1).to_vector<int64_t>();
  const std::vector<int64_t> y = data.y.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < y.size(); ++i) correct += pred[i] == y[i];
  r.accuracy = static_cast<double>(correct) / static_cast<double>(y.size());
  return r;
}

double linear_acc_bound(double linear) {
  return linear + 0.25;
}

}  // namespace

int main(int argc, char** argv) {
  const bool small = plot::has_flag(argc, argv, "--small");
  const int steps = small ? 300 : 2000;
  const double lr = 0.5;

  soma::manual_seed(0);
  const Spiral data = make_spiral();

  // Linear: logits = x W^T + b. Its decision regions are convex wedges; a spiral defeats it.
  nn::Sequential linear(nn::Linear(2, kClasses));
  // One hidden layer (the lecture's "single hidden layer neural network").
  nn::Sequential shallow{nn::Linear(2, 32), nn::ReLU(), nn::Linear(32, kClasses)};
  // Deep: three hidden layers. (Braces: layers built, and initialised, left to right.)
  nn::Sequential deep{nn::Linear(2, 64),  nn::ReLU(), nn::Linear(64, 64),      nn::ReLU(),
                      nn::Linear(64, 64), nn::ReLU(), nn::Linear(64, kClasses)};

  std::printf("mlp: %lld spiral points, 3 classes, %d steps of full-batch GD (lr %.2f)\n\n",
              static_cast<long long>(data.x.size(0)), steps, lr);
  struct Entry {
    const char* name;
    nn::Sequential* model;
    Result result;
  };
  std::vector<Entry> entries = {
      {"linear", &linear, {}}, {"one hidden layer", &shallow, {}}, {"deep (3 hidden)", &deep, {}}};
  for (Entry& e : entries) {
    std::cout << e.name << ": " << *e.model << "\n";
    e.result = train(*e.model, data, steps, lr);
  }

  std::printf("\n%-18s %8s %10s %10s %9s %7s\n", "model", "params", "loss[0]", "loss[end]",
              "accuracy", "time");
  for (const Entry& e : entries) {
    std::printf("%-18s %8lld %10.4f %10.4f %8.2f%% %6.2fs\n", e.name,
                static_cast<long long>(e.model->num_parameters()), e.result.first_loss,
                e.result.last_loss, 100.0 * e.result.accuracy, e.result.seconds);
  }

  // Decision regions: each model's argmax over a grid of the plane, the points on top.
  {
    const std::vector<float> xs = data.x.to_vector<float>();
    const std::vector<int64_t> ys = data.y.to_vector<int64_t>();
    std::vector<double> px, py;
    std::vector<int> label;
    for (size_t i = 0; i < ys.size(); ++i)
      px.push_back(xs[2 * i]), py.push_back(xs[2 * i + 1]), label.push_back(int(ys[i]));
    std::vector<std::string> panels;
    for (const Entry& e : entries) {
      constexpr int kCells = 80;
      std::vector<float> grid;
      for (int i = 0; i < kCells; ++i)
        for (int j = 0; j < kCells; ++j) {
          grid.push_back(-1.1f + 2.2f * (i + 0.5f) / kCells);
          grid.push_back(-1.1f + 2.2f * (j + 0.5f) / kCells);
        }
      soma::NoGradGuard no_grad;
      const std::vector<int64_t> pred =
          soma::argmax((*e.model)(soma::tensor(grid, {kCells * kCells, 2})), 1)
              .to_vector<int64_t>();
      auto predict = [&](double x1, double x2) {
        const int i = std::clamp(int((x1 + 1.1) / 2.2 * kCells), 0, kCells - 1);
        const int j = std::clamp(int((x2 + 1.1) / 2.2 * kCells), 0, kCells - 1);
        return int(pred[static_cast<size_t>(i * kCells + j)]);
      };
      char title[96];
      std::snprintf(title, sizeof title, "%s: %.0f%%", e.name, 100.0 * e.result.accuracy);
      panels.push_back(plot::class_map(title, -1.1, 1.1, kCells, predict, px, py, label));
    }
    if (!plot::write_file(plot::out_dir(argc, argv) / "hidden_layers.svg",
                          plot::page(panels, 300, 320)))
      return 1;
  }

  int failures = 0;
  if (!(entries[1].result.accuracy > linear_acc_bound(entries[0].result.accuracy))) {
    std::printf("FAIL: one hidden layer (%.4f) should beat the linear model (%.4f) by 25 points\n",
                entries[1].result.accuracy, entries[0].result.accuracy);
    ++failures;
  }
  const double linear_acc = entries[0].result.accuracy, deep_acc = entries[2].result.accuracy;
  if (!(linear_acc < 0.70)) {
    std::printf("FAIL: a linear model should not fit the spiral (accuracy %.4f >= 0.70)\n",
                linear_acc);
    ++failures;
  }
  const double required = small ? 0.90 : 0.95;
  if (!(deep_acc > required)) {
    std::printf("FAIL: the deep network should fit the spiral (accuracy %.4f <= %.2f)\n", deep_acc,
                required);
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
