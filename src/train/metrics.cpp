// Accuracy and the confusion matrix: argmax over the class dim, then integer counting.
#include "soma/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"

namespace soma::train {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Class ids [N] (contiguous int64) from logits [N, C] (argmax over dim 1) or int64 ids [N].
// `what` names the argument in errors ("logits", "labels").
Tensor class_ids(const Tensor& t, const char* op, const char* what) {
  SOMA_CHECK(t.defined(), op, ": ", what, " is an undefined tensor");
  if (t.dtype() == kInt64) {
    SOMA_CHECK(t.dim() == 1, op, ": int64 ", what, " must be class ids of shape [N], got ",
               t.shape());
    return t.contiguous();
  }
  SOMA_CHECK(is_floating(t.dtype()) && t.dim() == 2 && t.size(1) > 1, op, ": ", what,
             " must be float [N, C] with C > 1 (argmax over dim 1) or int64 class ids [N], got ",
             t.dtype(), " ", t.shape());
  NoGradGuard no_grad;
  return t.detach().argmax(1).contiguous();
}

}  // namespace

int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  Tensor pred = class_ids(logits, "accuracy", "logits");
  Tensor target = class_ids(labels, "accuracy", "labels");
  SOMA_CHECK(pred.size(0) == target.size(0), "accuracy: logits ", logits.shape(), " and labels ",
             labels.shape(), " hold different numbers of samples");
  const int64_t* p = pred.data<int64_t>();
  const int64_t* y = target.data<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0, n = pred.size(0); i < n; ++i) correct += p[i] == y[i];
  return correct;
}

double accuracy(const Tensor& logits, const Tensor& labels) {
  const int64_t correct = count_correct(logits, labels);
  const int64_t n = logits.size(0);
  return n == 0 ? kNaN : static_cast<double>(correct) / static_cast<double>(n);
}

ConfusionMatrix::ConfusionMatrix(int64_t num_classes) : num_classes_(num_classes) {
  SOMA_CHECK(num_classes > 0, "ConfusionMatrix: num_classes must be positive, got ", num_classes);
  counts_.assign(static_cast<size_t>(num_classes * num_classes), 0);
}

void ConfusionMatrix::update(const Tensor& logits_or_predictions, const Tensor& labels) {
  const char* op = "ConfusionMatrix::update";
  if (logits_or_predictions.defined() && is_floating(logits_or_predictions.dtype()) &&
      logits_or_predictions.dim() == 2)
    SOMA_CHECK(logits_or_predictions.size(1) == num_classes_, op, ": logits ",
               logits_or_predictions.shape(), " have ", logits_or_predictions.size(1),
               " classes, the matrix has ", num_classes_);
  SOMA_CHECK(labels.defined() && labels.dtype() == kInt64 && labels.dim() == 1, op,
             ": labels must be int64 class ids of shape [N], got ",
             labels.defined()
                 ? std::string(dtype_name(labels.dtype())) + " " + shape_str(labels.shape())
                 : std::string("an undefined tensor"));
  Tensor pred = class_ids(logits_or_predictions, op, "predictions");
  Tensor target = labels.contiguous();
  SOMA_CHECK(pred.size(0) == target.size(0), op, ": predictions ", logits_or_predictions.shape(),
             " and labels ", labels.shape(), " hold different numbers of samples");
  const int64_t n = pred.size(0);
  const int64_t* p = pred.data<int64_t>();
  const int64_t* y = target.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    SOMA_CHECK(y[i] >= 0 && y[i] < num_classes_, op, ": label ", y[i], " at index ", i,
               " is out of range [0, ", num_classes_, ")");
    SOMA_CHECK(p[i] >= 0 && p[i] < num_classes_, op, ": prediction ", p[i], " at index ", i,
               " is out of range [0, ", num_classes_, ")");
  }
  for (int64_t i = 0; i < n; ++i) ++counts_[static_cast<size_t>(y[i] * num_classes_ + p[i])];
}

void ConfusionMatrix::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
}

int64_t ConfusionMatrix::at(int64_t true_class, int64_t predicted) const {
  SOMA_CHECK(
      true_class >= 0 && true_class < num_classes_ && predicted >= 0 && predicted < num_classes_,
      "ConfusionMatrix::at: (", true_class, ", ", predicted, ") is out of range [0, ", num_classes_,
      ")");
  return counts_[static_cast<size_t>(true_class * num_classes_ + predicted)];
}

std::vector<double> ConfusionMatrix::per_class_accuracy() const {
  std::vector<double> out(static_cast<size_t>(num_classes_));
  for (int64_t t = 0; t < num_classes_; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < num_classes_; ++p) row += at(t, p);
    out[static_cast<size_t>(t)] =
        row == 0 ? kNaN : static_cast<double>(at(t, t)) / static_cast<double>(row);
  }
  return out;
}

int64_t ConfusionMatrix::total() const {
  int64_t n = 0;
  for (int64_t c : counts_) n += c;
  return n;
}

double ConfusionMatrix::accuracy() const {
  int64_t diag = 0;
  for (int64_t c = 0; c < num_classes_; ++c) diag += at(c, c);
  const int64_t n = total();
  return n == 0 ? kNaN : static_cast<double>(diag) / static_cast<double>(n);
}

std::string ConfusionMatrix::to_string(const std::vector<std::string>& class_names) const {
  SOMA_CHECK(class_names.empty() || static_cast<int64_t>(class_names.size()) == num_classes_,
             "ConfusionMatrix::to_string: ", class_names.size(), " class names for ", num_classes_,
             " classes");
  auto name = [&](int64_t c) {
    return class_names.empty() ? std::to_string(c) : class_names[static_cast<size_t>(c)];
  };
  size_t label_w = 4;  // "true"
  for (int64_t c = 0; c < num_classes_; ++c) label_w = std::max(label_w, name(c).size());
  size_t cell_w = 4;
  for (int64_t c : counts_) cell_w = std::max(cell_w, std::to_string(c).size());
  for (int64_t c = 0; c < num_classes_; ++c) cell_w = std::max(cell_w, std::to_string(c).size());
  std::ostringstream os;
  os << std::setw(static_cast<int>(label_w)) << "true"
     << " |";
  for (int64_t p = 0; p < num_classes_; ++p) os << ' ' << std::setw(static_cast<int>(cell_w)) << p;
  os << " | accuracy\n";
  const std::vector<double> acc = per_class_accuracy();
  for (int64_t t = 0; t < num_classes_; ++t) {
    os << std::setw(static_cast<int>(label_w)) << name(t) << " |";
    for (int64_t p = 0; p < num_classes_; ++p)
      os << ' ' << std::setw(static_cast<int>(cell_w)) << at(t, p);
    os << " | ";
    if (std::isnan(acc[static_cast<size_t>(t)]))
      os << "-";
    else
      os << std::fixed << std::setprecision(4) << acc[static_cast<size_t>(t)] << std::defaultfloat;
    os << '\n';
  }
  return os.str();
}

}  // namespace soma::train
