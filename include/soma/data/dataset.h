// Datasets: indexable collections of (x, y) examples, the splits that make train/validation sets
// from them, and the Normalization statistics that turn raw pixels into standardised float32
// inputs (applied by transforms::Normalize).
//
// A Dataset returns one Example by index and a Batch for a list of indices. TensorDataset holds
// two tensors whose first dimension is the sample index (x [N, ...] in any dtype, so uint8
// images stay uint8 in memory; y [N]) and builds a batch with one gather (index_select).
//   auto train = soma::data::load_mnist("/usr/share/datasets/fashion-mnist", "train");
//   soma::data::TensorDataset ds(train.images, train.labels);        // x uint8 [60000, 28, 28]
//   auto [fit_set, val_set] = soma::data::train_val_split(ds, 0.1, /*seed=*/0);
//   auto norm = soma::data::Normalization::fit(fit_set.x());         // mean/std of x / 255
//   soma::Tensor xb = norm.transform()(fit_set.get_batch({0, 1, 2}).x);  // float32 [3, 28, 28]
// Tabular data (columns on different scales) is standardised per column instead:
//   auto norm = soma::data::Normalization::fit_per_feature(features);  // features [N, F]
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "soma/core/tensor.h"
#include "soma/data/transforms.h"

namespace soma::data {

/// One sample: input x (its shape without the batch dimension) and target y (0-d for class ids).
struct Example {
  Tensor x, y;
};

/// A mini-batch: x [B, ...] and y [B, ...]. An aggregate, so `auto& [xb, yb] = batch` works.
struct Batch {
  Tensor x, y;
};

/// The interface a DataLoader reads from. Implementations must allow concurrent const calls
/// (a DataLoader with num_workers > 0 calls get_batch() on its worker threads).
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of samples.
  virtual int64_t size() const = 0;
  /// Sample `index`, 0 <= index < size().
  virtual Example get(int64_t index) const = 0;
  /// The samples at `indices` stacked along a new dimension 0 (non-empty list). The default
  /// calls get() for each index and concatenates the unsqueezed results; y stays undefined when
  /// every example's y is. TensorDataset overrides it with one gather.
  virtual Batch get_batch(const std::vector<int64_t>& indices) const;
};

/// A dataset of two tensors indexed along dimension 0: x [N, ...] (any dtype) and y [N, ...].
/// get(i) returns views (x[i], y[i]); get_batch() gathers with index_select (copies).
class TensorDataset : public Dataset {
 public:
  /// x and y must have at least one dimension and the same size N along dimension 0.
  TensorDataset(Tensor x, Tensor y);
  int64_t size() const override;
  Example get(int64_t index) const override;
  /// x.index_select(0, indices), y.index_select(0, indices); every index is range-checked.
  Batch get_batch(const std::vector<int64_t>& indices) const override;
  const Tensor& x() const { return x_; }
  const Tensor& y() const { return y_; }

 private:
  Tensor x_, y_;
};

/// Splits `ds` into (train, validation): round(size * val_fraction) samples, chosen by a
/// permutation drawn from std::mt19937_64(seed), go to validation and the rest to train. Both
/// are gathered copies that keep the original sample order. The same seed gives the same split.
/// val_fraction must be in [0, 1].
std::pair<TensorDataset, TensorDataset> train_val_split(const TensorDataset& ds,
                                                        double val_fraction, uint64_t seed);

/// The samples of `base` at `indices` (each in [0, base->size()); repeats allowed), in that
/// order. get_batch() maps the indices and calls base->get_batch(), so a Subset of a
/// TensorDataset still gathers a batch in one call.
class Subset : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices);
  int64_t size() const override;
  Example get(int64_t index) const override;
  Batch get_batch(const std::vector<int64_t>& indices) const override;
  const Dataset& base() const { return *base_; }
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};

/// Like torch.utils.data.random_split: disjoint Subsets of the given lengths (each >= 0, sum
/// equal to ds->size()), consecutive slices of a permutation drawn from std::mt19937_64(seed).
///   auto parts = soma::data::random_split(ds, {50000, 10000}, 42);
std::vector<Subset> random_split(std::shared_ptr<const Dataset> ds,
                                 const std::vector<int64_t>& lengths, uint64_t seed);

/// Standardisation statistics of the inputs, with one mean and std for all elements (images)
/// or one per feature column (tabular data); transform() is the stage that applies them:
///   transform()(x) = ((x * scale) - mean) / std                 one statistic for every element
///   transform()(x)[:, j] = ((x[:, j] * scale) - feature_mean[j]) / feature_std[j]   x [N, F]
/// as float32, computed in double, rounded once (transforms::Normalize). fit() and
/// fit_per_feature() set scale = 1/255 for uint8 data (pixels to [0, 1], like torchvision's
/// ToTensor) and 1 otherwise. Fit it on the training split only and give its transform() to
/// every loader (DataLoaderOptions::transform). The tools' model files store these numbers.
///   auto norm = soma::data::Normalization::fit_per_feature(train_x);   // train_x [N, F]
///   soma::Tensor xb = norm.transform()(batch_x);                         // batch_x [B, F]
struct Normalization {
  double mean = 0.0;  // mean of x * scale (unused when per_feature())
  double std = 1.0;   // population standard deviation of x * scale, > 0 (unused when per_feature())
  double scale = 1.0;  // multiplies x before centring: 1/255 for uint8 data
  /// Per-feature statistics (the last dimension of x), both of size F or both empty. When set,
  /// they replace mean and std.
  std::vector<double> feature_mean;
  std::vector<double> feature_std;  // each > 0

  /// Mean and population std of all elements of x * scale, with scale = 1/255 when x is uint8
  /// and 1 otherwise. A constant x (std 0) gets std = 1. x must be non-empty and finite.
  static Normalization fit(const Tensor& x);
  /// Mean and population std of each column of x * scale for x [N, F] (N, F > 0, finite); a
  /// constant column gets std 1. Scale as in fit().
  static Normalization fit_per_feature(const Tensor& x);
  /// Whether feature_mean / feature_std are used.
  bool per_feature() const { return !feature_mean.empty() || !feature_std.empty(); }
  /// transforms::Normalize({mean}, {std}, scale), or with feature_mean / feature_std per
  /// column of x [N, F]. Throws soma::Error for invalid statistics (std <= 0, non-finite,
  /// feature_mean and feature_std of different sizes).
  transforms::Normalize transform() const;
};

}  // namespace soma::data
