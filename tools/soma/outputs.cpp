#include "outputs.h"

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <vector>

#include "model_file.h"
#include "report.h"
#include "soma/autograd/grad_mode.h"
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
  const data::Normalization& norm = data.norm;
  std::vector<Misclassified>& wrong = r.wrong;
  NoGradGuard no_grad;
  const int64_t n = test.y.numel();
  for (int64_t start = 0; start < n; start += 4096) {
    const int64_t len = std::min<int64_t>(4096, n - start);
    const Tensor xb = test.x.narrow(0, start, len), yb = test.y.narrow(0, start, len);
    const Tensor pred = argmax(model(norm.transform()(xb)), 1);
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
  report.summary = model.summary({1, arch.in_features});
  report.config_json = to_json(c);
  report.metrics_json = metrics.dump(2);
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
