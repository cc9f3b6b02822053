// Convolutions, PyTorch's semantics: nn::functional::conv1d / conv2d / conv_transpose1d /
// conv_transpose2d and the modules nn::Conv1d, nn::Conv2d, nn::ConvTranspose1d,
// nn::ConvTranspose2d with libtorch-style options:
//
//   nn::Conv2d conv(nn::Conv2dOptions(1, 32, 3).stride(1).padding(1));
//   nn::Conv2d same(nn::Conv2dOptions(32, 64, {3, 5}).padding("same").padding_mode("reflect"));
//   Tensor y = F::conv2d(x, w, b, /*stride=*/{2}, /*padding=*/{1});
//
// Layout NCHW (NCL for 1-d), contiguous or not; a 3-d input to conv2d (2-d to conv1d) is one
// unbatched sample [C, H, W], as torch reads it. Weights [out, in / groups, kh, kw]
// (transposed: [in, out / groups, kh, kw]). Every op is differentiable any number of times.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "soma/core/error.h"
#include "soma/core/tensor.h"
#include "soma/nn/module.h"

namespace soma::detail {
// the string-padding convolutions behind the conv1d/conv2d templates
Tensor conv2d_str(const Tensor& input, const Tensor& weight, const Tensor& bias,
                  const std::vector<int64_t>& stride, std::string_view padding,
                  const std::vector<int64_t>& dilation, int64_t groups);
Tensor conv1d_str(const Tensor& input, const Tensor& weight, const Tensor& bias,
                  const std::vector<int64_t>& stride, std::string_view padding,
                  const std::vector<int64_t>& dilation, int64_t groups);
}  // namespace soma::detail

namespace soma::nn::functional {

/// torch.nn.functional.conv2d: input [N, C_in, H, W] or [C_in, H, W], weight
/// [C_out, C_in / groups, kh, kw], bias [C_out] or undefined. stride, padding, dilation hold
/// 1 value (both dims) or 2 (height, width); zero padding.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
              const std::vector<int64_t>& stride = {1}, const std::vector<int64_t>& padding = {0},
              const std::vector<int64_t>& dilation = {1}, int64_t groups = 1);
/// padding "valid" (none) or "same" (output size = input size; stride 1 only; an odd total
/// padding puts the extra row/column at the bottom/right, as torch). (A template so that a
/// braced {0} padding always means numbers.)
template <typename S>
requires std::convertible_to<const S&, std::string_view> Tensor
conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
       const std::vector<int64_t>& stride, const S& padding,
       const std::vector<int64_t>& dilation = {1}, int64_t groups = 1) {
  return ::soma::detail::conv2d_str(input, weight, bias, stride, padding, dilation, groups);
}
/// torch.nn.functional.conv1d: input [N, C_in, L] or [C_in, L], weight [C_out, C_in / groups, k].
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
              const std::vector<int64_t>& stride = {1}, const std::vector<int64_t>& padding = {0},
              const std::vector<int64_t>& dilation = {1}, int64_t groups = 1);
template <typename S>
requires std::convertible_to<const S&, std::string_view> Tensor
conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias,
       const std::vector<int64_t>& stride, const S& padding,
       const std::vector<int64_t>& dilation = {1}, int64_t groups = 1) {
  return ::soma::detail::conv1d_str(input, weight, bias, stride, padding, dilation, groups);
}
/// torch.nn.functional.conv_transpose2d (conv2d's adjoint in its input; torch's argument
/// order): input [N, C_in, H, W] or [C_in, H, W], weight [C_in, C_out / groups, kh, kw];
/// output size (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1.
Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                        const std::vector<int64_t>& stride = {1},
                        const std::vector<int64_t>& padding = {0},
                        const std::vector<int64_t>& output_padding = {0}, int64_t groups = 1,
                        const std::vector<int64_t>& dilation = {1});
/// torch.nn.functional.conv_transpose1d: input [N, C_in, L] or [C_in, L].
Tensor conv_transpose1d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                        const std::vector<int64_t>& stride = {1},
                        const std::vector<int64_t>& padding = {0},
                        const std::vector<int64_t>& output_padding = {0}, int64_t groups = 1,
                        const std::vector<int64_t>& dilation = {1});

}  // namespace soma::nn::functional

namespace soma::nn {

/// D integers given as one (repeated) or D values: kernel_size 3 or {3, 5} (torch's
/// ExpandingArray).
template <size_t D>
struct ExpandingArray {
  ExpandingArray(int64_t v) { values.fill(v); }  // NOLINT: implicit, as libtorch
  ExpandingArray(std::initializer_list<int64_t> list)
      : ExpandingArray(std::vector<int64_t>(list)) {}
  ExpandingArray(const std::vector<int64_t>& list) {  // NOLINT
    SOMA_CHECK(list.size() == 1 || list.size() == D, "expected 1 or ", D,
               " values (one per spatial dim), got ", list);
    for (size_t i = 0; i < D; ++i) values[i] = list[list.size() == 1 ? 0 : i];
  }
  int64_t operator[](size_t i) const { return values[i]; }
  std::vector<int64_t> vec() const { return {values.begin(), values.end()}; }
  bool operator==(const ExpandingArray&) const = default;
  std::array<int64_t, D> values{};
};

/// Conv1dOptions / Conv2dOptions: nn::Conv2dOptions(in, out, 3).stride(2).padding(1).
/// padding is D integers or "same" / "valid"; padding_mode "zeros", "reflect", "replicate" or
/// "circular"; dtype float32 or float64.
template <size_t D>
class ConvOptions {
 public:
  using Padding = std::variant<ExpandingArray<D>, std::string>;  // numbers, or "same"/"valid"
  ConvOptions(int64_t in_channels, int64_t out_channels, ExpandingArray<D> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  const ExpandingArray<D>& kernel_size() const { return kernel_size_; }
  ConvOptions& stride(ExpandingArray<D> v) { return stride_ = v, *this; }
  const ExpandingArray<D>& stride() const { return stride_; }
  ConvOptions& padding(ExpandingArray<D> v) { return padding_ = v, *this; }
  ConvOptions& padding(int64_t v) { return padding_ = ExpandingArray<D>(v), *this; }
  ConvOptions& padding(const char* same_or_valid) {
    return padding(std::string_view(same_or_valid));
  }
  ConvOptions& padding(std::string_view same_or_valid) {
    return padding_ = std::string(same_or_valid), *this;
  }
  const Padding& padding() const { return padding_; }
  ConvOptions& dilation(ExpandingArray<D> v) { return dilation_ = v, *this; }
  const ExpandingArray<D>& dilation() const { return dilation_; }
  ConvOptions& groups(int64_t v) { return groups_ = v, *this; }
  int64_t groups() const { return groups_; }
  ConvOptions& bias(bool v) { return bias_ = v, *this; }
  bool bias() const { return bias_; }
  ConvOptions& padding_mode(std::string_view v) { return padding_mode_ = std::string(v), *this; }
  const std::string& padding_mode() const { return padding_mode_; }
  ConvOptions& dtype(DType v) { return dtype_ = v, *this; }
  DType dtype() const { return dtype_; }

 private:
  int64_t in_channels_, out_channels_;
  ExpandingArray<D> kernel_size_;
  ExpandingArray<D> stride_ = 1;
  Padding padding_ = ExpandingArray<D>(0);
  ExpandingArray<D> dilation_ = 1;
  int64_t groups_ = 1;
  bool bias_ = true;
  std::string padding_mode_ = "zeros";
  DType dtype_ = kFloat32;
};

/// ConvTranspose1dOptions / ConvTranspose2dOptions: as ConvOptions plus output_padding;
/// padding is numbers only and padding_mode "zeros" only (torch's rules).
template <size_t D>
class ConvTransposeOptions {
 public:
  ConvTransposeOptions(int64_t in_channels, int64_t out_channels, ExpandingArray<D> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}

  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }
  const ExpandingArray<D>& kernel_size() const { return kernel_size_; }
  ConvTransposeOptions& stride(ExpandingArray<D> v) { return stride_ = v, *this; }
  const ExpandingArray<D>& stride() const { return stride_; }
  ConvTransposeOptions& padding(ExpandingArray<D> v) { return padding_ = v, *this; }
  const ExpandingArray<D>& padding() const { return padding_; }
  ConvTransposeOptions& output_padding(ExpandingArray<D> v) { return output_padding_ = v, *this; }
  const ExpandingArray<D>& output_padding() const { return output_padding_; }
  ConvTransposeOptions& dilation(ExpandingArray<D> v) { return dilation_ = v, *this; }
  const ExpandingArray<D>& dilation() const { return dilation_; }
  ConvTransposeOptions& groups(int64_t v) { return groups_ = v, *this; }
  int64_t groups() const { return groups_; }
  ConvTransposeOptions& bias(bool v) { return bias_ = v, *this; }
  bool bias() const { return bias_; }
  ConvTransposeOptions& padding_mode(std::string_view v) {
    return padding_mode_ = std::string(v), *this;
  }
  const std::string& padding_mode() const { return padding_mode_; }
  ConvTransposeOptions& dtype(DType v) { return dtype_ = v, *this; }
  DType dtype() const { return dtype_; }

 private:
  int64_t in_channels_, out_channels_;
  ExpandingArray<D> kernel_size_;
  ExpandingArray<D> stride_ = 1;
  ExpandingArray<D> padding_ = 0;
  ExpandingArray<D> output_padding_ = 0;
  ExpandingArray<D> dilation_ = 1;
  int64_t groups_ = 1;
  bool bias_ = true;
  std::string padding_mode_ = "zeros";
  DType dtype_ = kFloat32;
};

using Conv1dOptions = ConvOptions<1>;
using Conv2dOptions = ConvOptions<2>;
using ConvTranspose1dOptions = ConvTransposeOptions<1>;
using ConvTranspose2dOptions = ConvTransposeOptions<2>;

/// torch.nn.Conv1d: weight [out, in / groups, k], bias [out]; torch's initialisation
/// (kaiming_uniform_ a = sqrt(5) on weight, bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
/// fan_in = in / groups * k). Input [N, in, L] or [in, L].
class Conv1d : public Cloneable<Conv1d> {
 public:
  explicit Conv1d(Conv1dOptions options);
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  void reset() override;
  void reset_parameters();

  Conv1dOptions options;
  Tensor weight, bias;  // bias undefined when options.bias() is false
};

/// torch.nn.Conv2d: weight [out, in / groups, kh, kw], bias [out]; torch's initialisation.
/// Input [N, in, H, W] or [in, H, W]:
///   nn::Conv2d conv(nn::Conv2dOptions(1, 32, 3).padding(1));
class Conv2d : public Cloneable<Conv2d> {
 public:
  explicit Conv2d(Conv2dOptions options);
  Conv2d(int64_t in_channels, int64_t out_channels, ExpandingArray<2> kernel_size);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  void reset() override;
  void reset_parameters();

  Conv2dOptions options;
  Tensor weight, bias;
};

/// torch.nn.ConvTranspose1d: weight [in, out / groups, k], bias [out].
class ConvTranspose1d : public Cloneable<ConvTranspose1d> {
 public:
  explicit ConvTranspose1d(ConvTranspose1dOptions options);
  ConvTranspose1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  void reset() override;
  void reset_parameters();

  ConvTranspose1dOptions options;
  Tensor weight, bias;
};

/// torch.nn.ConvTranspose2d: weight [in, out / groups, kh, kw], bias [out]; torch's
/// initialisation (its fan_in is weight.size(1) kh kw = out / groups kh kw, as torch computes it).
class ConvTranspose2d : public Cloneable<ConvTranspose2d> {
 public:
  explicit ConvTranspose2d(ConvTranspose2dOptions options);
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, ExpandingArray<2> kernel_size);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  void reset() override;
  void reset_parameters();

  ConvTranspose2dOptions options;
  Tensor weight, bias;
};

}  // namespace soma::nn
