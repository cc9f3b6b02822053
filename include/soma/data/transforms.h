// soma::data::transforms: the DataLoader's one per-batch stage (torchvision's names and
// semantics): Normalize, RandomCrop, RandomHorizontalFlip, Reshape, Lambda and Compose.
//
// A transform acts on a batch's inputs x [N, ...] (one sample per row of dimension 0; targets
// are never touched) and returns the transformed batch. Image transforms read x as
// [N, C, H, W] or [N, H, W] (one channel); flat rows such as Fashion-MNIST's [N, 784] are
// viewed as images with Reshape first, and flattened again after:
//   namespace T = soma::data::transforms;
//   auto norm = soma::data::Normalization::fit(train.x());              // statistics of x / 255
//   T::Transform augment = T::Compose({T::Reshape({1, 28, 28}),         // [N, 784] -> [N, 1, 28,
//   28]
//                                      T::RandomCrop(28, 4),            // zero-pad 4, crop 28x28
//                                      T::RandomHorizontalFlip(),       // p = 0.5
//                                      norm.transform(),                // (x / 255 - mean) / std
//                                      T::Reshape({784})});
//   soma::data::DataLoader loader(train, {.batch_size = 128, .shuffle = true, .seed = 42,
//                                         .transform = augment});
//
// Randomness is counter-based: the draws for sample i (its index in the dataset) in epoch e of
// a loader with seed s are a hash (splitmix64) of (s, e, i, the stage's position in its
// Compose), so a batch's augmentation does not depend on num_workers, on the batch size, on
// which epochs ran before in this process (resume), or on the other samples of the batch. The
// streams are soma's own, not torch's (torch draws from a global generator).
//
// Every transform is immutable and safe to call from several threads (DataLoader workers).
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "soma/core/tensor.h"

namespace soma::data::transforms {

/// Where a batch comes from: what random transforms draw from. Row k of x is sample
/// `indices[k]` of the dataset (k itself when indices is empty).
struct Context {
  uint64_t seed = 0;               // the loader's seed
  int64_t epoch = 0;               // the loader's epoch
  std::vector<int64_t> indices{};  // dataset index of each row of x
  uint64_t stream = 0;             // set by Compose: which stage draws (independent streams)

  /// Sample index of row k.
  int64_t index(int64_t k) const { return indices.empty() ? k : indices[static_cast<size_t>(k)]; }
  /// A 64-bit random word for row k, draw `draw` of the stage `salt`: a pure function of
  /// (seed, epoch, index(k), stream, salt, draw).
  uint64_t random(int64_t k, uint64_t salt, uint64_t draw = 0) const;
};

/// One stage. Subclass it for a custom transform (apply() must be thread-safe and must not
/// change the batch dimension N).
class Stage {
 public:
  virtual ~Stage() = default;
  /// The transformed x. ctx.indices is empty or has x.size(0) entries.
  virtual Tensor apply(const Tensor& x, const Context& ctx) const = 0;
  /// Shorthand for apply(x, ctx).
  Tensor operator()(const Tensor& x, const Context& ctx = {}) const { return apply(x, ctx); }
};

/// A copyable handle to a stage, or to none (the identity): what DataLoaderOptions::transform
/// holds. Any Stage converts to it.
class Transform {
 public:
  Transform() = default;
  template <typename S>
  requires std::derived_from<S, Stage> Transform(S stage)
      : stage_(std::make_shared<const S>(std::move(stage))) {}
  explicit Transform(std::shared_ptr<const Stage> stage) : stage_(std::move(stage)) {}

  /// Whether it holds a stage.
  explicit operator bool() const { return stage_ != nullptr; }
  /// The transformed x (x itself without a stage).
  Tensor operator()(const Tensor& x, const Context& ctx = {}) const {
    return stage_ ? stage_->apply(x, ctx) : x;
  }
  const Stage* stage() const { return stage_.get(); }

 private:
  std::shared_ptr<const Stage> stage_;
};

/// out[n, c, ...] = ((x[n, c, ...] * scale) - mean[c]) / std[c], as float32 (computed in
/// double, rounded once), for x [N, C, ...] of any dtype with C = mean.size(); with one mean
/// and std, every element of x of any shape uses them. torchvision's Normalize(mean, std) on
/// ToTensor's output is scale = 1/255 for uint8 images. Tabular x [N, F] with F statistics is
/// standardised per column. std must be positive and everything finite.
class Normalize : public Stage {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std, double scale = 1.0);
  Tensor apply(const Tensor& x, const Context& ctx) const override;
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& std() const { return std_; }
  double scale() const { return scale_; }

 private:
  std::vector<double> mean_, std_;
  double scale_;
};

/// torchvision's RandomCrop(size, padding) (padding_mode "constant", fill 0): pads the last
/// two dimensions of x [N, C, H, W] or [N, H, W] with `padding` zeros on every side, then cuts
/// a size x size window at a random offset (top, left), each uniform in
/// [0, H + 2 padding - size] and [0, W + 2 padding - size], drawn per sample. Keeps the dtype.
class RandomCrop : public Stage {
 public:
  explicit RandomCrop(int64_t size, int64_t padding = 0);
  Tensor apply(const Tensor& x, const Context& ctx) const override;
  /// The (top, left) offsets, in the padded image, of rows 0..n-1 of a batch of h x w images.
  std::vector<std::pair<int64_t, int64_t>> offsets(const Context& ctx, int64_t n, int64_t h,
                                                   int64_t w) const;
  int64_t size() const { return size_; }
  int64_t padding() const { return padding_; }

 private:
  int64_t size_, padding_;
};

/// torchvision's RandomHorizontalFlip(p): reverses the last dimension of each sample of x
/// [N, C, H, W] or [N, H, W] with probability p (p in [0, 1]), drawn per sample.
class RandomHorizontalFlip : public Stage {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor apply(const Tensor& x, const Context& ctx) const override;
  /// Whether rows 0..n-1 of a batch are flipped.
  std::vector<uint8_t> decisions(const Context& ctx, int64_t n) const;
  double p() const { return p_; }

 private:
  double p_;
};

/// Views each sample with a new shape: x [N, ...] -> [N, sample_shape...] (same number of
/// elements per sample; one entry may be -1). A view when x's strides allow (as reshape).
class Reshape : public Stage {
 public:
  explicit Reshape(std::vector<int64_t> sample_shape);
  Tensor apply(const Tensor& x, const Context& ctx) const override;

 private:
  std::vector<int64_t> shape_;
};

/// A user function of x (deterministic, thread-safe), like torchvision's Lambda.
class Lambda : public Stage {
 public:
  explicit Lambda(std::function<Tensor(const Tensor&)> f);
  Tensor apply(const Tensor& x, const Context& ctx) const override;

 private:
  std::function<Tensor(const Tensor&)> f_;
};

/// The stages in order; stage j draws from its own stream (Context::stream mixed with j).
class Compose : public Stage {
 public:
  Compose(std::vector<Transform> stages);
  Tensor apply(const Tensor& x, const Context& ctx) const override;
  const std::vector<Transform>& stages() const { return stages_; }

 private:
  std::vector<Transform> stages_;
};

/// The deterministic part of RandomCrop (torchvision.transforms.functional.pad + crop): pads
/// the last two dimensions of x [N, ..., H, W] with `padding` zeros and cuts, for row k, the
/// height x width window at (top[k], left[k]) of the padded image.
Tensor pad_crop(const Tensor& x, int64_t height, int64_t width, int64_t padding,
                const std::vector<int64_t>& top, const std::vector<int64_t>& left);
/// The deterministic part of RandomHorizontalFlip: reverses the last dimension of row k of
/// x [N, ..., W] (rank >= 2) when flip[k] is non-zero.
Tensor hflip(const Tensor& x, const std::vector<uint8_t>& flip);

}  // namespace soma::data::transforms
