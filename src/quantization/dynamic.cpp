// Dynamic int8 quantization (include/soma/quantization.h): torch's qparams, DynamicQuantLinear
// over the u8 x s8 kernels (kernels/cpu/lowp.h), and the module swap.
#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/tensor_impl.h"
#include "kernels/cpu/lowp.h"
#include "ops/trace.h"
#include "quantization/common.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/shape.h"
#include "soma/quantization/quantization.h"

namespace soma::quantization {

namespace lowp = kernels::lowp;

QParams choose_qparams(float min, float max, int32_t qmin, int32_t qmax) {
  SOMA_CHECK(std::isfinite(min) && std::isfinite(max), "choose_qparams: min ", min, " and max ",
             max, " must be finite");
  SOMA_CHECK(min <= max, "choose_qparams: min ", min, " is greater than max ", max);
  SOMA_CHECK(qmin < qmax, "choose_qparams: qmin ", qmin, " must be below qmax ", qmax);
  // As torch's quant_utils::ChooseQuantizationParams (no sparsity, no power-of-two scale):
  // double intermediates, float scale, the small-scale cut-off, the zero point from the end
  // with the smaller error, nudged to an integer in [qmin, qmax].
  min = std::min(min, 0.0f);
  max = std::max(max, 0.0f);
  double scale = (static_cast<double>(max) - min) / (qmax - qmin);
  if (static_cast<float>(scale) == 0.0f || std::isinf(1.0f / static_cast<float>(scale)))
    scale = 0.1;
  constexpr float kSmallScale = 6.1e-5f;
  if (scale < kSmallScale) {
    const float org_scale = static_cast<float>(scale);
    scale = kSmallScale;
    if (min == 0.0f) {
      max = kSmallScale * static_cast<float>(qmax - qmin);
    } else if (max == 0.0f) {
      min = -kSmallScale * static_cast<float>(qmax - qmin);
    } else {
      const float amplifier = kSmallScale / org_scale;
      min *= amplifier;
      max *= amplifier;
    }
  }
  const double from_min = qmin - min / scale;
  const double from_max = qmax - max / scale;
  const double from_min_error = std::abs(qmin) - std::abs(min / scale);
  const double from_max_error = std::abs(qmax) - std::abs(max / scale);
  const double initial = from_min_error < from_max_error ? from_min : from_max;
  int32_t zp;
  if (initial < qmin)
    zp = qmin;
  else if (initial > qmax)
    zp = qmax;
  else
    zp = static_cast<int32_t>(std::nearbyint(initial));
  return {static_cast<float>(scale), zp};
}

// ---- DynamicQuantLinear --------------------------------------------------------------------

struct DynamicQuantLinear::Packed : internal::PackedWeight {};

DynamicQuantLinear::DynamicQuantLinear(int64_t in_features, int64_t out_features, bool bias,
                                       bool relu)
    : in_features(in_features), out_features(out_features), has_bias(bias), relu(relu) {
  SOMA_CHECK(in_features > 0 && out_features > 0, "DynamicQuantLinear: in_features (", in_features,
             ") and out_features (", out_features, ") must be positive");
  reset();
}

void DynamicQuantLinear::reset() {
  weight = register_buffer("weight", zeros({out_features, in_features}, kInt8));
  weight_scale = register_buffer("weight_scale", ones({out_features}, kFloat32));
  if (has_bias) bias = register_buffer("bias", zeros({out_features}, kFloat32));
  packed_.reset();
}

std::shared_ptr<DynamicQuantLinear> DynamicQuantLinear::from_float(const nn::Linear& linear,
                                                                   bool relu) {
  SOMA_CHECK(linear.weight.defined() && is_floating(linear.weight.dtype()),
             "quantize_dynamic: ", linear.describe(), " has no floating-point weight");
  NoGradGuard no_grad;
  auto q = std::make_shared<DynamicQuantLinear>(linear.in_features, linear.out_features,
                                                linear.bias.defined(), relu);
  internal::quantize_rows(linear.weight, linear.out_features, linear.in_features,
                          q->weight.data<int8_t>(), q->weight_scale.data<float>(),
                          "quantize_dynamic: " + linear.describe());
  if (linear.bias.defined()) q->bias.copy_(linear.bias.detach().to(kFloat32));
  q->train(linear.is_training());
  return q;
}

std::shared_ptr<const DynamicQuantLinear::Packed> DynamicQuantLinear::packed() const {
  SOMA_CHECK(weight.dtype() == kInt8 && weight.shape() == Shape({out_features, in_features}),
             describe(), ": weight must be int8 [", out_features, ", ", in_features, "], got ",
             weight.dtype(), " ", weight.shape());
  return internal::cached_pack(packed_, weight, out_features, in_features);
}

Tensor DynamicQuantLinear::forward(const Tensor& input) {
  trace::Scope ts;  // soma::onnx::export_model writes it as QDQ nodes
  SOMA_CHECK(input.defined() && input.dim() >= 1 && input.size(-1) == in_features, describe(),
             ": input of shape ", input.defined() ? input.shape() : Shape{}, " has ",
             input.defined() && input.dim() >= 1 ? input.size(-1) : 0, " features, expected ",
             in_features);
  SOMA_CHECK(input.dtype() == kFloat32, describe(), ": input must be float32, got ", input.dtype());
  SOMA_CHECK(!(input.requires_grad() && autograd::is_grad_enabled() && trace::active() == nullptr),
             describe(),
             ": quantized layers are for inference and have no gradient; call it under "
             "NoGradGuard or on a tensor that does not require grad");
  SOMA_CHECK(weight_scale.dtype() == kFloat32 && weight_scale.shape() == Shape({out_features}),
             describe(), ": weight_scale must be float32 [", out_features, "], got ",
             weight_scale.dtype(), " ", weight_scale.shape());
  SOMA_CHECK(!has_bias || (bias.dtype() == kFloat32 && bias.shape() == Shape({out_features})),
             describe(), ": bias must be float32 [", out_features, "]");
  const auto p = packed();
  const Tensor x = input.detach().contiguous();
  const int64_t m = x.numel() / in_features;
  Shape out_shape = input.shape();
  out_shape.back() = out_features;
  Tensor out = empty({m, out_features}, kFloat32);
  if (m > 0) {
    const float* px = x.data<float>();
    float lo = 0.0f, hi = 0.0f;
    bool has_nan = false;
    lowp::min_max(px, m * in_features, &lo, &hi, &has_nan);
    SOMA_CHECK(!has_nan && std::isfinite(lo) && std::isfinite(hi), describe(),
               ": the input holds NaN or infinite values (min ", lo, ", max ", hi,
               "), which int8 cannot represent");
    const QParams qp = choose_qparams(lo, hi);
    const Tensor ws = weight_scale.contiguous();
    const Tensor b = has_bias ? bias.contiguous() : Tensor();
    // quantize_u8 and the GEMM with its dequantisation and ReLU epilogue, in one pass.
    lowp::quantize_gemm_u8s8_f32(m, px, in_features, p->w, qp.zero_point, qp.scale,
                                 ws.data<float>(), has_bias ? b.data<float>() : nullptr,
                                 out.data<float>(), out_features, relu);
  }
  out = out.view(out_shape);
  if (ts)
    ts.record("dynamic_quant_linear", {input, weight, weight_scale, bias}, out,
              {{"relu", int64_t{relu}}});
  return out;
}

std::string DynamicQuantLinear::describe() const {
  return "DynamicQuantLinear(" + std::to_string(in_features) + " -> " +
         std::to_string(out_features) + (has_bias ? "" : ", bias=false") + (relu ? ", ReLU" : "") +
         ", int8)";
}

Tensor DynamicQuantLinear::dequantized_weight() const {
  NoGradGuard no_grad;
  return weight.to(kFloat32) * weight_scale.reshape({out_features, 1});
}

// ---- the swap ------------------------------------------------------------------------------

namespace {

int64_t swap_linears(nn::Module& m) {
  int64_t n = 0;
  // Copy the list: replace_module changes the entries.
  const auto children = m.named_children();
  const bool ordered = dynamic_cast<nn::Sequential*>(&m) != nullptr;
  for (size_t i = 0; i < children.size(); ++i) {
    const auto& [name, child] = children[i];
    if (auto* lin = dynamic_cast<nn::Linear*>(child.get())) {
      const bool relu = ordered && i + 1 < children.size() &&
                        dynamic_cast<nn::ReLU*>(children[i + 1].second.get()) != nullptr;
      if (relu) m.replace_module(children[i + 1].first, std::make_shared<nn::Identity>());
      m.replace_module(name, DynamicQuantLinear::from_float(*lin, relu));
      ++n;
    } else {
      n += swap_linears(*child);
    }
  }
  return n;
}

bool holds_quantized(const nn::Module& m) {
  if (dynamic_cast<const DynamicQuantLinear*>(&m) || dynamic_cast<const QuantizedLinear*>(&m) ||
      dynamic_cast<const QuantizedConv2d*>(&m))
    return true;
  for (const auto& [name, child] : m.named_children())
    if (holds_quantized(*child)) return true;
  return false;
}

}  // namespace

int64_t quantize_dynamic_(nn::Module& model) {
  SOMA_CHECK(dynamic_cast<nn::Linear*>(&model) == nullptr,
             "quantize_dynamic_: the model itself is a Linear and cannot replace itself in "
             "place; use quantize_dynamic(model), which returns the quantized copy");
  const int64_t n = swap_linears(model);
  SOMA_CHECK(n > 0, "quantize_dynamic: ", model.describe(), " holds no Linear layer to quantize");
  model.eval();
  return n;
}

std::shared_ptr<nn::Module> quantize_dynamic(const nn::Module& model) {
  if (auto* lin = dynamic_cast<const nn::Linear*>(&model)) {
    auto q = DynamicQuantLinear::from_float(*lin);
    q->eval();
    return q;
  }
  std::shared_ptr<nn::Module> copy = model.clone();
  quantize_dynamic_(*copy);
  return copy;
}

bool is_quantized(const nn::Module& model) {
  return holds_quantized(model);
}

}  // namespace soma::quantization
