// The normalisation modules: BatchNorm1d, BatchNorm2d (SyncBatchNorm's MPI part is in
// src/dist/sync_batchnorm.cpp), LayerNorm, GroupNorm.
#include "soma/nn/normalization.h"

#include <sstream>

#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"

namespace soma::nn {
namespace {

// Python's repr of a float: 1e-05, 0.1, 0.001.
std::string py_float(double v) {
  std::ostringstream os;
  os << v;
  std::string s = os.str();
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

const char* py_bool(bool b) {
  return b ? "True" : "False";
}

}  // namespace

// ---- BatchNorm -------------------------------------------------------------------------------
void BatchNormBase::reset_all() {
  const int64_t C = options.num_features();
  SOMA_CHECK(C > 0, name(), ": num_features must be positive, got ", C);
  const bool affine = options.affine(), track = options.track_running_stats();
  register_all(affine ? ones({C}) : Tensor(), affine ? zeros({C}) : Tensor(),
               track ? zeros({C}) : Tensor(), track ? ones({C}) : Tensor(),
               track ? zeros({}, kInt64) : Tensor());
}

void BatchNormBase::register_all(Tensor w, Tensor b, Tensor mean, Tensor var, Tensor count) {
  weight = w.defined() ? register_parameter("weight", w) : Tensor();
  bias = b.defined() ? register_parameter("bias", b) : Tensor();
  running_mean = mean.defined() ? register_buffer("running_mean", mean) : Tensor();
  running_var = var.defined() ? register_buffer("running_var", var) : Tensor();
  num_batches_tracked = count.defined() ? register_buffer("num_batches_tracked", count) : Tensor();
}

void BatchNormBase::reset_running_stats() {
  if (!options.track_running_stats()) return;
  NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (!options.affine()) return;
  NoGradGuard no_grad;
  weight.fill_(1);
  bias.zero_();
}

std::string BatchNormBase::describe() const {
  std::ostringstream os;
  os << name() << '(' << options.num_features() << ", eps=" << py_float(options.eps())
     << ", momentum=" << (options.momentum() ? py_float(*options.momentum()) : std::string("None"))
     << ", affine=" << py_bool(options.affine())
     << ", track_running_stats=" << py_bool(options.track_running_stats()) << ')';
  return os.str();
}

Tensor BatchNormBase::forward(const Tensor& input) {
  SOMA_CHECK(input.defined(), name(), ": called with an undefined tensor");
  check_input(input);
  SOMA_CHECK(input.size(1) == options.num_features(), name(), ": expected ", options.num_features(),
             " channels (num_features), got input of shape ", input.shape());
  // torch's _BatchNorm.forward: the factor is the momentum, or 1 / num_batches_tracked
  // (cumulative moving average) when momentum is None.
  double factor = options.momentum().value_or(0.0);
  const bool tracking = options.track_running_stats();
  const bool use_batch_stats = is_training() || !tracking;
  if (is_training() && tracking) {
    // num_batches_tracked counts the batch once it was accepted (torch counts it first).
    const int64_t seen = num_batches_tracked.item<int64_t>() + 1;
    if (!options.momentum()) factor = 1.0 / static_cast<double>(seen);
    Tensor y = normalize(input, true, factor);
    NoGradGuard no_grad;
    num_batches_tracked.fill_(seen);
    return y;
  }
  return normalize(input, use_batch_stats, factor);
}

Tensor BatchNormBase::normalize(const Tensor& input, bool use_batch_stats, double factor) {
  // In training the running tensors are updated only when tracked; in eval they are used.
  return functional::batch_norm(input, running_mean, running_var, weight, bias, use_batch_stats,
                                factor, options.eps());
}

void BatchNorm1d::check_input(const Tensor& input) const {
  SOMA_CHECK(input.dim() == 2 || input.dim() == 3, "BatchNorm1d: expected 2D or 3D input (got ",
             input.dim(), "D input of shape ", input.shape(), ")");
}

void BatchNorm2d::check_input(const Tensor& input) const {
  SOMA_CHECK(input.dim() == 4, "BatchNorm2d: expected 4D input (got ", input.dim(),
             "D input of shape ", input.shape(), ")");
}

// ---- LayerNorm -------------------------------------------------------------------------------
LayerNorm::LayerNorm(LayerNormOptions options) : options(std::move(options)) {
  reset();
}

void LayerNorm::reset() {
  const auto& s = options.normalized_shape();
  SOMA_CHECK(!s.empty(), "LayerNorm: normalized_shape must not be empty");
  for (int64_t d : s)
    SOMA_CHECK(d > 0, "LayerNorm: normalized_shape must be positive, got ", Shape(s));
  if (options.elementwise_affine()) {
    weight = register_parameter("weight", ones(Shape(s)));
    bias = register_parameter("bias", zeros(Shape(s)));
  } else {
    weight = bias = Tensor();
  }
}

void LayerNorm::reset_parameters() {
  if (!options.elementwise_affine()) return;
  NoGradGuard no_grad;
  weight.fill_(1);
  bias.zero_();
}

Tensor LayerNorm::forward(const Tensor& input) {
  return functional::layer_norm(input, options.normalized_shape(), weight, bias, options.eps());
}

std::string LayerNorm::describe() const {
  std::ostringstream os;
  os << "LayerNorm((";
  const auto& s = options.normalized_shape();
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ',';
  os << "), eps=" << py_float(options.eps())
     << ", elementwise_affine=" << py_bool(options.elementwise_affine()) << ')';
  return os.str();
}

// ---- GroupNorm -------------------------------------------------------------------------------
GroupNorm::GroupNorm(GroupNormOptions options) : options(options) {
  reset();
}

void GroupNorm::reset() {
  const int64_t G = options.num_groups(), C = options.num_channels();
  SOMA_CHECK(G > 0 && C > 0 && C % G == 0, "GroupNorm: num_channels must be divisible by ",
             "num_groups (got num_channels=", C, ", num_groups=", G, ")");
  if (options.affine()) {
    weight = register_parameter("weight", ones({C}));
    bias = register_parameter("bias", zeros({C}));
  } else {
    weight = bias = Tensor();
  }
}

void GroupNorm::reset_parameters() {
  if (!options.affine()) return;
  NoGradGuard no_grad;
  weight.fill_(1);
  bias.zero_();
}

Tensor GroupNorm::forward(const Tensor& input) {
  SOMA_CHECK(input.defined(), "GroupNorm: called with an undefined tensor");
  SOMA_CHECK(input.dim() >= 2 && input.size(1) == options.num_channels(), "GroupNorm: expected ",
             "input [N, ", options.num_channels(), ", *], got shape ", input.shape());
  return functional::group_norm(input, options.num_groups(), weight, bias, options.eps());
}

std::string GroupNorm::describe() const {
  std::ostringstream os;
  os << "GroupNorm(" << options.num_groups() << ", " << options.num_channels()
     << ", eps=" << py_float(options.eps()) << ", affine=" << py_bool(options.affine()) << ')';
  return os.str();
}

}  // namespace soma::nn
