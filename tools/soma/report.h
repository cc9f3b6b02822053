// report.html: one self-contained page (no network) with the training curves (early-stopping
// epoch marked), the confusion matrix, misclassified test images, the model summary and the
// configuration. Charts are inline SVG; images are drawn on canvases by an inline script, which
// marks each canvas data-drawn="1" (the rendering test checks it in headless Chromium).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace soma::cli {

struct Misclassified {
  std::vector<uint8_t> pixels;  // side x side grey levels (empty when inputs are not images)
  int64_t truth = 0, predicted = 0;
};

struct ReportData {
  std::string title;
  std::map<std::string, std::vector<double>> history;  // "loss", "val_loss", "accuracy", ...
  int64_t best_epoch = -1;                             // 1-based; marked on the curves
  int64_t stopped_epoch = -1;      // 1-based epoch where early stopping ended training, or -1
  std::vector<int64_t> confusion;  // classes x classes, row = true class
  int64_t classes = 0;
  std::vector<std::string> class_names;
  std::vector<Misclassified> misclassified;
  int64_t image_side = 0;  // 28 for Fashion-MNIST, 0 when inputs are not images
  std::string summary;     // model summary table
  std::string config_json;
  std::string metrics_json;
};

std::string render_report(const ReportData& data);

}  // namespace soma::cli
