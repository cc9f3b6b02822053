// Mini-batches: full-batch gradient descent against mini-batch SGD (batch 32) and pure SGD
// (batch 1) on the same network, data and initial weights. The loss of the whole training set
// is plotted after every epoch, against epochs and against wall time. Fails unless, after the
// same number of epochs, both stochastic runs have a lower loss than full-batch GD: an epoch of
// GD is one step, an epoch of batch 32 is N/32 steps.
//
//   minibatch [--small] [--out DIR]   30 epochs (--small: 8); writes DIR/minibatch.svg
#include <soma/soma.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "plot.h"

namespace nn = soma::nn;
namespace F = soma::nn::functional;

int main(int argc, char** argv) {
  const int epochs = plot::has_flag(argc, argv, "--small") ? 8 : 30;
  // Data: three Gaussian blobs in the plane, 200 points each. x [600, 2], y int64 [600].
  // Drawn with soma's generator, so examples/python/lecture1.py draws the same blobs.
  soma::manual_seed(5);
  std::vector<float> cx, cy;
  std::vector<int64_t> ys;
  for (int i = 0; i < 600; ++i) {
    const int k = i % 3;
    cx.push_back(std::cos(2.1f * k) * 1.5f), cy.push_back(std::sin(2.1f * k) * 1.5f);
    ys.push_back(k);
  }
  const soma::Tensor X = soma::stack({soma::tensor(cx, {600}), soma::tensor(cy, {600})}, 1) +
                         soma::randn({600, 2}) * 0.6;
  const soma::Tensor Y = soma::tensor(ys, {600});

  struct Run {
    std::string name;
    int64_t batch;
    double lr;
    plot::Series by_epoch, by_time;
  };
  std::vector<Run> runs = {{"full batch (GD)", 600, 0.5, {}, {}},
                           {"batch 32", 32, 0.5, {}, {}},
                           {"batch 1 (SGD)", 1, 0.05, {}, {}}};
  for (Run& r : runs) {
    soma::manual_seed(0);  // the same initial weights for every run
    nn::Sequential model{nn::Linear(2, 32), nn::Tanh(), nn::Linear(32, 3)};
    soma::optim::SGD opt(model.parameters(), {.lr = r.lr});
    soma::data::DataLoader loader(soma::data::TensorDataset(X, Y),
                                  {.batch_size = r.batch, .shuffle = true, .seed = 1});
    auto full_loss = [&] {
      soma::NoGradGuard no_grad;
      return F::cross_entropy(model(X), Y).item<double>();
    };
    r.by_epoch.name = r.by_time.name = r.name;
    double seconds = 0;
    r.by_epoch.x.push_back(0), r.by_epoch.y.push_back(full_loss());
    r.by_time.x.push_back(0), r.by_time.y.push_back(r.by_epoch.y.back());
    for (int e = 1; e <= epochs; ++e) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& [xb, yb] : loader) {
        soma::Tensor loss = F::cross_entropy(model(xb), yb);
        opt.zero_grad();
        loss.backward();
        opt.step();
      }
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      r.by_epoch.x.push_back(e), r.by_epoch.y.push_back(full_loss());
      r.by_time.x.push_back(seconds * 1e3), r.by_time.y.push_back(r.by_epoch.y.back());
    }
    std::printf("%-16s lr %-5g %3lld steps/epoch: loss %.4f -> %.4f after %d epochs, %.1f ms\n",
                r.name.c_str(), r.lr, static_cast<long long>(loader.size()), r.by_epoch.y.front(),
                r.by_epoch.y.back(), epochs, seconds * 1e3);
  }
  int failures = 0;
  for (size_t i = 1; i < runs.size(); ++i)
    if (!(runs[i].by_epoch.y.back() < runs[0].by_epoch.y.back())) {
      std::printf("FAIL: %s should end below full-batch GD after %d epochs\n", runs[i].name.c_str(),
                  epochs);
      ++failures;
    }
  plot::Chart a{.title = "training loss per epoch", .xlabel = "epoch", .ylabel = "loss"};
  plot::Chart b{.title = "training loss against time", .xlabel = "milliseconds", .ylabel = "loss"};
  for (const Run& r : runs) a.series.push_back(r.by_epoch), b.series.push_back(r.by_time);
  if (!plot::write_file(plot::out_dir(argc, argv) / "minibatch.svg",
                        plot::page({plot::line_chart(a), plot::line_chart(b)})))
    return 1;
  return failures == 0 ? 0 : 1;
}
