// The lecture's "dense layer from scratch": a user-defined module MyDenseLayer with parameters
// w [in, out] and b [1, out] and forward relu(x @ w + b), stacked in an nn::Sequential with a
// built-in nn::Linear output layer, then trained with mini-batch gradient descent.
//
//   custom_dense_layer           60 epochs; fails unless the loss halves and accuracy > 97%
//   custom_dense_layer --small   20 epochs; fails unless the loss halves and accuracy > 95%
//
// Data: two concentric classes in the plane (not linearly separable): class 0 in the disk of
// radius 0.5, class 1 in the ring 0.7 <= r <= 1. x [N, 2] float32, labels int64 [N].
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace nn = soma::nn;
namespace F = soma::nn::functional;

// A custom layer, as in the lecture's MyDenseLayer (and DESIGN.md's snippet).
struct MyDenseLayer : nn::Module {
  soma::Tensor w, b;
  MyDenseLayer(int64_t in, int64_t out) {
    w = register_parameter("w", soma::randn({in, out}));
    b = register_parameter("b", soma::randn({1, out}));
  }
  soma::Tensor forward(const soma::Tensor& x) override {
    return soma::relu(soma::matmul(x, w) + b);
  }
};

namespace {

constexpr int64_t kIn = 2, kHidden = 32, kClasses = 2;

struct Data {
  soma::Tensor x;  // [N, 2] float32
  soma::Tensor y;  // [N] int64
};

// Drawn with soma's generator (soma::manual_seed), so examples/python/lecture1.py draws the
// same points: radii uniform in [0, 0.5) for class 0 and [0.7, 1) for class 1, then angles.
Data make_circles(int64_t per_class) {
  const soma::Tensor r =
      soma::cat({soma::rand({per_class}) * 0.5, soma::rand({per_class}) * 0.3 + 0.7});
  const soma::Tensor a = soma::rand({kClasses * per_class}) * 6.2831853;
  std::vector<int64_t> ys;
  for (int64_t c = 0; c < kClasses; ++c) ys.insert(ys.end(), static_cast<size_t>(per_class), c);
  return {soma::stack({r * soma::cos(a), r * soma::sin(a)}, 1),
          soma::tensor(ys, {kClasses * per_class})};
}

}  // namespace

int main(int argc, char** argv) {
  const bool small = argc > 1 && std::strcmp(argv[1], "--small") == 0;
  const int epochs = small ? 20 : 60;
  const int64_t batch = 32;
  const double lr = 0.1;

  soma::manual_seed(0);
  const Data data = make_circles(250);
  const int64_t n = data.x.size(0);

  // Braces: the layers are built (and draw their initial weights) left to right.
  nn::Sequential model{MyDenseLayer(kIn, kHidden), nn::Linear(kHidden, kClasses)};
  std::cout << model << "\n" << model.summary({1, kIn});

  // Parameter names: the custom layer's own ("w", "b") and Linear's, under the child index.
  std::printf("state_dict:\n");
  std::vector<std::string> keys;
  for (const auto& [name, t] : model.state_dict()) {
    std::printf("  %-9s %s\n", name.c_str(), soma::shape_str(t.shape()).c_str());
    keys.push_back(name);
  }
  const std::vector<std::string> expected = {"0.b", "0.w", "1.bias", "1.weight"};
  if (keys != expected) {
    std::printf("FAIL: state_dict keys are not 0.b, 0.w, 1.bias, 1.weight\n");
    return 1;
  }
  if (model.at<MyDenseLayer>(0).w.shape() != soma::Shape{kIn, kHidden}) {
    std::printf("FAIL: MyDenseLayer's w does not have shape [2, %lld]\n",
                static_cast<long long>(kHidden));
    return 1;
  }

  auto evaluate = [&](float* loss_out) {
    soma::NoGradGuard no_grad;
    const soma::Tensor logits = model(data.x);
    if (loss_out) *loss_out = F::cross_entropy(logits, data.y).item<float>();
    const std::vector<int64_t> pred = soma::argmax(logits, 1).to_vector<int64_t>();
    const std::vector<int64_t> y = data.y.to_vector<int64_t>();
    int64_t correct = 0;
    for (int64_t i = 0; i < n; ++i) correct += pred[i] == y[i];
    return static_cast<double>(correct) / static_cast<double>(n);
  };

  float first_loss = 0.0f, last_loss = 0.0f;
  evaluate(&first_loss);
  std::printf("training: %lld points, batches of %lld, %d epochs of SGD (lr %.2f)\n",
              static_cast<long long>(n), static_cast<long long>(batch), epochs, lr);
  // Mini-batches in a new order every epoch; the order depends only on (seed, epoch).
  soma::data::DataLoader loader(soma::data::TensorDataset(data.x, data.y),
                                {.batch_size = batch, .shuffle = true, .seed = 1});
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (const auto& [xb, yb] : loader) {
      soma::Tensor loss = F::cross_entropy(model(xb), yb);
      model.zero_grad();
      loss.backward();
      soma::NoGradGuard no_grad;  // the lecture's update: p <- p - lr dJ/dp
      for (soma::Tensor& p : model.parameters()) p.sub_(p.grad() * lr);
    }
    if (epoch % (epochs / 5) == 0 || epoch == epochs - 1) {
      const double acc = evaluate(&last_loss);
      std::printf("epoch %3d  loss %.4f  accuracy %.2f%%\n", epoch, last_loss, 100.0 * acc);
    }
  }
  const double acc = evaluate(&last_loss);
  std::printf("training accuracy %.2f%%, loss %.4f -> %.4f\n", 100.0 * acc, first_loss, last_loss);

  if (!(last_loss < 0.5f * first_loss)) {
    std::printf("FAIL: loss did not halve (%.4f -> %.4f)\n", first_loss, last_loss);
    return 1;
  }
  const double required = small ? 0.95 : 0.97;
  if (!(acc > required)) {
    std::printf("FAIL: accuracy %.4f <= %.2f\n", acc, required);
    return 1;
  }
  return 0;
}
