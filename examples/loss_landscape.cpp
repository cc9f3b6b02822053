// Loss landscape and gradient descent: the 2-parameter model y_hat = w x + b on noisy points
// of y = 2x - 1, its MSE loss J(w, b) as a contour plot, and the path gradient descent takes
// from (w, b) = (-0.5, 0.5) with a small, a good and a too-large learning rate.
// J's Hessian is 2 [[E x^2, E x], [E x, 1]]; GD converges only for lr < 2 / its largest
// eigenvalue (about 1 here). Fails unless, after the same number of steps,
//   lr 0.5  (good)       ends within 1e-3 of the least-squares optimum (w*, b*),
//   lr 0.02 (small)      is still more than 0.1 from it, its loss falling at every step,
//   lr 1.1  (too large)  has a larger loss than where it started (it diverges).
//
//   loss_landscape [--small] [--out DIR]   40 steps (--small: the same); DIR/loss_landscape.svg
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "plot.h"

namespace F = soma::nn::functional;

int main(int argc, char** argv) {
  (void)plot::has_flag(argc, argv, "--small");
  constexpr int kSteps = 40;
  // Data: x uniform in [-1, 1], y = 2x - 1 + N(0, 0.1^2); float64 tensors [N, 1].
  std::mt19937 gen(3);
  std::uniform_real_distribution<double> ux(-1, 1);
  std::normal_distribution<double> noise(0, 0.1);
  std::vector<double> xs, ys;
  for (int i = 0; i < 200; ++i) {
    xs.push_back(ux(gen));
    ys.push_back(2 * xs.back() - 1 + noise(gen));
  }
  const int64_t n = static_cast<int64_t>(xs.size());
  const soma::Tensor X = soma::tensor(xs, {n, 1}), Y = soma::tensor(ys, {n, 1});
  // Least squares in closed form: the bottom of the bowl.
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int64_t i = 0; i < n; ++i)
    sx += xs[i], sy += ys[i], sxx += xs[i] * xs[i], sxy += xs[i] * ys[i];
  const double w_star = (n * sxy - sx * sy) / (n * sxx - sx * sx), b_star = (sy - w_star * sx) / n;
  auto J = [&](double w, double b) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += (w * xs[i] + b - ys[i]) * (w * xs[i] + b - ys[i]);
    return s / static_cast<double>(n);
  };
  std::printf(
      "loss_landscape: J(w, b) = mean((w x + b - y)^2), optimum w* = %.4f, b* = %.4f, "
      "J* = %.5f\n",
      w_star, b_star, J(w_star, b_star));

  struct Run {
    std::string name;
    double lr;
    plot::Series path, loss;
  };
  std::vector<Run> runs = {{"lr 0.02 (small)", 0.02, {}, {}},
                           {"lr 0.5 (good)", 0.5, {}, {}},
                           {"lr 1.1 (too large)", 1.1, {}, {}}};
  for (Run& r : runs) {
    soma::Tensor w = soma::tensor(std::vector<double>{-0.5}).requires_grad_(true);
    soma::Tensor b = soma::tensor(std::vector<double>{0.5}).requires_grad_(true);
    r.path.name = r.loss.name = r.name;
    for (int step = 0; step <= kSteps; ++step) {
      soma::Tensor loss = F::mse_loss(X * w + b, Y);  // J(w, b), by autograd below
      r.path.x.push_back(w.item<double>());
      r.path.y.push_back(b.item<double>());
      r.loss.x.push_back(step);
      r.loss.y.push_back(loss.item<double>());
      if (step == kSteps) break;
      loss.backward();
      soma::NoGradGuard no_grad;  // (w, b) <- (w, b) - lr grad J
      for (soma::Tensor* p : {&w, &b}) {
        p->sub_(p->grad() * r.lr);
        p->zero_grad();
      }
    }
    const double dist = std::hypot(r.path.x.back() - w_star, r.path.y.back() - b_star);
    std::printf(
        "%-19s after %d steps: w = %9.4f, b = %9.4f, loss %.5g (start %.5g), distance "
        "to optimum %.3g\n",
        r.name.c_str(), kSteps, r.path.x.back(), r.path.y.back(), r.loss.y.back(), r.loss.y.front(),
        dist);
  }
  int failures = 0;
  auto dist = [&](const Run& r) {
    return std::hypot(r.path.x.back() - w_star, r.path.y.back() - b_star);
  };
  if (!(dist(runs[1]) < 1e-3)) {
    std::printf("FAIL: the good learning rate should reach the optimum\n");
    ++failures;
  }
  bool falling = true;
  for (size_t i = 1; i < runs[0].loss.y.size(); ++i)
    falling &= runs[0].loss.y[i] < runs[0].loss.y[i - 1];
  if (!(dist(runs[0]) > 0.1 && falling)) {
    std::printf("FAIL: the small learning rate should descend at every step and still be far\n");
    ++failures;
  }
  if (!(runs[2].loss.y.back() > runs[2].loss.y.front())) {
    std::printf("FAIL: the too-large learning rate should diverge\n");
    ++failures;
  }

  std::vector<plot::Series> paths;
  plot::Chart curves{
      .title = "loss per step", .xlabel = "step", .ylabel = "J (log)", .log_y = true};
  for (const Run& r : runs) paths.push_back(r.path), curves.series.push_back(r.loss);
  const std::string landscape = plot::contour("J(w, b) and the paths of gradient descent", "w", "b",
                                              -1, 4, -3, 1.5, 90, J, paths);
  if (!plot::write_file(plot::out_dir(argc, argv) / "loss_landscape.svg",
                        plot::page({landscape, plot::line_chart(curves)}, 430, 430)))
    return 1;
  return failures == 0 ? 0 : 1;
}
