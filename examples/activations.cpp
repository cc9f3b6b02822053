// The lecture's non-linear activation functions g(z) and their derivatives g'(z), the
// derivatives computed by autograd (backward of sum(g(z)) gives g'(z) element-wise), plotted
// side by side. Fails unless every autograd derivative equals its closed form:
//   sigmoid'(z) = s (1 - s)        tanh'(z) = 1 - t^2         relu'(z) = [z > 0]
//   leaky_relu'(z) = [z > 0] + 0.01 [z <= 0]      gelu'(z) = Phi(z) + z phi(z)
//
//   activations [--small] [--out DIR]   writes DIR/activations.svg (same work either way)
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "plot.h"

int main(int argc, char** argv) {
  constexpr double kPi = 3.14159265358979323846;
  struct Activation {
    std::string name;
    std::function<soma::Tensor(const soma::Tensor&)> g;
    std::function<double(double)> derivative;  // closed form
  };
  auto sig = [](double z) { return 1 / (1 + std::exp(-z)); };
  const std::vector<Activation> acts = {
      {"sigmoid", [](const soma::Tensor& z) { return soma::sigmoid(z); },
       [&](double z) { return sig(z) * (1 - sig(z)); }},
      {"tanh", [](const soma::Tensor& z) { return soma::tanh(z); },
       [](double z) { return 1 - std::tanh(z) * std::tanh(z); }},
      {"relu", [](const soma::Tensor& z) { return soma::relu(z); },
       [](double z) { return z > 0 ? 1.0 : 0.0; }},
      {"leaky_relu", [](const soma::Tensor& z) { return soma::leaky_relu(z, 0.01); },
       [](double z) { return z > 0 ? 1.0 : 0.01; }},
      {"gelu", [](const soma::Tensor& z) { return soma::gelu(z); },
       [&](double z) {
         return 0.5 * (1 + std::erf(z / std::sqrt(2.0))) +
                z * std::exp(-z * z / 2) / std::sqrt(2 * kPi);
       }},
  };
  // z in [-4, 4], 161 points (0 included: relu'(0) = 0, as in PyTorch).
  std::vector<double> zs;
  for (int i = 0; i <= 160; ++i) zs.push_back(-4 + 0.05 * i);
  plot::Chart values{.title = "activation g(z)", .xlabel = "z", .ylabel = "g(z)"};
  plot::Chart slopes{.title = "derivative g'(z) by autograd", .xlabel = "z", .ylabel = "g'(z)"};
  int failures = 0;
  std::printf("%-11s %12s %12s %12s  max |autograd - closed form|\n", "activation", "g(-2)", "g(0)",
              "g(2)");
  for (const Activation& a : acts) {
    soma::Tensor z = soma::tensor(zs).requires_grad_(true);  // float64
    soma::Tensor y = a.g(z);
    y.sum().backward();  // d/dz_i sum_j g(z_j) = g'(z_i)
    const std::vector<double> gy = y.to_vector<double>(), dg = z.grad().to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < zs.size(); ++i)
      worst = std::max(worst, std::fabs(dg[i] - a.derivative(zs[i])));
    std::printf("%-11s %12.6f %12.6f %12.6f  %.2e\n", a.name.c_str(), gy[40], gy[80], gy[120],
                worst);
    if (!(worst < 1e-9)) {
      std::printf("FAIL: autograd's derivative of %s differs from the closed form by %.3g\n",
                  a.name.c_str(), worst);
      ++failures;
    }
    values.series.push_back({.name = a.name, .x = zs, .y = gy});
    slopes.series.push_back({.name = a.name, .x = zs, .y = dg});
  }
  (void)plot::has_flag(argc, argv, "--small");  // the same small work either way
  if (!plot::write_file(plot::out_dir(argc, argv) / "activations.svg",
                        plot::page({plot::line_chart(values), plot::line_chart(slopes)})))
    return 1;
  return failures == 0 ? 0 : 1;
}
