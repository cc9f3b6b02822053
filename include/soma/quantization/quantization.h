// int8 quantization for inference (torch.ao.quantization's dynamic mode).
//
//   auto qmodel = soma::quantization::quantize_dynamic(model);  // a copy; model is unchanged
//   qmodel->eval();
//   Tensor logits = (*qmodel)(x);                               // float32 in, float32 out
//
// quantize_dynamic replaces every nn::Linear with a DynamicQuantLinear: int8 weights quantized
// once, symmetric per output channel (torch's per_channel_dynamic_qconfig:
// scale = max|w_row| / 127.5, zero point 0, q = clamp(round(w / scale), -128, 127)); at each
// call the input is quantized per tensor to uint8 with the batch's own min and max (torch's
// quint8 dynamic activations, full range 0..255, as torch's onednn engine), the products are
// accumulated exactly in int32 (AVX-512 VNNI where the CPU has it) and the result is
// dequantized to float32 with the bias added. Quantized modules are for inference: they have
// no gradient.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "soma/nn/conv.h"
#include "soma/nn/layers.h"
#include "soma/nn/module.h"

namespace soma::quantization {

/// An affine quantization: real = scale * (q - zero_point).
struct QParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

/// torch's ChooseQuantizationParams for an unsigned 8-bit range [qmin, qmax] (default 0..255):
/// the range is widened to include 0, scale = (max - min) / (qmax - qmin) (0.1 when that is 0
/// or its inverse overflows), and the zero point is the nudged, clamped -min / scale.
/// soma::Error for NaN or infinite min or max, or min > max.
QParams choose_qparams(float min, float max, int32_t qmin = 0, int32_t qmax = 255);

/// nn::Linear with int8 weights (see the file comment), and a ReLU fused into its output when
/// `relu` (torch's dynamic LinearReLU). Buffers (state_dict names): weight int8 [out, in],
/// weight_scale float32 [out], bias float32 [out] (when it has one).
class DynamicQuantLinear : public nn::Cloneable<DynamicQuantLinear> {
 public:
  DynamicQuantLinear(int64_t in_features, int64_t out_features, bool bias = true,
                     bool relu = false);
  /// The int8 version of a float Linear (float32 or float64 weights).
  static std::shared_ptr<DynamicQuantLinear> from_float(const nn::Linear& linear,
                                                        bool relu = false);

  /// input float32 [..., in] -> float32 [..., out]. soma::Error for another dtype, a wrong
  /// feature count, NaN or infinite inputs, or an input that requires grad in training mode.
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  void reset() override;

  /// The float32 weights the int8 ones stand for: weight_scale[o] * weight[o, i].
  Tensor dequantized_weight() const;

  int64_t in_features, out_features;
  bool has_bias, relu;
  Tensor weight, weight_scale, bias;

 private:
  struct Packed;
  std::shared_ptr<const Packed> packed() const;
  mutable std::shared_ptr<const Packed> packed_;  // weights packed for the kernel, by version
};

// ---- static quantization (torch's eager mode: prepare, calibrate, convert) ----------------
//
//   auto prepared = soma::quantization::prepare(model);   // a copy: Conv2d+BatchNorm2d folded,
//   for (auto& b : calibration_batches) (*prepared)(b.x);  // observers on quantized layers' inputs
//   auto qmodel = soma::quantization::convert(*prepared);  // int8 Conv2d / Linear (+ fused ReLU)
//
// Each Conv2d and Linear of a Sequential (at any depth) becomes QuantizedConv2d or
// QuantizedLinear: per-channel symmetric int8 weights as in dynamic mode, and the input
// quantized to uint8 with the scale and zero point its observer chose during calibration
// (values outside the calibrated range saturate). A BatchNorm2d right after a Conv2d is
// folded into it (nn::utils::fuse_conv_bn_eval), and a ReLU right after either is fused into
// its output. The layers between (pooling, Flatten, Dropout, activations) stay float32.

/// Observes the values a tensor takes and chooses uint8 qparams for it (torch's
/// MinMaxObserver / HistogramObserver with dtype quint8, 0..255, per tensor affine).
class Observer {
 public:
  virtual ~Observer() = default;
  /// soma::Error for NaN or infinite values.
  virtual void observe(const Tensor& x) = 0;
  /// torch's _calculate_qparams over the chosen range: scale = (max(max, 0) - min(min, 0)) /
  /// 255 (at least float32's epsilon), zero point = clamp(-round(min / scale), 0, 255).
  /// soma::Error when nothing was observed.
  virtual QParams qparams() const = 0;
  /// The range qparams() quantizes: the observed one (min-max), or the one the histogram
  /// search keeps.
  virtual std::pair<float, float> range() const = 0;
  virtual std::unique_ptr<Observer> clone() const = 0;
};

/// The running minimum and maximum of everything observed.
class MinMaxObserver : public Observer {
 public:
  void observe(const Tensor& x) override;
  QParams qparams() const override;
  std::pair<float, float> range() const override;
  std::unique_ptr<Observer> clone() const override;

 private:
  float min_ = INFINITY, max_ = -INFINITY;
};

/// A histogram of everything observed (`bins` bins over the observed range; a batch beyond it
/// widens the range and re-bins), then torch's L2 search (_non_linear_param_search) for the
/// range that minimises the 8-bit quantization error: outliers are clipped.
class HistogramObserver : public Observer {
 public:
  explicit HistogramObserver(int64_t bins = 2048);
  void observe(const Tensor& x) override;
  QParams qparams() const override;
  std::pair<float, float> range() const override;
  std::unique_ptr<Observer> clone() const override;

 private:
  int64_t bins_;
  float min_ = INFINITY, max_ = -INFINITY;
  std::vector<double> hist_;  // empty while every value observed is the same number
  double pending_ = 0;        // how many times that number was observed
};

/// torch's UniformQuantizationObserverBase._calculate_qparams for quint8 (see Observer).
QParams observer_qparams(float min, float max);

/// A Conv2d or Linear with an observer on its input (what prepare puts in their place).
class Observed : public nn::Cloneable<Observed> {
 public:
  Observed(std::shared_ptr<nn::Module> layer, std::unique_ptr<Observer> observer, bool relu);
  Observed(const Observed& other);
  Observed& operator=(const Observed& other);
  /// Observes the input, then runs the float layer (and the fused ReLU).
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  void reset() override;

  std::shared_ptr<nn::Module> layer;  // nn::Conv2d (BatchNorm folded in) or nn::Linear
  std::unique_ptr<Observer> observer;
  bool relu;
};

struct PrepareOptions {
  std::string observer = "histogram";  // "histogram" or "minmax"
};

/// A calibration copy of `model` (see above); the copy is in eval mode. soma::Error when it
/// holds no Conv2d or Linear, for Conv2d with groups, dilation, a padding mode other than
/// "zeros" or string padding, or an unknown observer.
std::shared_ptr<nn::Module> prepare(const nn::Module& model, const PrepareOptions& options = {});
/// The int8 model of a prepared and calibrated one. soma::Error for a layer whose observer saw
/// nothing (calibrate first).
std::shared_ptr<nn::Module> convert(const nn::Module& prepared);
/// prepare and convert in place, on the children of `model` (the model itself stays): return
/// how many layers they wrapped or converted.
int64_t prepare_(nn::Module& model, const PrepareOptions& options = {});
int64_t convert_(nn::Module& prepared);
/// The structure convert(prepare(model)) has, with placeholder weights and qparams: what a
/// saved statically quantized state dict loads into (soma quantize --static files).
std::shared_ptr<nn::Module> static_quantized_structure(const nn::Module& model);

/// Conv2d with int8 weights and a calibrated uint8 input (im2col + the u8 x s8 kernel).
/// Buffers: weight int8 [out, in, kh, kw], weight_scale float32 [out], bias float32 [out],
/// input_scale float32 [1], input_zero_point int32 [1].
class QuantizedConv2d : public nn::Cloneable<QuantizedConv2d> {
 public:
  QuantizedConv2d(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw,
                  std::array<int64_t, 2> stride, std::array<int64_t, 2> padding, bool relu);
  static std::shared_ptr<QuantizedConv2d> from_float(const nn::Conv2d& conv, QParams input,
                                                     bool relu);
  /// float32 [N, C, H, W] -> float32 [N, out, OH, OW].
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  void reset() override;

  int64_t in_channels, out_channels, kh, kw;
  std::array<int64_t, 2> stride, padding;
  bool relu;
  Tensor weight, weight_scale, bias, input_scale, input_zero_point;

 private:
  struct Packed;
  std::shared_ptr<const Packed> packed() const;
  mutable std::shared_ptr<const Packed> packed_;
};

/// Linear with int8 weights and a calibrated uint8 input. Buffers as QuantizedConv2d's.
class QuantizedLinear : public nn::Cloneable<QuantizedLinear> {
 public:
  QuantizedLinear(int64_t in_features, int64_t out_features, bool relu);
  static std::shared_ptr<QuantizedLinear> from_float(const nn::Linear& linear, QParams input,
                                                     bool relu);
  Tensor forward(const Tensor& input) override;
  std::string describe() const override;
  void reset() override;

  int64_t in_features, out_features;
  bool relu;
  Tensor weight, weight_scale, bias, input_scale, input_zero_point;

 private:
  struct Packed;
  std::shared_ptr<const Packed> packed() const;
  mutable std::shared_ptr<const Packed> packed_;
};

/// A copy of `model` with every nn::Linear (at any depth) replaced by a DynamicQuantLinear, in
/// the same place and under the same name (torch.ao.quantization.quantize_dynamic(model,
/// {nn.Linear}, dtype=torch.qint8) with per-channel weights). A ReLU right after a Linear in a
/// Sequential is fused into it and replaced by nn::Identity (torch's fuse_modules + dynamic
/// LinearReLU). The copy is in eval mode.
/// soma::Error when the model has no Linear, or cannot be cloned.
std::shared_ptr<nn::Module> quantize_dynamic(const nn::Module& model);
/// The same, in place: replaces the Linear children of `model` and returns how many.
int64_t quantize_dynamic_(nn::Module& model);

/// Whether `model` holds a quantized module (at any depth).
bool is_quantized(const nn::Module& model);

}  // namespace soma::quantization
