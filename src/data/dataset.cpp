// Dataset, TensorDataset, Subset, the splits, and Normalization.
#include "soma/data/dataset.h"

#include <algorithm>
#include <cmath>

#include "core/dispatch.h"
#include "data/shuffle.h"
#include "soma/core/error.h"
#include "soma/ops/shape.h"

namespace soma::data {

namespace {

Tensor index_tensor(const std::vector<int64_t>& indices) {
  return tensor(indices, {static_cast<int64_t>(indices.size())});
}

}  // namespace

// ---- Dataset -------------------------------------------------------------------------------
Batch Dataset::get_batch(const std::vector<int64_t>& indices) const {
  SOMA_CHECK(!indices.empty(), "Dataset::get_batch: empty list of indices");
  std::vector<Tensor> xs, ys;
  xs.reserve(indices.size());
  ys.reserve(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) {
    Example e = get(indices[k]);
    SOMA_CHECK(e.x.defined(), "Dataset::get_batch: get(", indices[k], ") returned an undefined x");
    SOMA_CHECK(k == 0 || e.y.defined() == !ys.empty(), "Dataset::get_batch: get(", indices[k],
               ") returned ", e.y.defined() ? "a defined" : "an undefined", " y but get(",
               indices[0], ") did not");
    xs.push_back(e.x.unsqueeze(0));
    if (e.y.defined()) ys.push_back(e.y.unsqueeze(0));
  }
  Batch b;
  b.x = cat(xs, 0);
  if (!ys.empty()) b.y = cat(ys, 0);
  return b;
}

// ---- TensorDataset -------------------------------------------------------------------------
TensorDataset::TensorDataset(Tensor x, Tensor y) : x_(std::move(x)), y_(std::move(y)) {
  SOMA_CHECK(x_.defined() && y_.defined(), "TensorDataset: x and y must be defined tensors, got ",
             x_.defined() ? "a defined" : "an undefined", " x and ",
             y_.defined() ? "a defined" : "an undefined", " y");
  SOMA_CHECK(x_.dim() >= 1 && y_.dim() >= 1,
             "TensorDataset: x and y need a sample dimension, got shapes ", x_.shape(), " and ",
             y_.shape());
  SOMA_CHECK(x_.size(0) == y_.size(0), "TensorDataset: x has ", x_.size(0), " samples (shape ",
             x_.shape(), ") but y has ", y_.size(0), " (shape ", y_.shape(), ")");
}

int64_t TensorDataset::size() const {
  return x_.size(0);
}

Example TensorDataset::get(int64_t index) const {
  SOMA_CHECK(index >= 0 && index < size(), "TensorDataset::get: index ", index,
             " is out of range for a dataset of size ", size());
  return {x_.narrow(0, index, 1).squeeze(0), y_.narrow(0, index, 1).squeeze(0)};
}

Batch TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
  const int64_t n = size();
  for (int64_t i : indices)
    SOMA_CHECK(i >= 0 && i < n, "TensorDataset::get_batch: index ", i,
               " is out of range for a dataset of size ", n);
  const Tensor idx = index_tensor(indices);
  return {index_select(x_, 0, idx), index_select(y_, 0, idx)};
}

std::pair<TensorDataset, TensorDataset> train_val_split(const TensorDataset& ds,
                                                        double val_fraction, uint64_t seed) {
  SOMA_CHECK(val_fraction >= 0.0 && val_fraction <= 1.0,
             "train_val_split: val_fraction must be in [0, 1], got ", val_fraction);
  const int64_t n = ds.size();
  const auto n_val = static_cast<int64_t>(std::llround(static_cast<double>(n) * val_fraction));
  std::vector<int64_t> perm = detail::random_permutation(n, seed);
  std::vector<int64_t> val(perm.begin(), perm.begin() + n_val);
  std::vector<int64_t> train(perm.begin() + n_val, perm.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  auto gather = [&](const std::vector<int64_t>& idx) {
    const Tensor t = index_tensor(idx);
    return TensorDataset(index_select(ds.x(), 0, t), index_select(ds.y(), 0, t));
  };
  return {gather(train), gather(val)};
}

// ---- Subset --------------------------------------------------------------------------------
Subset::Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  SOMA_CHECK(base_ != nullptr, "Subset: base dataset is null");
  const int64_t n = base_->size();
  for (size_t k = 0; k < indices_.size(); ++k)
    SOMA_CHECK(indices_[k] >= 0 && indices_[k] < n, "Subset: index ", indices_[k], " (at position ",
               k, ") is out of range for a dataset of size ", n);
}

int64_t Subset::size() const {
  return static_cast<int64_t>(indices_.size());
}

Example Subset::get(int64_t index) const {
  SOMA_CHECK(index >= 0 && index < size(), "Subset::get: index ", index,
             " is out of range for a subset of size ", size());
  return base_->get(indices_[static_cast<size_t>(index)]);
}

Batch Subset::get_batch(const std::vector<int64_t>& indices) const {
  std::vector<int64_t> mapped(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) {
    SOMA_CHECK(indices[k] >= 0 && indices[k] < size(), "Subset::get_batch: index ", indices[k],
               " is out of range for a subset of size ", size());
    mapped[k] = indices_[static_cast<size_t>(indices[k])];
  }
  return base_->get_batch(mapped);
}

std::vector<Subset> random_split(std::shared_ptr<const Dataset> ds,
                                 const std::vector<int64_t>& lengths, uint64_t seed) {
  SOMA_CHECK(ds != nullptr, "random_split: dataset is null");
  int64_t total = 0;
  for (int64_t len : lengths) {
    SOMA_CHECK(len >= 0, "random_split: lengths must be non-negative, got ", lengths);
    total += len;
  }
  SOMA_CHECK(total == ds->size(), "random_split: lengths ", lengths, " sum to ", total,
             " but the dataset has ", ds->size(), " samples");
  const std::vector<int64_t> perm = detail::random_permutation(total, seed);
  std::vector<Subset> parts;
  parts.reserve(lengths.size());
  auto it = perm.begin();
  for (int64_t len : lengths) {
    parts.emplace_back(ds, std::vector<int64_t>(it, it + len));
    it += len;
  }
  return parts;
}

// ---- Normalization -------------------------------------------------------------------------
Normalization Normalization::fit(const Tensor& x) {
  SOMA_CHECK(x.defined(), "Normalization::fit: x is undefined");
  const int64_t n = x.numel();
  SOMA_CHECK(n > 0, "Normalization::fit: x is empty (shape ", x.shape(), ")");
  const Tensor xc = x.contiguous();
  Normalization norm;
  double mean = 0.0, var = 0.0;
  if (x.dtype() == kUInt8) {
    // Exact integer sums: var = (n * sum(x^2) - sum(x)^2) / n^2.
    norm.scale = 1.0 / 255.0;
    const uint8_t* p = xc.data<uint8_t>();
    uint64_t s = 0, ss = 0;
    for (int64_t i = 0; i < n; ++i) {
      s += p[i];
      ss += static_cast<uint64_t>(p[i]) * p[i];
    }
    const unsigned __int128 num =
        static_cast<unsigned __int128>(n) * ss - static_cast<unsigned __int128>(s) * s;
    mean = static_cast<double>(s) / static_cast<double>(n);
    var = static_cast<double>(num) / static_cast<double>(n) / static_cast<double>(n);
  } else {
    // Two passes in double: the mean, then the mean squared deviation.
    soma::detail::dispatch_all(x.dtype(), [&]<typename T>() {
      const T* p = xc.data<T>();
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]);
      mean = s / static_cast<double>(n);
      double ss = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(p[i]) - mean;
        ss += d * d;
      }
      var = ss / static_cast<double>(n);
    });
  }
  SOMA_CHECK(std::isfinite(mean) && std::isfinite(var), "Normalization::fit: x (shape ", x.shape(),
             ", ", x.dtype(), ") contains NaN or infinite values");
  norm.mean = mean * norm.scale;
  norm.std = std::sqrt(var) * norm.scale;
  if (norm.std == 0.0) norm.std = 1.0;
  return norm;
}

Normalization Normalization::fit_per_feature(const Tensor& x) {
  SOMA_CHECK(x.defined(), "Normalization::fit_per_feature: x is undefined");
  SOMA_CHECK(x.dim() == 2 && x.size(0) > 0 && x.size(1) > 0,
             "Normalization::fit_per_feature: x must be [N, F] with N, F > 0, got shape ",
             x.shape());
  const int64_t n = x.size(0), f = x.size(1);
  const Tensor xc = x.contiguous();
  Normalization norm;
  if (x.dtype() == kUInt8) norm.scale = 1.0 / 255.0;
  std::vector<double> mean(static_cast<size_t>(f), 0.0), ss(static_cast<size_t>(f), 0.0);
  // Two passes in double over the rows (row-major: each pass reads x once, in order).
  soma::detail::dispatch_all(x.dtype(), [&]<typename T>() {
    const T* p = xc.data<T>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < f; ++j) mean[j] += static_cast<double>(p[i * f + j]);
    for (double& m : mean) m /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < f; ++j) {
        const double d = static_cast<double>(p[i * f + j]) - mean[j];
        ss[j] += d * d;
      }
  });
  norm.feature_mean.resize(static_cast<size_t>(f));
  norm.feature_std.resize(static_cast<size_t>(f));
  for (int64_t j = 0; j < f; ++j) {
    const double var = ss[j] / static_cast<double>(n);
    SOMA_CHECK(std::isfinite(mean[j]) && std::isfinite(var),
               "Normalization::fit_per_feature: column ", j, " of x (shape ", x.shape(), ", ",
               x.dtype(), ") contains NaN or infinite values");
    norm.feature_mean[j] = mean[j] * norm.scale;
    const double sd = std::sqrt(var) * norm.scale;
    norm.feature_std[j] = sd == 0.0 ? 1.0 : sd;
  }
  return norm;
}

transforms::Normalize Normalization::transform() const {
  if (per_feature()) return transforms::Normalize(feature_mean, feature_std, scale);
  return transforms::Normalize({mean}, {std}, scale);
}

}  // namespace soma::data
