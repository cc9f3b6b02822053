// Overfitting and regularisation: a big MLP (20-256-256-2) trained on only 100 noisy samples.
// Without regularisation its training loss goes to zero while the validation loss (1000 held-out
// samples) turns and climbs: it memorises the noise. The same run with dropout (p = 0.8: with
// 70k weights for 100 samples, p = 0.5 still memorises them), and with early
// stopping (patience 10, best weights restored, the stop epoch marked), end with a lower
// validation loss. Fails unless
//   the plain run overfits: its final validation loss is 1.5x its best or more, and its final
//     training loss is below a tenth of its final validation loss;
//   dropout's and early stopping's final validation losses are both below the plain run's.
//
//   overfitting [--small] [--out DIR]   200 epochs (--small: 120); writes DIR/overfitting.svg
#include <soma/soma.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "plot.h"

namespace nn = soma::nn;
namespace F = soma::nn::functional;
namespace train = soma::train;

namespace {

// x [n, 20] standard normal; y = [x0 + x1 - x2 > 0], then 20 % of the labels flipped.
// Drawn with soma's generator (soma::manual_seed(seed)), so examples/python/lecture1.py draws
// the same samples.
soma::data::TensorDataset make_data(int64_t n, uint64_t seed) {
  soma::manual_seed(seed);
  const soma::Tensor x = soma::randn({n, 20});
  const std::vector<int64_t> flips =
      soma::lt(soma::rand({n}), 0.2).to(soma::kInt64).to_vector<int64_t>();
  const std::vector<float> xs = x.to_vector<float>();
  std::vector<int64_t> ys;
  for (int64_t i = 0; i < n; ++i) {
    const float* r = &xs[static_cast<size_t>(i * 20)];
    int64_t label = r[0] + r[1] - r[2] > 0;
    if (flips[static_cast<size_t>(i)]) label = 1 - label;
    ys.push_back(label);
  }
  return soma::data::TensorDataset(x, soma::tensor(ys, {n}));
}
}  // namespace

int main(int argc, char** argv) {
  const int64_t epochs = plot::has_flag(argc, argv, "--small") ? 120 : 200;
  soma::data::DataLoader train_loader(make_data(100, 1),
                                      {.batch_size = 25, .shuffle = true, .seed = 2});
  soma::data::DataLoader val_loader(make_data(1000, 2), {.batch_size = 1000});
  auto loss = [](const soma::Tensor& out, const soma::Tensor& y) {
    return F::cross_entropy(out, y);
  };

  struct Run {
    std::string name;
    double dropout;
    bool early_stopping;
    train::History history{};
    int64_t stopped = -1, best = -1;
    double final_val = 0;
  };
  std::vector<Run> runs = {{"no regularisation", 0.0, false},
                           {"dropout 0.8", 0.8, false},
                           {"early stopping", 0.0, true}};
  for (Run& r : runs) {
    soma::manual_seed(0);
    nn::Sequential model{nn::Linear(20, 256),  nn::ReLU(), nn::Dropout(r.dropout),
                         nn::Linear(256, 256), nn::ReLU(), nn::Dropout(r.dropout),
                         nn::Linear(256, 2)};
    soma::optim::Adam opt(model.parameters(), {.lr = 1e-3});
    train::FitOptions fo{.epochs = epochs, .validation = &val_loader};
    std::shared_ptr<train::EarlyStopping> stop;
    if (r.early_stopping) {
      stop = std::make_shared<train::EarlyStopping>(
          train::EarlyStoppingOptions{.monitor = "val_loss", .patience = 10});
      fo.callbacks.push_back(stop);
    }
    r.history = train::fit(model, opt, loss, train_loader, fo);
    if (stop) r.stopped = stop->stopped_epoch(), r.best = stop->best_epoch();
    r.final_val = train::evaluate(model, val_loader, loss).loss;  // restored weights, if any
    std::printf("%-18s %3zu epochs: train loss %.4f, validation loss %.4f (best %.4f)%s\n",
                r.name.c_str(), r.history.size(), r.history["loss"].back(), r.final_val,
                *std::min_element(r.history["val_loss"].begin(), r.history["val_loss"].end()),
                stop ? ("; stopped after epoch " + std::to_string(r.stopped + 1) +
                        ", best weights of epoch " + std::to_string(stop->best_epoch() + 1))
                           .c_str()
                     : "");
  }
  int failures = 0;
  const Run& plain = runs[0];
  const auto& pv = plain.history["val_loss"];
  const double best = *std::min_element(pv.begin(), pv.end());
  if (!(plain.final_val >= 1.5 * best && plain.history["loss"].back() < 0.1 * plain.final_val)) {
    std::printf("FAIL: the unregularised run should overfit (validation %.4f vs best %.4f)\n",
                plain.final_val, best);
    ++failures;
  }
  for (size_t i = 1; i < runs.size(); ++i)
    if (!(runs[i].final_val < plain.final_val)) {
      std::printf("FAIL: %s should end with a lower validation loss than no regularisation\n",
                  runs[i].name.c_str());
      ++failures;
    }

  std::vector<std::string> panels;
  for (const Run& r : runs) {
    plot::Chart c{.title = r.name, .xlabel = "epoch", .ylabel = "loss", .log_y = true};
    std::vector<double> ep;
    for (size_t e = 0; e < r.history.size(); ++e) ep.push_back(static_cast<double>(e + 1));
    c.series.push_back({.name = "train", .x = ep, .y = r.history["loss"]});
    c.series.push_back({.name = "validation", .x = ep, .y = r.history["val_loss"]});
    if (r.stopped >= 0) {
      c.vlines.push_back({static_cast<double>(r.best + 1), "best"});
      c.vlines.push_back({static_cast<double>(r.stopped + 1), "stopped"});
    }
    panels.push_back(plot::line_chart(c));
  }
  if (!plot::write_file(plot::out_dir(argc, argv) / "overfitting.svg", plot::page(panels)))
    return 1;
  return failures == 0 ? 0 : 1;
}
