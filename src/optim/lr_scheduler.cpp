// torch/optim/lr_scheduler.py (PyTorch 1.13): the recursive get_lr() of each scheduler, so the
// sequences agree with PyTorch's to the last bit.
#include "soma/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "soma/core/error.h"

namespace soma::optim {
namespace {

Tensor f64(double v) {
  return full({}, v, kFloat64);
}
Tensor i64(int64_t v) {
  Tensor t = zeros({}, kInt64);
  t.data<int64_t>()[0] = v;
  return t;
}

const Tensor& entry(const SchedulerState& s, const std::string& who, const std::string& key,
                    DType dtype) {
  auto it = s.find(key);
  SOMA_CHECK(it != s.end(), who, "::load_state_dict: missing key \"", key, "\"");
  SOMA_CHECK(it->second.defined() && it->second.dim() == 0 && it->second.dtype() == dtype, who,
             "::load_state_dict: \"", key, "\" must be a 0-d ", dtype_name(dtype), " tensor");
  return it->second;
}
double get_f64(const SchedulerState& s, const std::string& who, const std::string& key) {
  return entry(s, who, key, kFloat64).item<double>();
}
int64_t get_i64(const SchedulerState& s, const std::string& who, const std::string& key) {
  return entry(s, who, key, kInt64).item<int64_t>();
}
// The number of "<prefix><g>" keys, which must be 0..n-1.
size_t group_count(const SchedulerState& s, const std::string& prefix) {
  size_t n = 0;
  while (s.count(prefix + std::to_string(n))) ++n;
  return n;
}

}  // namespace

LRScheduler::LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g)
    base_lrs_.push_back(optimizer.group_lr(g));
}

void LRScheduler::initialize() {
  step();
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  last_lr_.clear();
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr = compute_lr(g, optimizer_.group_lr(g));
    optimizer_.set_group_lr(g, lr);
    last_lr_.push_back(lr);
  }
}

SchedulerState LRScheduler::state_dict() const {
  SchedulerState s;
  s["last_epoch"] = i64(last_epoch_);
  s["step_count"] = i64(step_count_);
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    s["base_lrs." + std::to_string(g)] = f64(base_lrs_[g]);
    s["last_lr." + std::to_string(g)] = f64(last_lr_.at(g));
  }
  return s;
}

void LRScheduler::load_state_dict(const SchedulerState& s) {
  const std::string who = "LRScheduler";
  const size_t groups = group_count(s, "base_lrs.");
  SOMA_CHECK(groups == base_lrs_.size(), who, "::load_state_dict: the state has ", groups,
             " parameter groups, the optimizer ", base_lrs_.size());
  std::vector<double> base(groups), last(groups);
  for (size_t g = 0; g < groups; ++g) {
    base[g] = get_f64(s, who, "base_lrs." + std::to_string(g));
    last[g] = get_f64(s, who, "last_lr." + std::to_string(g));
  }
  const int64_t last_epoch = get_i64(s, who, "last_epoch");
  const int64_t step_count = get_i64(s, who, "step_count");
  SOMA_CHECK(last_epoch >= 0 && step_count >= 1, who, "::load_state_dict: last_epoch ", last_epoch,
             " and step_count ", step_count, " are not a stepped scheduler's");
  base_lrs_ = std::move(base);
  last_lr_ = std::move(last);
  last_epoch_ = last_epoch;
  step_count_ = step_count;
}

StepLR::StepLR(Optimizer& optimizer, StepLROptions options)
    : LRScheduler(optimizer), options_(options) {
  SOMA_CHECK(options.step_size > 0, "StepLR: step_size must be positive, got ", options.step_size);
  initialize();
}
double StepLR::compute_lr(size_t, double lr) {
  if (last_epoch_ == 0 || last_epoch_ % options_.step_size != 0) return lr;
  return lr * options_.gamma;
}

MultiStepLR::MultiStepLR(Optimizer& optimizer, MultiStepLROptions options)
    : LRScheduler(optimizer), options_(std::move(options)) {
  SOMA_CHECK(std::is_sorted(options_.milestones.begin(), options_.milestones.end()),
             "MultiStepLR: milestones must be increasing");
  initialize();
}
double MultiStepLR::compute_lr(size_t, double lr) {
  const auto n = std::count(options_.milestones.begin(), options_.milestones.end(), last_epoch_);
  return n == 0 ? lr : lr * std::pow(options_.gamma, static_cast<double>(n));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, ExponentialLROptions options)
    : LRScheduler(optimizer), options_(options) {
  initialize();
}
double ExponentialLR::compute_lr(size_t, double lr) {
  return last_epoch_ == 0 ? lr : lr * options_.gamma;
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, CosineAnnealingLROptions options)
    : LRScheduler(optimizer), options_(options) {
  SOMA_CHECK(options.T_max > 0, "CosineAnnealingLR: T_max must be positive, got ", options.T_max);
  initialize();
}
double CosineAnnealingLR::compute_lr(size_t g, double lr) {
  const double pi = std::numbers::pi, T = static_cast<double>(options_.T_max);
  const double e = static_cast<double>(last_epoch_), eta = options_.eta_min;
  if (last_epoch_ == 0) return base_lrs_[g];
  if (step_count_ == 1 && last_epoch_ > 0)
    return eta + (base_lrs_[g] - eta) * (1 + std::cos(e * pi / T)) / 2;
  if ((last_epoch_ - 1 - options_.T_max) % (2 * options_.T_max) == 0)
    return lr + (base_lrs_[g] - eta) * (1 - std::cos(pi / T)) / 2;
  return (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) * (lr - eta) + eta;
}

LinearLR::LinearLR(Optimizer& optimizer, LinearLROptions options)
    : LRScheduler(optimizer), options_(options) {
  SOMA_CHECK(options.start_factor > 0 && options.start_factor <= 1, "LinearLR: start_factor must ",
             "be in (0, 1], got ", options.start_factor);
  SOMA_CHECK(options.end_factor >= 0 && options.end_factor <= 1, "LinearLR: end_factor must be ",
             "in [0, 1], got ", options.end_factor);
  SOMA_CHECK(options.total_iters > 0, "LinearLR: total_iters must be positive, got ",
             options.total_iters);
  initialize();
}
double LinearLR::compute_lr(size_t, double lr) {
  const double s = options_.start_factor, e = options_.end_factor;
  if (last_epoch_ == 0) return lr * s;
  if (last_epoch_ > options_.total_iters) return lr;
  return lr * (1.0 + (e - s) / (static_cast<double>(options_.total_iters) * s +
                                static_cast<double>(last_epoch_ - 1) * (e - s)));
}

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options)
    : optimizer_(optimizer), options_(options) {
  SOMA_CHECK(options.factor < 1.0 && options.factor >= 0.0,
             "ReduceLROnPlateau: factor should be < 1.0, got ", options.factor);
  SOMA_CHECK(options.patience >= 0, "ReduceLROnPlateau: patience must be >= 0, got ",
             options.patience);
  best_ = options.mode == PlateauMode::Min ? std::numeric_limits<double>::infinity()
                                           : -std::numeric_limits<double>::infinity();
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g)
    last_lr_.push_back(optimizer.group_lr(g));
}

SchedulerState ReduceLROnPlateau::state_dict() const {
  SchedulerState s;
  s["best"] = f64(best_);
  s["num_bad_epochs"] = i64(num_bad_epochs_);
  s["cooldown_counter"] = i64(cooldown_counter_);
  s["last_epoch"] = i64(last_epoch_);
  for (size_t g = 0; g < last_lr_.size(); ++g) s["last_lr." + std::to_string(g)] = f64(last_lr_[g]);
  return s;
}

void ReduceLROnPlateau::load_state_dict(const SchedulerState& s) {
  const std::string who = "ReduceLROnPlateau";
  const size_t groups = group_count(s, "last_lr.");
  SOMA_CHECK(groups == last_lr_.size(), who, "::load_state_dict: the state has ", groups,
             " parameter groups, the optimizer ", last_lr_.size());
  std::vector<double> last(groups);
  for (size_t g = 0; g < groups; ++g) last[g] = get_f64(s, who, "last_lr." + std::to_string(g));
  const double best = get_f64(s, who, "best");
  const int64_t bad = get_i64(s, who, "num_bad_epochs");
  const int64_t cooldown = get_i64(s, who, "cooldown_counter");
  const int64_t last_epoch = get_i64(s, who, "last_epoch");
  SOMA_CHECK(!std::isnan(best) && bad >= 0 && cooldown >= 0 && last_epoch >= 0, who,
             "::load_state_dict: invalid state (best ", best, ", num_bad_epochs ", bad,
             ", cooldown_counter ", cooldown, ", last_epoch ", last_epoch, ")");
  best_ = best;
  num_bad_epochs_ = bad;
  cooldown_counter_ = cooldown;
  last_epoch_ = last_epoch;
  last_lr_ = std::move(last);
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  const double t = options_.threshold;
  const bool rel = options_.threshold_mode == ThresholdMode::Rel;
  if (options_.mode == PlateauMode::Min) return a < (rel ? best * (1.0 - t) : best - t);
  return a > (rel ? best * (t + 1.0) : best + t);
}

void ReduceLROnPlateau::step(double metric) {
  SOMA_CHECK(!std::isnan(metric), "ReduceLROnPlateau: the metric is NaN");
  ++last_epoch_;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;
  }
  if (num_bad_epochs_ > options_.patience) {
    for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
      const double old_lr = optimizer_.group_lr(g);
      const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
      if (old_lr - new_lr > options_.eps) optimizer_.set_group_lr(g, new_lr);
    }
    cooldown_counter_ = options_.cooldown;
    num_bad_epochs_ = 0;
  }
  last_lr_.clear();
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g)
    last_lr_.push_back(optimizer_.group_lr(g));
}

}  // namespace soma::optim
