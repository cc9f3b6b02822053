// The lecture's training loop written GradientTape-style: instead of loss.backward() filling
// each parameter's .grad, soma::autograd::grad returns d loss / d parameters as a list (as
// tf.GradientTape.gradient does), and the optimizer applies that list (Keras's
// apply_gradients). Three classes of points on
// concentric rings, a 2-32-3 tanh network, mini-batch SGD.
// Fails unless
//   - the GradientTape loop ends with exactly the weights of the same loop written with
//     loss.backward() + optim::SGD (the two are the same algorithm), bit for bit, and
//   - it classifies at least 90% of the training points.
//
//   gradient_tape [--small]    (the same 30 epochs either way)
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "plot.h"

namespace F = soma::nn::functional;
namespace nn = soma::nn;
using soma::Tensor;

int main(int argc, char** argv) {
  (void)plot::has_flag(argc, argv, "--small");
  // Data: 3 rings of radius 1, 2, 3 with noise; 300 points. Drawn with soma's generator, so
  // examples/python/lecture1.py draws the same points.
  soma::manual_seed(5);
  std::vector<float> radius;
  std::vector<int64_t> ys;
  for (int i = 0; i < 300; ++i)
    radius.push_back(static_cast<float>(i % 3 + 1)), ys.push_back(i % 3);
  const Tensor angle = soma::rand({300}) * 6.2831853;
  const Tensor r = soma::tensor(radius, {300}) + soma::randn({300}) * 0.15;
  const Tensor X = soma::stack({r * soma::cos(angle), r * soma::sin(angle)}, 1);
  const Tensor Y = soma::tensor(ys, {300});
  constexpr int kEpochs = 30;
  constexpr double kLr = 0.3;

  auto train = [&](bool tape) {
    soma::manual_seed(0);
    nn::Sequential model{nn::Linear(2, 32), nn::Tanh(), nn::Linear(32, 3)};  // left to right
    soma::data::DataLoader loader(soma::data::TensorDataset(X, Y),
                                  {.batch_size = 30, .shuffle = true, .seed = 1});
    soma::optim::SGD opt(model.parameters(), {.lr = kLr});
    std::vector<Tensor> params = model.parameters();
    for (int e = 0; e < kEpochs; ++e) {
      for (const auto& [xb, yb] : loader) {
        Tensor loss = F::cross_entropy(model(xb), yb);
        if (tape) {
          // "with GradientTape() as tape: ...; grads = tape.gradient(loss, params)"
          std::vector<Tensor> grads = soma::autograd::grad({loss}, params);
          // "optimizer.apply_gradients(zip(grads, params))"
          for (size_t i = 0; i < params.size(); ++i) params[i].set_grad(grads[i]);
          opt.step();
        } else {
          opt.zero_grad();
          loss.backward();
          opt.step();
        }
      }
    }
    return model;
  };
  nn::Sequential tape_model = train(true);
  nn::Sequential backward_model = train(false);

  int failures = 0;
  const auto a = tape_model.parameters(), b = backward_model.parameters();
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].to_vector<float>() != b[i].to_vector<float>()) {
      std::printf("FAIL: parameter %zu differs between the GradientTape and backward() loops\n", i);
      ++failures;
    }
  soma::NoGradGuard no_grad;
  const double acc =
      soma::eq(soma::argmax(tape_model(X), 1), Y).to(soma::kFloat64).mean().item<double>();
  std::printf(
      "GradientTape loop: %d epochs, training accuracy %.3f; weights equal to the "
      "backward() loop's: %s\n",
      kEpochs, acc, failures == 0 ? "yes" : "no");
  if (acc < 0.9) {
    std::printf("FAIL: accuracy %.3f < 0.9\n", acc);
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
