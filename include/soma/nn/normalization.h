// Normalisation layers (PyTorch semantics): functional batch_norm, layer_norm, group_norm and
// the modules BatchNorm1d, BatchNorm2d, SyncBatchNorm, LayerNorm, GroupNorm.
//
//   nn::Sequential model(nn::Conv2d(1, 32, 3), nn::BatchNorm2d(32), nn::ReLU());
//   nn::BatchNorm2d bn(nn::BatchNorm2dOptions(32).momentum(std::nullopt).eps(1e-3));
//   Tensor y = F::layer_norm(x, {x.size(-1)});
//
// BatchNorm normalises each channel with the batch's biased variance in training and updates
// the buffers running_mean / running_var (unbiased variance; momentum m: running = (1 - m)
// running + m batch, or the cumulative average when momentum is nullopt) and
// num_batches_tracked (int64, 0-d); in eval it uses the buffers. Names and shapes are torch's,
// so a state_dict() matches torch.nn.BatchNorm2d's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "soma/nn/module.h"

namespace soma::nn {
namespace functional {

/// torch.nn.functional.batch_norm: input [N, C, *]; running_mean / running_var [C] (may be
/// undefined in training), weight / bias [C] (optional). training: normalise with the batch's
/// mean and biased variance and update the defined running tensors in place (without grad)
/// with the unbiased variance; otherwise normalise with the running statistics.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                  double momentum = 0.1, double eps = 1e-5);
/// torch.nn.functional.layer_norm: normalises over the trailing dims `normalized_shape`;
/// weight / bias of shape normalized_shape (optional).
Tensor layer_norm(const Tensor& input, const std::vector<int64_t>& normalized_shape,
                  const Tensor& weight = {}, const Tensor& bias = {}, double eps = 1e-5);
/// torch.nn.functional.group_norm: input [N, C, *], channels split into num_groups groups,
/// each (sample, group) normalised; weight / bias [C] (optional).
Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

}  // namespace functional

/// Options of BatchNorm1d / BatchNorm2d / SyncBatchNorm (libtorch's BatchNormOptions).
struct BatchNormOptions {
  BatchNormOptions(int64_t num_features) : num_features_(num_features) {}  // NOLINT: implicit
  BatchNormOptions& num_features(int64_t v) {
    num_features_ = v;
    return *this;
  }
  BatchNormOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  /// nullopt: the cumulative moving average (factor 1 / num_batches_tracked).
  BatchNormOptions& momentum(std::optional<double> v) {
    momentum_ = v;
    return *this;
  }
  BatchNormOptions& affine(bool v) {
    affine_ = v;
    return *this;
  }
  BatchNormOptions& track_running_stats(bool v) {
    track_running_stats_ = v;
    return *this;
  }
  int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  std::optional<double> momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_running_stats_; }

 private:
  int64_t num_features_;
  double eps_ = 1e-5;
  std::optional<double> momentum_ = 0.1;
  bool affine_ = true;
  bool track_running_stats_ = true;
};
using BatchNorm1dOptions = BatchNormOptions;
using BatchNorm2dOptions = BatchNormOptions;
using SyncBatchNormOptions = BatchNormOptions;

/// The state and forward shared by BatchNorm1d, BatchNorm2d and SyncBatchNorm: weight (ones) and
/// bias (zeros) [C] when affine; buffers running_mean (zeros), running_var (ones) and
/// num_batches_tracked (int64 0-d, 0) when track_running_stats.
class BatchNormBase : public Module {
 public:
  explicit BatchNormBase(BatchNormOptions options) : options(options) {}
  Tensor forward(const Tensor& input) override;
  /// One line like torch's repr: "BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True,
  /// track_running_stats=True)".
  std::string describe() const override;
  /// Registers new parameters and buffers (used by reset()).
  void reset_all();
  /// Registers these tensors as weight, bias, running_mean, running_var, num_batches_tracked
  /// (undefined ones are skipped).
  void register_all(Tensor w, Tensor b, Tensor mean, Tensor var, Tensor count);
  /// running_mean = 0, running_var = 1, num_batches_tracked = 0.
  void reset_running_stats();
  /// reset_running_stats(), weight = 1, bias = 0.
  void reset_parameters();

  BatchNormOptions options;
  Tensor weight, bias;                                    // undefined unless affine
  Tensor running_mean, running_var, num_batches_tracked;  // undefined unless tracking

 protected:
  virtual const char* name() const = 0;
  virtual void check_input(const Tensor& input) const = 0;
  /// The normalisation itself (SyncBatchNorm reduces its statistics over the ranks).
  virtual Tensor normalize(const Tensor& input, bool use_batch_stats, double factor);
};

/// Batch normalisation over [N, C] or [N, C, L] (torch.nn.BatchNorm1d).
class BatchNorm1d : public Cloneable<BatchNorm1d, BatchNormBase> {
 public:
  explicit BatchNorm1d(BatchNormOptions options) : Cloneable(options) { reset(); }
  void reset() override { reset_all(); }

 protected:
  const char* name() const override { return "BatchNorm1d"; }
  void check_input(const Tensor& input) const override;
};

/// Batch normalisation over [N, C, H, W] (torch.nn.BatchNorm2d).
class BatchNorm2d : public Cloneable<BatchNorm2d, BatchNormBase> {
 public:
  explicit BatchNorm2d(BatchNormOptions options) : Cloneable(options) { reset(); }
  void reset() override { reset_all(); }

 protected:
  const char* name() const override { return "BatchNorm2d"; }
  void check_input(const Tensor& input) const override;
};

/// Batch normalisation whose training statistics are reduced over every MPI rank
/// (torch.nn.SyncBatchNorm): forward allreduces per-channel count, sum and sum of squares,
/// backward allreduces sum(dy) and sum(dy * xhat), so N ranks with batch B each give what one
/// process gives with batch N B. One process: the same as BatchNorm. Input [N, C, *].
class SyncBatchNorm : public Cloneable<SyncBatchNorm, BatchNormBase> {
 public:
  explicit SyncBatchNorm(BatchNormOptions options) : Cloneable(options) { reset(); }
  /// A SyncBatchNorm holding `other`'s options and its very tensors (parameters and buffers),
  /// in `other`'s training mode.
  explicit SyncBatchNorm(const BatchNormBase& other);
  void reset() override { reset_all(); }
  /// Returns `module` with every BatchNorm1d / BatchNorm2d in its tree replaced by a
  /// SyncBatchNorm sharing its options, parameters, buffers and training flag (torch's
  /// classmethod). `module` itself is returned converted when it is a BatchNorm; containers are
  /// changed in place (members of user modules that point at the old BatchNorm keep calling it:
  /// hold layers in Sequential / ModuleList, or convert before taking pointers).
  static std::shared_ptr<Module> convert_sync_batchnorm(std::shared_ptr<Module> module);

 protected:
  const char* name() const override { return "SyncBatchNorm"; }
  void check_input(const Tensor& input) const override;
  Tensor normalize(const Tensor& input, bool use_batch_stats, double factor) override;
};

struct LayerNormOptions {
  LayerNormOptions(std::vector<int64_t> normalized_shape)  // NOLINT: implicit
      : normalized_shape_(std::move(normalized_shape)) {}
  LayerNormOptions& normalized_shape(std::vector<int64_t> v) {
    normalized_shape_ = std::move(v);
    return *this;
  }
  LayerNormOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  LayerNormOptions& elementwise_affine(bool v) {
    elementwise_affine_ = v;
    return *this;
  }
  const std::vector<int64_t>& normalized_shape() const { return normalized_shape_; }
  double eps() const { return eps_; }
  bool elementwise_affine() const { return elementwise_affine_; }

 private:
  std::vector<int64_t> normalized_shape_;
  double eps_ = 1e-5;
  bool elementwise_affine_ = true;
};

/// Layer normalisation over the trailing dims normalized_shape (torch.nn.LayerNorm); weight
/// (ones) and bias (zeros) of shape normalized_shape when elementwise_affine.
class LayerNorm : public Cloneable<LayerNorm> {
 public:
  explicit LayerNorm(LayerNormOptions options);
  LayerNorm(std::vector<int64_t> normalized_shape, double eps = 1e-5,
            bool elementwise_affine = true)
      : LayerNorm(LayerNormOptions(std::move(normalized_shape))
                      .eps(eps)
                      .elementwise_affine(elementwise_affine)) {}
  void reset() override;
  void reset_parameters();
  Tensor forward(const Tensor& input) override;
  /// "LayerNorm((4, 5), eps=1e-05, elementwise_affine=True)"
  std::string describe() const override;

  LayerNormOptions options;
  Tensor weight, bias;
};

struct GroupNormOptions {
  GroupNormOptions(int64_t num_groups, int64_t num_channels)
      : num_groups_(num_groups), num_channels_(num_channels) {}
  GroupNormOptions& num_groups(int64_t v) {
    num_groups_ = v;
    return *this;
  }
  GroupNormOptions& num_channels(int64_t v) {
    num_channels_ = v;
    return *this;
  }
  GroupNormOptions& eps(double v) {
    eps_ = v;
    return *this;
  }
  GroupNormOptions& affine(bool v) {
    affine_ = v;
    return *this;
  }
  int64_t num_groups() const { return num_groups_; }
  int64_t num_channels() const { return num_channels_; }
  double eps() const { return eps_; }
  bool affine() const { return affine_; }

 private:
  int64_t num_groups_, num_channels_;
  double eps_ = 1e-5;
  bool affine_ = true;
};

/// Group normalisation (torch.nn.GroupNorm): input [N, C, *]; weight (ones), bias (zeros) [C].
class GroupNorm : public Cloneable<GroupNorm> {
 public:
  explicit GroupNorm(GroupNormOptions options);
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true)
      : GroupNorm(GroupNormOptions(num_groups, num_channels).eps(eps).affine(affine)) {}
  void reset() override;
  void reset_parameters();
  Tensor forward(const Tensor& input) override;
  /// "GroupNorm(2, 4, eps=1e-05, affine=True)"
  std::string describe() const override;

  GroupNormOptions options;
  Tensor weight, bias;
};

}  // namespace soma::nn
