// report.html: one self-contained page (no network) with the metrics table, the training curves
// (early-stopping epoch marked), the confusion matrix, misclassified test images, for
// convolutional models the first layer's filters and one test image's feature maps, the model
// summary and the configuration. Charts are inline SVG; images are drawn on canvases by an inline
// script, which marks each canvas data-drawn="1" (the rendering test checks it in headless
// Chromium).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace soma::cli {

struct Misclassified {
  std::vector<uint8_t> pixels;  // side x side grey levels (empty when inputs are not images)
  int64_t truth = 0, predicted = 0;
};

/// Grey images of one size shown as a grid under a heading (filters, feature maps).
struct ImageGrid {
  std::string title;
  int64_t height = 0, width = 0;
  std::vector<std::vector<uint8_t>> images;  // height x width grey levels each (0 black)
  std::vector<std::string> captions;         // one per image, or none
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
  nlohmann::json metrics;  // metrics.json's object, shown as a table
  /// The first layer's filters (a 4-D weight), and one test image's feature maps (every 4-D
  /// output of the model's layers, the input first); empty for models without images.
  std::vector<ImageGrid> filters, feature_maps;
};

std::string render_report(const ReportData& data);

}  // namespace soma::cli
