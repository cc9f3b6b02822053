// A second-order example: fitting a function together with its derivative (Sobolev training,
// the idea behind gradient penalties and physics-informed losses). The network f(x) learns
// sin(x) on 7 points of [-3, 3]; the loss adds the squared error of df/dx against cos(x):
//
//   loss = mean (f(x) - sin x)^2 + mean (f'(x) - cos x)^2,   f'(x) = autograd::grad(f, x,
//                                                                    create_graph = true)
//
// Minimising it needs d loss / d weights through f'(x): a derivative of a derivative. The same
// network trained on the values alone matches sin at the 7 points but not cos between them.
// Fails unless, on 200 points between the training points,
//   - the penalised fit's derivative error is below 1e-4 (mean squared) and below a tenth of
//     the value-only fit's, and
//   - its value error is below 1e-3.
//
//   derivative_penalty [--small] [--out DIR]   DIR/derivative_penalty.svg
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "plot.h"

namespace F = soma::nn::functional;
namespace nn = soma::nn;
namespace ag = soma::autograd;
using soma::Tensor;

int main(int argc, char** argv) {
  const bool small = plot::has_flag(argc, argv, "--small");
  const int steps = small ? 1500 : 3000;
  const Tensor xt = soma::linspace(-3.0, 3.0, 7, soma::kFloat64).reshape({7, 1});
  const Tensor xe = soma::linspace(-2.9, 2.9, 200, soma::kFloat64).reshape({200, 1});

  struct Result {
    double value_mse, slope_mse;
    plot::Series slope;
  };
  auto run = [&](bool penalty) {
    soma::manual_seed(3);
    nn::Sequential f(nn::Linear(1, 32), nn::Tanh(), nn::Linear(32, 32), nn::Tanh(),
                     nn::Linear(32, 1));
    f.to(soma::kFloat64);
    soma::optim::Adam opt(f.parameters(), {.lr = 0.01});
    for (int s = 0; s < steps; ++s) {
      Tensor x = xt.detach().requires_grad_();
      Tensor y = f(x);
      Tensor loss = F::mse_loss(y, soma::sin(x));
      if (penalty) {
        Tensor dy = ag::grad({y.sum()}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
        loss = loss + F::mse_loss(dy, soma::cos(x));
      }
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    // Evaluate between the training points.
    Tensor x = xe.detach().requires_grad_();
    Tensor y = f(x);
    Tensor dy = ag::grad({y.sum()}, {x})[0];
    soma::NoGradGuard no_grad;
    Result r{F::mse_loss(y, soma::sin(x)).item<double>(),
             F::mse_loss(dy, soma::cos(x)).item<double>(),
             {}};
    r.slope.name = penalty ? "f' (value + derivative loss)" : "f' (value loss only)";
    const auto xv = xe.to_vector<double>(), dv = dy.to_vector<double>();
    for (size_t i = 0; i < xv.size(); ++i) r.slope.x.push_back(xv[i]), r.slope.y.push_back(dv[i]);
    return r;
  };
  const Result plain = run(false);
  const Result sobolev = run(true);
  std::printf("value-only fit:          value mse %.6f, derivative mse %.6f\n", plain.value_mse,
              plain.slope_mse);
  std::printf("value + derivative loss: value mse %.6f, derivative mse %.6f\n", sobolev.value_mse,
              sobolev.slope_mse);
  int failures = 0;
  if (!(sobolev.slope_mse < 1e-4 && sobolev.slope_mse < 0.1 * plain.slope_mse)) {
    std::printf(
        "FAIL: derivative error %.6f not below 1e-4 and a tenth of the value-only fit's %.6f\n",
        sobolev.slope_mse, plain.slope_mse);
    ++failures;
  }
  if (!(sobolev.value_mse < 1e-3)) {
    std::printf("FAIL: value error %.6f >= 1e-3\n", sobolev.value_mse);
    ++failures;
  }
  plot::Series truth;
  truth.name = "cos x";
  for (double x : plain.slope.x) truth.x.push_back(x), truth.y.push_back(std::cos(x));
  plot::Chart c{.title = "learned derivative", .xlabel = "x", .ylabel = "df/dx"};
  c.series = {truth, plain.slope, sobolev.slope};
  if (!plot::write_file(plot::out_dir(argc, argv) / "derivative_penalty.svg",
                        plot::page({plot::line_chart(c)})))
    return 1;
  return failures == 0 ? 0 : 1;
}
