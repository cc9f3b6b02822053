// Learning-rate schedulers with torch.optim.lr_scheduler's semantics (PyTorch 1.13, the
// chainable form): constructing one sets epoch 0's rate, step() advances one epoch.
//   soma::optim::StepLR sched(opt, {.step_size = 10, .gamma = 0.1});
//   for (int epoch = 0; epoch < 30; ++epoch) { train_one_epoch(); sched.step(); }
//
// Resume: state_dict() holds everything a scheduler carries between epochs (torch's
// scheduler.state_dict()); load_state_dict() into a scheduler built over the same optimizer
// with the same options continues the schedule exactly. Restore the optimizer's own state as
// well (it holds the current rates).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "soma/optim/optimizer.h"

namespace soma::optim {

/// A scheduler's state by name, as 0-d tensors: float64 for rates and metric values, int64
/// for counters. LRScheduler: "last_epoch", "step_count", "base_lrs.<g>", "last_lr.<g>";
/// ReduceLROnPlateau: "best", "num_bad_epochs", "cooldown_counter", "last_epoch",
/// "last_lr.<g>".
using SchedulerState = std::map<std::string, Tensor>;

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  /// Advances one epoch and sets the optimizer's learning rates.
  virtual void step();
  /// The rates set by the last step (one per parameter group).
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  /// The scheduler's state (see SchedulerState).
  SchedulerState state_dict() const;
  /// Restores state_dict() of a scheduler over as many parameter groups; a missing key, a
  /// wrong dtype or shape, or a different group count is an error naming the key. Does not
  /// change the optimizer's rates (restore the optimizer's state for those).
  void load_state_dict(const SchedulerState& state);

 protected:
  explicit LRScheduler(Optimizer& optimizer);
  /// Call at the end of the derived constructor: epoch 0.
  void initialize();
  /// The new rate of group g from its current rate (torch's get_lr()).
  virtual double compute_lr(size_t g, double current) = 0;

  Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  std::vector<double> last_lr_;
  int64_t last_epoch_ = -1;
  int64_t step_count_ = 0;
};

struct StepLROptions {
  int64_t step_size = 1;  // epochs between decays
  double gamma = 0.1;     // multiplicative factor
};
/// lr <- lr * gamma every step_size epochs.
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, StepLROptions options);

 protected:
  double compute_lr(size_t g, double current) override;
  StepLROptions options_;
};

struct MultiStepLROptions {
  std::vector<int64_t> milestones;  // epochs at which to decay
  double gamma = 0.1;
};
/// lr <- lr * gamma at each milestone epoch.
class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& optimizer, MultiStepLROptions options);

 protected:
  double compute_lr(size_t g, double current) override;
  MultiStepLROptions options_;
};

struct ExponentialLROptions {
  double gamma = 0.9;
};
/// lr <- lr * gamma every epoch.
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, ExponentialLROptions options);

 protected:
  double compute_lr(size_t g, double current) override;
  ExponentialLROptions options_;
};

struct CosineAnnealingLROptions {
  int64_t T_max = 10;    // half period in epochs
  double eta_min = 0.0;  // minimum rate
};
/// Cosine annealing from the base rate to eta_min over T_max epochs (and back up, periodically).
class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, CosineAnnealingLROptions options);

 protected:
  double compute_lr(size_t g, double current) override;
  CosineAnnealingLROptions options_;
};

struct LinearLROptions {
  double start_factor = 1.0 / 3;  // factor at epoch 0
  double end_factor = 1.0;        // factor from total_iters on
  int64_t total_iters = 5;        // epochs of the linear ramp (warm-up)
};
/// Multiplies the base rate by a factor going linearly from start_factor to end_factor.
class LinearLR : public LRScheduler {
 public:
  LinearLR(Optimizer& optimizer, LinearLROptions options = {});

 protected:
  double compute_lr(size_t g, double current) override;
  LinearLROptions options_;
};

enum class PlateauMode { Min, Max };
enum class ThresholdMode { Rel, Abs };
struct ReduceLROnPlateauOptions {
  PlateauMode mode = PlateauMode::Min;  // minimise (loss) or maximise (accuracy)
  double factor = 0.1;                  // new lr = lr * factor
  int64_t patience = 10;                // epochs without improvement before a cut
  double threshold = 1e-4;              // what counts as an improvement
  ThresholdMode threshold_mode = ThresholdMode::Rel;
  int64_t cooldown = 0;  // epochs to wait after a cut
  double min_lr = 0.0;   // lower bound of every group's rate
  double eps = 1e-8;     // smaller changes are ignored
};
/// Cuts the rate by `factor` when the monitored metric stops improving for `patience` epochs.
class ReduceLROnPlateau {
 public:
  ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {});
  void step(double metric);
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  int64_t cooldown_counter() const { return cooldown_counter_; }
  double best() const { return best_; }
  /// The state (see SchedulerState) and its restore, as LRScheduler's.
  SchedulerState state_dict() const;
  void load_state_dict(const SchedulerState& state);

 private:
  bool is_better(double a, double best) const;
  Optimizer& optimizer_;
  ReduceLROnPlateauOptions options_;
  double best_;
  int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0, last_epoch_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace soma::optim
