// train metrics: classification accuracy and the confusion matrix.
//
// Inputs are the model's raw outputs or class ids. Shapes: N samples, C classes.
//   logits       float [N, C] (C > 1)   the predicted class is argmax over dim 1
//   predictions  int64 [N]              class ids
//   labels       int64 [N]              class ids (float [N, C] probabilities / one-hot
//                                       targets count as their argmax, for accuracy())
//
//   double acc = soma::train::accuracy(model.forward(x), y);        // fraction in [0, 1]
//   soma::train::ConfusionMatrix cm(10);
//   for (auto& [xb, yb] : test_loader) cm.update(model.forward(xb), yb);
//   cm.at(3, 5);               // samples of class 3 predicted as 5
//   cm.per_class_accuracy();   // recall of each class
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::train {

/// Fraction of samples whose predicted class equals the label: mean(argmax(logits, 1) == labels).
/// `logits` is float [N, C] with C > 1 or int64 predictions [N]; `labels` int64 [N] or float
/// [N, C] (probability targets, compared by their argmax). An empty batch gives NaN.
double accuracy(const Tensor& logits, const Tensor& labels);

/// Number of correct predictions (the numerator of accuracy()).
int64_t count_correct(const Tensor& logits, const Tensor& labels);

/// Counts of (true class, predicted class) pairs, accumulated over batches.
/// Row = true class, column = predicted class, like sklearn.metrics.confusion_matrix.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t num_classes);

  /// Adds one batch: float logits [N, num_classes] (argmax over dim 1) or int64 predictions
  /// [N], against int64 labels [N]. A label or prediction outside [0, num_classes) is an error
  /// that names it and its index in the batch; nothing is counted then.
  void update(const Tensor& logits_or_predictions, const Tensor& labels);
  /// Clears every count.
  void reset();

  /// Samples of class `true_class` predicted as `predicted`.
  int64_t at(int64_t true_class, int64_t predicted) const;
  /// For each class: correct / samples of that class (its recall); NaN for a class never seen.
  std::vector<double> per_class_accuracy() const;
  /// Trace / total; NaN before any update.
  double accuracy() const;
  /// All samples counted so far.
  int64_t total() const;
  int64_t num_classes() const { return num_classes_; }
  /// Row-major [num_classes x num_classes] counts: counts()[t * num_classes + p].
  const std::vector<int64_t>& counts() const { return counts_; }
  /// A text table: one row per true class, one column per predicted class, then the class's
  /// accuracy; `class_names` (optional, one per class) label the rows.
  std::string to_string(const std::vector<std::string>& class_names = {}) const;

 private:
  int64_t num_classes_;
  std::vector<int64_t> counts_;
};

}  // namespace soma::train
