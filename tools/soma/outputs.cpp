#include "outputs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <vector>

#include "model_file.h"
#include "report.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/core/threading.h"
#include "soma/dist/dist.h"
#include "soma/io/file.h"
#include "soma/ops/reduce.h"
#include "soma/train/fit.h"
#include "soma/train/metrics.h"

namespace soma::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct TestResult {
  soma::train::EvalResult eval;
  soma::train::ConfusionMatrix confusion;
  std::vector<Misclassified> wrong;  // up to 36 misclassified images
};

// Test set: loss, accuracy, confusion matrix, misclassified examples.
TestResult test_model(TrainData& data, nn::Sequential& model) {
  model.eval();
  TestResult r{soma::train::evaluate(model, data.test_loader, training_loss),
               soma::train::ConfusionMatrix(data.classes),
               {}};
  const Data& test = data.test;
  std::vector<Misclassified>& wrong = r.wrong;
  NoGradGuard no_grad;
  const int64_t n = test.y.numel();
  // In kEvalBatch images (a convolutional model's activations at 4096 took over 1 GB).
  for (int64_t start = 0; start < n; start += kEvalBatch) {
    const int64_t len = std::min<int64_t>(kEvalBatch, n - start);
    const Tensor xb = test.x.narrow(0, start, len), yb = test.y.narrow(0, start, len);
    const Tensor pred = argmax(model(data.input(xb)), 1);
    r.confusion.update(pred, yb);
    if (test.side > 0 && wrong.size() < 36) {
      const std::vector<int64_t> p = pred.to_vector<int64_t>(), t = yb.to_vector<int64_t>();
      for (int64_t i = 0; i < len && wrong.size() < 36; ++i) {
        if (p[i] == t[i]) continue;
        wrong.push_back({xb.narrow(0, i, 1).to_vector<uint8_t>(), t[i], p[i]});
      }
    }
  }
  return r;
}

// Grey levels of a [H, W] map: min..max to 0..255 (`symmetric`: -m..m, 0 grey, m = max |v|).
std::vector<uint8_t> grey(const Tensor& map, bool symmetric) {
  const std::vector<float> v = map.contiguous().to_vector<float>();
  float lo = INFINITY, hi = -INFINITY;
  for (float x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  if (symmetric) hi = std::max(std::abs(lo), std::abs(hi)), lo = -hi;
  std::vector<uint8_t> out;
  out.reserve(v.size());
  for (float x : v) {
    const double t = hi > lo && std::isfinite(x) ? (x - lo) / (double(hi) - lo) : 0.0;
    out.push_back(static_cast<uint8_t>(std::lround(std::clamp(t, 0.0, 1.0) * 255)));
  }
  return out;
}

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The pictures of a convolutional model: the first layer's filters (its 4-D "weight", e.g.
// Conv2d's [out, in, kH, kW]) and, for one input x [1, ...] (normalised), every 4-D output of
// the model's layers run one by one (the input first when it is an image). Nothing for models
// whose layers see no images.
void model_pictures(nn::Sequential& model, const Tensor& x, ReportData& report) {
  constexpr int64_t kMaxFilters = 64, kMaxMaps = 16;
  if (model.empty()) return;
  for (const auto& [name, w] : model.ptr(0)->named_parameters(false)) {
    if (name != "weight" || w.dim() != 4) continue;
    ImageGrid g{"layer 0: " + model[0].describe() + ", weight " + shape_text(w.shape()),
                w.size(2),
                w.size(3),
                {},
                {}};
    const Tensor wd = w.detach();
    for (int64_t o = 0; o < w.size(0) && int64_t(g.images.size()) < kMaxFilters; ++o)
      for (int64_t i = 0; i < w.size(1) && int64_t(g.images.size()) < kMaxFilters; ++i) {
        g.images.push_back(grey(wd.narrow(0, o, 1).narrow(1, i, 1), true));
        g.captions.push_back(w.size(1) > 1 ? std::to_string(o) + "," + std::to_string(i)
                                           : std::to_string(o));
      }
    // one scale for all filters, as they are compared with each other
    const std::vector<uint8_t> all = grey(wd.narrow(0, 0, std::min(w.size(0), kMaxFilters)), true);
    const int64_t per = w.size(2) * w.size(3);
    for (size_t k = 0; k < g.images.size(); ++k) {
      const int64_t o = int64_t(k) / w.size(1), i = int64_t(k) % w.size(1);
      const int64_t at = (o * w.size(1) + i) * per;
      if (at + per <= int64_t(all.size()))
        g.images[k].assign(all.begin() + at, all.begin() + at + per);
    }
    report.filters.push_back(std::move(g));
  }
  auto maps = [&](const std::string& title, const Tensor& y) {
    if (y.dim() != 4 || y.size(0) != 1) return;
    ImageGrid g{title + ": output " + shape_text(y.shape()), y.size(2), y.size(3), {}, {}};
    for (int64_t c = 0; c < std::min(y.size(1), kMaxMaps); ++c) {
      g.images.push_back(grey(y.narrow(1, c, 1), false));
      g.captions.push_back("channel " + std::to_string(c));
    }
    report.feature_maps.push_back(std::move(g));
  };
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Tensor y = x;
  if (y.dim() == 4) {
    maps("input", y);
    report.feature_maps.back().title = "input image " + shape_text(y.shape());
  }
  try {
    for (size_t i = 0; i < model.size(); ++i) {
      y = model[int64_t(i)](y);
      maps("layer " + std::to_string(i) + ": " + model[int64_t(i)].describe(), y);
    }
  } catch (const soma::Error&) {  // the report shows what it has; the test already ran this model
  }
  model.train(was_training);
  if (report.feature_maps.size() == 1 && x.dim() == 4) report.feature_maps.clear();  // input only
}

std::vector<double> column(const json& history, const char* key) {
  std::vector<double> v;
  for (const json& r : history) v.push_back(r.value(key, std::nan("")));
  return v;
}

}  // namespace

void write_outputs(const TrainConfig& c, TrainData& data, const Architecture& arch,
                   nn::Sequential& model, const json& hist, int64_t initial_epoch,
                   double train_seconds, int world) {
  const TestResult test = test_model(data, model);
  const int64_t epochs_run = static_cast<int64_t>(hist.size());
  int64_t best_epoch = epochs_run;
  double best_val = INFINITY;
  for (int64_t e = 0; e < epochs_run; ++e) {
    const double v = hist[e].value("val_loss", INFINITY);
    if (v < best_val) best_val = v, best_epoch = e + 1;
  }
  const bool stopped_early = epochs_run < c.epochs;
  int64_t samples_trained = (epochs_run - initial_epoch) * data.train_set.size();
  json metrics = {{"test_accuracy", test.eval.accuracy},
                  {"test_loss", test.eval.loss},
                  {"epochs_run", epochs_run},
                  {"best_epoch", best_epoch},
                  {"best_val_loss", best_val},
                  {"stopped_early", stopped_early},
                  {"train_seconds", train_seconds},
                  {"data_seconds", data.load_seconds},
                  {"samples_per_second", train_seconds > 0 ? samples_trained / train_seconds : 0.0},
                  {"per_class_accuracy", test.confusion.per_class_accuracy()},
                  {"threads", get_num_threads()},
                  {"ranks", world}};
  if (world > 1) metrics["allreduce_seconds"] = dist::comm_stats().seconds;
  save_model((fs::path(c.out) / "model.safetensors").string(), model, arch, data.norm);
  io::atomic_write((fs::path(c.out) / "metrics.json").string(), metrics.dump(2) + "\n");

  ReportData report;
  report.title = "soma train: " + (c.csv.empty() ? c.data : c.csv);
  for (const char* k : {"loss", "accuracy", "val_loss", "val_accuracy"})
    report.history[k] = column(hist, k);
  report.best_epoch = best_epoch;
  report.stopped_epoch = stopped_early ? epochs_run : -1;
  report.confusion = test.confusion.counts();
  report.classes = data.classes;
  report.class_names = data.class_names;
  report.misclassified = test.wrong;
  report.image_side = data.test.side;
  Shape input_shape{1};
  input_shape.insert(input_shape.end(), arch.input_shape.begin(), arch.input_shape.end());
  report.summary = model.summary(input_shape);
  report.config_json = to_json(c);
  report.metrics = metrics;
  if (data.test.y.numel() > 0)
    model_pictures(model, data.input(data.test.x.narrow(0, 0, 1)), report);
  const std::string report_path = (fs::path(c.out) / "report.html").string();
  io::atomic_write(report_path, render_report(report));

  if (!c.quiet) {
    std::cout << std::fixed << std::setprecision(4) << "test accuracy " << test.eval.accuracy
              << "  test loss " << test.eval.loss << "  (" << epochs_run << " epochs, best "
              << best_epoch << ", " << std::setprecision(1) << train_seconds << " s)\n"
              << "wrote " << c.out << "/{model.safetensors, checkpoint.safetensors, history.csv, "
              << "metrics.json, report.html}\nreport: " << fs::absolute(report_path).string()
              << "\n";
  }
}

}  // namespace soma::cli
