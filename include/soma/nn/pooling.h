// Pooling and resampling: max / average / adaptive pooling, interpolate (nearest, bilinear),
// dropout2d, and their modules (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d,
// MaxPool1d, AvgPool1d, Unflatten, Dropout2d, Upsample). PyTorch semantics: input [N, C, H, W]
// or unbatched [C, H, W] ([N, C, L] or [C, L] for the 1-D forms), float32 or float64; sizes
// are {k} (both dims) or {kh, kw}. Every op is differentiable twice.
//   namespace F = soma::nn::functional;
//   Tensor y = F::max_pool2d(x, {2});                       // 2x2, stride 2
//   auto [y, idx] = F::max_pool2d_with_indices(x, {3}, {2}, {1});
//   Tensor z = F::interpolate(x, F::InterpolateOptions().scale_factor({2.0}).mode("bilinear"));
//   nn::Sequential m(nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)),
//                    nn::AdaptiveAvgPool2d({1, 1}), nn::Flatten());
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "soma/nn/module.h"

namespace soma::nn {

namespace functional {

/// Max pooling over [N, C, H, W] or [C, H, W]; stride {} means kernel_size. padding must be at
/// most half the kernel; with ceil_mode the last window must start inside the input or the left
/// padding (torch's rule).
Tensor max_pool2d(const Tensor& input, const std::vector<int64_t>& kernel_size,
                  const std::vector<int64_t>& stride = {},
                  const std::vector<int64_t>& padding = {0},
                  const std::vector<int64_t>& dilation = {1}, bool ceil_mode = false);
/// max_pool2d and the int64 flat positions (iy * W + ix in each plane) of the maxima.
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input,
                                                   const std::vector<int64_t>& kernel_size,
                                                   const std::vector<int64_t>& stride = {},
                                                   const std::vector<int64_t>& padding = {0},
                                                   const std::vector<int64_t>& dilation = {1},
                                                   bool ceil_mode = false);
/// Over [N, C, L] or [C, L]; stride 0 means kernel_size.
Tensor max_pool1d(const Tensor& input, int64_t kernel_size, int64_t stride = 0, int64_t padding = 0,
                  int64_t dilation = 1, bool ceil_mode = false);
std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, int64_t kernel_size,
                                                   int64_t stride = 0, int64_t padding = 0,
                                                   int64_t dilation = 1, bool ceil_mode = false);

/// Average pooling: window sum / divisor_override, else the window's size (padding included
/// when count_include_pad).
Tensor avg_pool2d(const Tensor& input, const std::vector<int64_t>& kernel_size,
                  const std::vector<int64_t>& stride = {},
                  const std::vector<int64_t>& padding = {0}, bool ceil_mode = false,
                  bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);
Tensor avg_pool1d(const Tensor& input, int64_t kernel_size, int64_t stride = 0, int64_t padding = 0,
                  bool ceil_mode = false, bool count_include_pad = true);

/// Output cell i covers [floor(i in / out), ceil((i + 1) in / out)) along each spatial dim;
/// output_size {s} or {oh, ow}.
Tensor adaptive_avg_pool2d(const Tensor& input, const std::vector<int64_t>& output_size);
Tensor adaptive_avg_pool1d(const Tensor& input, int64_t output_size);
Tensor adaptive_max_pool2d(const Tensor& input, const std::vector<int64_t>& output_size);
std::tuple<Tensor, Tensor> adaptive_max_pool2d_with_indices(
    const Tensor& input, const std::vector<int64_t>& output_size);
Tensor adaptive_max_pool1d(const Tensor& input, int64_t output_size);

/// F::interpolate's options (torch's argument names): exactly one of size and scale_factor;
/// mode "nearest" or "bilinear"; align_corners only with bilinear (default false).
struct InterpolateOptions {
  InterpolateOptions& size(std::vector<int64_t> v) {
    size_ = std::move(v);
    return *this;
  }
  InterpolateOptions& scale_factor(std::vector<double> v) {
    scale_factor_ = std::move(v);
    return *this;
  }
  InterpolateOptions& mode(std::string v) {
    mode_ = std::move(v);
    return *this;
  }
  InterpolateOptions& align_corners(bool v) {
    align_corners_ = v;
    return *this;
  }
  std::vector<int64_t> size_;         // {s} or {oh, ow}; empty: use scale_factor
  std::vector<double> scale_factor_;  // {f} or {fh, fw}; output = floor(in * f)
  std::string mode_ = "nearest";
  std::optional<bool> align_corners_;
};
/// Resizes [N, C, H, W] (or [C, H, W]) images: "nearest" (torch's legacy nearest: source
/// floor(dst * in / out)) or "bilinear" (half-pixel centres, or corners aligned).
Tensor interpolate(const Tensor& input, const InterpolateOptions& options);

/// Channel dropout: in training, zeroes whole channels (input[n, c, ...]) with probability p and
/// scales the rest by 1/(1-p); identity when !training or p == 0. A 3-D input is read as
/// [N, C, L] like torch 1.13 (channel-wise 1-D dropout). Draws from soma's generator.
Tensor dropout2d(const Tensor& input, double p = 0.5, bool training = true);

}  // namespace functional

// ---- modules -------------------------------------------------------------------------------
// Options structs: libtorch style, chainable setters and getters of the same name.
// clang-format off
#define SOMA_POOL_ARG(T, name)                \
    auto& name(const T& v) {                  \
      name##_ = v;                            \
      return *this;                           \
    }                                         \
    const T& name() const { return name##_; } \
    T name##_
// clang-format on

struct MaxPool2dOptions {
  MaxPool2dOptions(int64_t kernel_size) : kernel_size_({kernel_size}) {}  // NOLINT
  MaxPool2dOptions(std::vector<int64_t> kernel_size)
      : kernel_size_(std::move(kernel_size)) {}  // NOLINT
  SOMA_POOL_ARG(std::vector<int64_t>, kernel_size);
  SOMA_POOL_ARG(std::vector<int64_t>, stride){};  // empty: kernel_size
  SOMA_POOL_ARG(std::vector<int64_t>, padding){0};
  SOMA_POOL_ARG(std::vector<int64_t>, dilation){1};
  SOMA_POOL_ARG(bool, ceil_mode){false};
};

struct AvgPool2dOptions {
  AvgPool2dOptions(int64_t kernel_size) : kernel_size_({kernel_size}) {}  // NOLINT
  AvgPool2dOptions(std::vector<int64_t> kernel_size)
      : kernel_size_(std::move(kernel_size)) {}  // NOLINT
  SOMA_POOL_ARG(std::vector<int64_t>, kernel_size);
  SOMA_POOL_ARG(std::vector<int64_t>, stride){};  // empty: kernel_size
  SOMA_POOL_ARG(std::vector<int64_t>, padding){0};
  SOMA_POOL_ARG(bool, ceil_mode){false};
  SOMA_POOL_ARG(bool, count_include_pad){true};
  SOMA_POOL_ARG(std::optional<int64_t>, divisor_override){};
};

struct MaxPool1dOptions {
  MaxPool1dOptions(int64_t kernel_size) : kernel_size_(kernel_size) {}  // NOLINT
  SOMA_POOL_ARG(int64_t, kernel_size);
  SOMA_POOL_ARG(int64_t, stride){0};  // 0: kernel_size
  SOMA_POOL_ARG(int64_t, padding){0};
  SOMA_POOL_ARG(int64_t, dilation){1};
  SOMA_POOL_ARG(bool, ceil_mode){false};
};

struct AvgPool1dOptions {
  AvgPool1dOptions(int64_t kernel_size) : kernel_size_(kernel_size) {}  // NOLINT
  SOMA_POOL_ARG(int64_t, kernel_size);
  SOMA_POOL_ARG(int64_t, stride){0};  // 0: kernel_size
  SOMA_POOL_ARG(int64_t, padding){0};
  SOMA_POOL_ARG(bool, ceil_mode){false};
  SOMA_POOL_ARG(bool, count_include_pad){true};
};

struct UpsampleOptions {
  SOMA_POOL_ARG(std::vector<int64_t>, size){};
  SOMA_POOL_ARG(std::vector<double>, scale_factor){};
  SOMA_POOL_ARG(std::string, mode){"nearest"};
  SOMA_POOL_ARG(std::optional<bool>, align_corners){};
};

#undef SOMA_POOL_ARG

/// MaxPool2d(2) or MaxPool2d(MaxPool2dOptions({2, 3}).stride(1).padding(1).ceil_mode(true)).
class MaxPool2d : public Cloneable<MaxPool2d> {
 public:
  explicit MaxPool2d(MaxPool2dOptions options);
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  /// The output and the flat indices of the maxima.
  std::tuple<Tensor, Tensor> forward_with_indices(const Tensor& input);
  std::string describe() const override;
  MaxPool2dOptions options;
};

class AvgPool2d : public Cloneable<AvgPool2d> {
 public:
  explicit AvgPool2d(AvgPool2dOptions options);
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  AvgPool2dOptions options;
};

class MaxPool1d : public Cloneable<MaxPool1d> {
 public:
  explicit MaxPool1d(MaxPool1dOptions options);
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  MaxPool1dOptions options;
};

class AvgPool1d : public Cloneable<AvgPool1d> {
 public:
  explicit AvgPool1d(AvgPool1dOptions options);
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  AvgPool1dOptions options;
};

/// AdaptiveAvgPool2d(1), AdaptiveAvgPool2d({7, 7}).
class AdaptiveAvgPool2d : public Cloneable<AdaptiveAvgPool2d> {
 public:
  AdaptiveAvgPool2d(int64_t output_size);               // NOLINT
  AdaptiveAvgPool2d(std::vector<int64_t> output_size);  // NOLINT
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  std::vector<int64_t> output_size;
};

class AdaptiveMaxPool2d : public Cloneable<AdaptiveMaxPool2d> {
 public:
  AdaptiveMaxPool2d(int64_t output_size);               // NOLINT
  AdaptiveMaxPool2d(std::vector<int64_t> output_size);  // NOLINT
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::tuple<Tensor, Tensor> forward_with_indices(const Tensor& input);
  std::string describe() const override;
  std::vector<int64_t> output_size;
};

/// Splits dim into sizes (one of them may be -1): Unflatten(1, {2, 3}) maps [N, 6] to [N, 2, 3].
class Unflatten : public Cloneable<Unflatten> {
 public:
  Unflatten(int64_t dim, std::vector<int64_t> sizes);
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  int64_t dim;
  std::vector<int64_t> sizes;
};

/// Channel dropout (F::dropout2d) in training mode, identity in eval mode.
class Dropout2d : public Cloneable<Dropout2d> {
 public:
  explicit Dropout2d(double p = 0.5);
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  double p;
};

/// F::interpolate as a module: Upsample(UpsampleOptions().scale_factor({2.0}).mode("bilinear")).
class Upsample : public Cloneable<Upsample> {
 public:
  explicit Upsample(UpsampleOptions options);
  void reset() override {}
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  UpsampleOptions options;
};

}  // namespace soma::nn
