// Static int8 quantization (include/soma/quantization/quantization.h): observers, prepare
// (Conv2d + BatchNorm2d folding, ReLU fusion, observers on the inputs), convert, and the
// quantized Conv2d / Linear over the u8 x s8 kernels (kernels/cpu/lowp.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "core/tensor_impl.h"
#include "kernels/cpu/lowp.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_isa.h"
#include "ops/trace.h"
#include "quantization/common.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/nn/fusion.h"
#include "soma/nn/normalization.h"
#include "soma/ops/activation.h"
#include "soma/ops/shape.h"
#include "soma/quantization/quantization.h"

namespace soma::quantization {

namespace lowp = kernels::lowp;

// ---- observers -----------------------------------------------------------------------------

QParams observer_qparams(float min, float max) {
  SOMA_CHECK(std::isfinite(min) && std::isfinite(max) && min <= max,
             "observer_qparams: invalid range [", min, ", ", max, "]");
  // float32 throughout, as torch computes it on float32 tensors
  const float min_neg = std::min(min, 0.0f), max_pos = std::max(max, 0.0f);
  float scale = (max_pos - min_neg) / 255.0f;
  scale = std::max(scale, std::numeric_limits<float>::epsilon());
  const float zp = 0.0f - std::nearbyint(min_neg / scale);
  return {scale, static_cast<int32_t>(std::clamp(zp, 0.0f, 255.0f))};
}

namespace {

// min and max of a float tensor (any float dtype), refusing NaN and infinities.
std::pair<float, float> finite_min_max(const Tensor& x, const char* who) {
  const Tensor c = x.detach().to(kFloat32).contiguous();
  float lo = 0, hi = 0;
  bool nan = false;
  lowp::min_max(c.data<float>(), c.numel(), &lo, &hi, &nan);
  SOMA_CHECK(!nan && std::isfinite(lo) && std::isfinite(hi), who,
             ": observed NaN or infinite values (min ", lo, ", max ", hi, ")");
  return {lo, hi};
}

}  // namespace

void MinMaxObserver::observe(const Tensor& x) {
  if (!x.defined() || x.numel() == 0) return;
  const auto [lo, hi] = finite_min_max(x, "MinMaxObserver");
  min_ = std::min(min_, lo);
  max_ = std::max(max_, hi);
}

std::pair<float, float> MinMaxObserver::range() const {
  SOMA_CHECK(min_ <= max_,
             "MinMaxObserver: nothing was observed (run calibration batches "
             "through the prepared model before convert)");
  return {min_, max_};
}

QParams MinMaxObserver::qparams() const {
  const auto [lo, hi] = range();
  return observer_qparams(lo, hi);
}

std::unique_ptr<Observer> MinMaxObserver::clone() const {
  return std::make_unique<MinMaxObserver>(*this);
}

HistogramObserver::HistogramObserver(int64_t bins) : bins_(bins) {
  SOMA_CHECK(bins >= 256 && bins <= (1 << 20),
             "HistogramObserver: bins must be in [256, 2^20], got ", bins);
}

void HistogramObserver::observe(const Tensor& x) {
  if (!x.defined() || x.numel() == 0) return;
  const auto [lo, hi] = finite_min_max(x, "HistogramObserver");
  const Tensor c = x.detach().to(kFloat32).contiguous();
  const float* p = c.data<float>();
  const int64_t n = c.numel();
  const float new_min = std::min(min_, lo), new_max = std::max(max_, hi);
  if (new_min == new_max) {  // every value so far is one number: count it, no histogram yet
    min_ = max_ = new_min;
    pending_ += static_cast<double>(n);
    return;
  }
  const double new_w = (static_cast<double>(new_max) - new_min) / bins_;
  auto bin_in = [&](double v, double lo_edge, double width) {
    return std::clamp<int64_t>(static_cast<int64_t>((v - lo_edge) / width), 0, bins_ - 1);
  };
  if (hist_.empty()) {
    hist_.assign(static_cast<size_t>(bins_), 0.0);
    if (pending_ > 0) hist_[static_cast<size_t>(bin_in(min_, new_min, new_w))] += pending_;
    pending_ = 0;
  } else if (new_min < min_ || new_max > max_) {
    // widen: every old bin's count moves to the new bin holding its centre
    std::vector<double> wider(static_cast<size_t>(bins_), 0.0);
    const double old_w = (static_cast<double>(max_) - min_) / bins_;
    for (int64_t b = 0; b < bins_; ++b)
      wider[static_cast<size_t>(bin_in(min_ + (b + 0.5) * old_w, new_min, new_w))] +=
          hist_[static_cast<size_t>(b)];
    hist_.swap(wider);
  }
  min_ = new_min;
  max_ = new_max;
  for (int64_t i = 0; i < n; ++i) hist_[static_cast<size_t>(bin_in(p[i], min_, new_w))] += 1.0;
}

std::pair<float, float> HistogramObserver::range() const {
  SOMA_CHECK(min_ <= max_,
             "HistogramObserver: nothing was observed (run calibration batches "
             "through the prepared model before convert)");
  if (min_ == max_) return {min_, max_};
  // torch's _non_linear_param_search and _compute_quantization_error (dst_nbins = 256)
  const int64_t bins = bins_;
  const double bin_width = (static_cast<double>(max_) - min_) / bins;
  std::vector<double> csum(static_cast<size_t>(bins));
  double total = 0;
  for (int64_t b = 0; b < bins; ++b) csum[static_cast<size_t>(b)] = total += hist_[b];
  auto get_norm = [](double begin, double end, double density) {
    return density * (end * end * end - begin * begin * begin) / 3.0;
  };
  auto error = [&](int64_t start, int64_t end) {
    const double dst_w = bin_width * static_cast<double>(end - start + 1) / 256.0;
    if (dst_w == 0.0) return 0.0;
    double norm = 0;
    for (int64_t b = 0; b < bins; ++b) {
      const double density = hist_[static_cast<size_t>(b)] / bin_width;
      if (density == 0) continue;
      const double src_begin = static_cast<double>(b - start) * bin_width;
      const double src_end = src_begin + bin_width;
      const double dst_of_begin = std::clamp(std::floor(src_begin / dst_w), 0.0, 255.0);
      const double dst_of_end = std::clamp(std::floor(src_end / dst_w), 0.0, 255.0);
      const double begin_centre = (dst_of_begin + 0.5) * dst_w;
      norm += get_norm(src_begin - begin_centre, dst_w / 2, density);
      norm += (dst_of_end - dst_of_begin - 1) * get_norm(-dst_w / 2, dst_w / 2, density);
      const double end_centre = dst_of_end * dst_w + dst_w / 2;
      norm += get_norm(-dst_w / 2, src_end - end_centre, density);
    }
    return norm;
  };
  const double step = 1e-5;
  double alpha = 0.0, beta = 1.0, norm_min = INFINITY;
  int64_t start = 0, end = bins - 1;
  while (alpha < beta) {
    const double next_alpha = alpha + step, next_beta = beta - step;
    int64_t l = start, r = end;
    while (l < end && csum[static_cast<size_t>(l)] < next_alpha * total) ++l;
    while (r > start && csum[static_cast<size_t>(r)] > next_beta * total) --r;
    int64_t next_start = start, next_end = end;
    if (l - start > end - r) {
      next_start = l;
      alpha = next_alpha;
    } else {
      next_end = r;
      beta = next_beta;
    }
    if (next_start == start && next_end == end) continue;
    const double norm = error(next_start, next_end);
    if (norm > norm_min) break;
    norm_min = norm;
    start = next_start;
    end = next_end;
  }
  return {static_cast<float>(min_ + bin_width * start),
          static_cast<float>(min_ + bin_width * (end + 1))};
}

QParams HistogramObserver::qparams() const {
  const auto [lo, hi] = range();
  return observer_qparams(lo, hi);
}

std::unique_ptr<Observer> HistogramObserver::clone() const {
  return std::make_unique<HistogramObserver>(*this);
}

// ---- Observed ------------------------------------------------------------------------------

Observed::Observed(std::shared_ptr<nn::Module> layer, std::unique_ptr<Observer> observer, bool relu)
    : layer(std::move(layer)), observer(std::move(observer)), relu(relu) {
  SOMA_CHECK(this->layer && this->observer, "Observed: layer and observer must be given");
  reset();
}

Observed::Observed(const Observed& other)
    : nn::Cloneable<Observed>(other),
      layer(other.layer),
      observer(other.observer ? other.observer->clone() : nullptr),
      relu(other.relu) {}

Observed& Observed::operator=(const Observed& other) {
  if (this != &other) {
    nn::Cloneable<Observed>::operator=(other);
    layer = other.layer;
    observer = other.observer ? other.observer->clone() : nullptr;
    relu = other.relu;
  }
  return *this;
}

void Observed::reset() {
  // a fresh copy: clone() turns the child reset() registers into the original's clone in place
  layer = register_module("layer", layer->clone());
}

Tensor Observed::forward(const Tensor& input) {
  observer->observe(input);
  Tensor y = (*layer)(input);
  return relu ? soma::relu(y) : y;
}

std::string Observed::describe() const {
  return "Observed(" + layer->describe() + (relu ? " + ReLU" : "") + ")";
}

// ---- prepare / convert ---------------------------------------------------------------------

namespace {

std::unique_ptr<Observer> make_observer(const std::string& kind) {
  if (kind == "histogram") return std::make_unique<HistogramObserver>();
  if (kind == "minmax") return std::make_unique<MinMaxObserver>();
  detail::fail("prepare: unknown observer '", kind, "' (expected histogram or minmax)");
}

void check_conv(const nn::Conv2d& c) {
  const auto& o = c.options;
  SOMA_CHECK(o.groups() == 1 && o.dilation()[0] == 1 && o.dilation()[1] == 1 &&
                 o.padding_mode() == "zeros" &&
                 std::holds_alternative<nn::ExpandingArray<2>>(o.padding()),
             "static quantization: ", c.describe(),
             " is not supported (groups 1, dilation 1, numeric zero padding only)");
  SOMA_CHECK(c.weight.dtype() == kFloat32, "static quantization: ", c.describe(), " has ",
             c.weight.dtype(), " weights (float32 only)");
}

int64_t prepare_children(nn::Module& m, const PrepareOptions& opt) {
  int64_t n = 0;
  const auto kids = m.named_children();
  const bool ordered = dynamic_cast<nn::Sequential*>(&m) != nullptr;
  for (size_t i = 0; i < kids.size(); ++i) {
    const auto& [name, child] = kids[i];
    auto next_is = [&](size_t j, auto* type) -> bool {
      using T = std::remove_pointer_t<decltype(type)>;
      return ordered && j < kids.size() && dynamic_cast<T*>(kids[j].second.get()) != nullptr;
    };
    std::shared_ptr<nn::Module> layer;
    size_t j = i + 1;
    if (auto* conv = dynamic_cast<nn::Conv2d*>(child.get())) {
      check_conv(*conv);
      if (next_is(j, static_cast<nn::BatchNorm2d*>(nullptr))) {
        auto& bn = dynamic_cast<nn::BatchNorm2d&>(*kids[j].second);
        nn::Conv2d c = *conv;
        c.eval();
        bn.eval();
        layer = std::make_shared<nn::Conv2d>(nn::utils::fuse_conv_bn_eval(c, bn));
        m.replace_module(kids[j].first, std::make_shared<nn::Identity>());
        ++j;
      } else {
        layer = conv->clone();
      }
    } else if (dynamic_cast<nn::Linear*>(child.get())) {
      SOMA_CHECK(child->parameters().front().dtype() == kFloat32,
                 "static quantization: ", child->describe(), " has ",
                 child->parameters().front().dtype(), " weights (float32 only)");
      layer = child->clone();
    } else {
      if (!dynamic_cast<Observed*>(child.get())) n += prepare_children(*child, opt);
      continue;
    }
    const bool relu = next_is(j, static_cast<nn::ReLU*>(nullptr));
    if (relu) m.replace_module(kids[j].first, std::make_shared<nn::Identity>());
    layer->eval();
    m.replace_module(name, std::make_shared<Observed>(layer, make_observer(opt.observer), relu));
    ++n;
  }
  return n;
}

int64_t convert_children(nn::Module& m, bool placeholder) {
  int64_t n = 0;
  for (const auto& [name, child] : std::vector(m.named_children())) {
    auto* obs = dynamic_cast<Observed*>(child.get());
    if (!obs) {
      n += convert_children(*child, placeholder);
      continue;
    }
    QParams qp;
    try {
      if (!placeholder) qp = obs->observer->qparams();
    } catch (const Error& e) {
      detail::fail("convert: ", obs->describe(), " (child '", name, "'): ", e.what());
    }
    if (auto* conv = dynamic_cast<nn::Conv2d*>(obs->layer.get()))
      m.replace_module(name, QuantizedConv2d::from_float(*conv, qp, obs->relu));
    else
      m.replace_module(
          name, QuantizedLinear::from_float(dynamic_cast<nn::Linear&>(*obs->layer), qp, obs->relu));
    ++n;
  }
  return n;
}

QParams stored_qparams(const Tensor& scale, const Tensor& zp, const std::string& who) {
  SOMA_CHECK(
      scale.dtype() == kFloat32 && scale.numel() == 1 && zp.numel() == 1 && zp.dtype() == kInt32,
      who, ": input_scale must be float32 [1] and input_zero_point int32 [1]");
  const float s = scale.contiguous().data<float>()[0];
  const int32_t z = zp.contiguous().data<int32_t>()[0];
  SOMA_CHECK(std::isfinite(s) && s > 0 && z >= 0 && z <= 255, who,
             ": invalid input qparams (scale ", s, ", zero point ", z, ")");
  return {s, z};
}

void check_inference(const Tensor& input, const std::string& who) {
  SOMA_CHECK(input.dtype() == kFloat32, who, ": input must be float32, got ", input.dtype());
  SOMA_CHECK(!(input.requires_grad() && autograd::is_grad_enabled() && trace::active() == nullptr),
             who,
             ": quantized layers are for inference and have no gradient; call it under "
             "NoGradGuard or on a tensor that does not require grad");
}

}  // namespace

int64_t prepare_(nn::Module& model, const PrepareOptions& options) {
  make_observer(options.observer);  // an unknown name fails first
  model.eval();
  const int64_t n = prepare_children(model, options);
  SOMA_CHECK(n > 0, "prepare: ", model.describe(), " holds no Conv2d or Linear to quantize");
  model.eval();
  return n;
}

std::shared_ptr<nn::Module> prepare(const nn::Module& model, const PrepareOptions& options) {
  make_observer(options.observer);  // an unknown name fails before the copy
  std::shared_ptr<nn::Module> copy = model.clone();
  if (dynamic_cast<nn::Conv2d*>(copy.get()) || dynamic_cast<nn::Linear*>(copy.get())) {
    auto seq = std::make_shared<nn::Sequential>();
    seq->push_back(copy);
    copy = seq;
  }
  prepare_(*copy, options);
  return copy;
}

int64_t convert_(nn::Module& prepared) {
  const int64_t n = convert_children(prepared, false);
  SOMA_CHECK(n > 0, "convert: ", prepared.describe(),
             " holds no observed layer (call prepare first)");
  prepared.eval();
  return n;
}

std::shared_ptr<nn::Module> static_quantized_structure(const nn::Module& model) {
  std::shared_ptr<nn::Module> copy = prepare(model, {.observer = "minmax"});
  convert_children(*copy, true);
  return copy;
}

std::shared_ptr<nn::Module> convert(const nn::Module& prepared) {
  std::shared_ptr<nn::Module> copy = prepared.clone();
  convert_(*copy);
  return copy;
}

// ---- QuantizedConv2d -----------------------------------------------------------------------

struct QuantizedConv2d::Packed : internal::PackedWeight {};

QuantizedConv2d::QuantizedConv2d(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw,
                                 std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                                 bool relu)
    : in_channels(in_channels),
      out_channels(out_channels),
      kh(kh),
      kw(kw),
      stride(stride),
      padding(padding),
      relu(relu) {
  SOMA_CHECK(in_channels > 0 && out_channels > 0 && kh > 0 && kw > 0 && stride[0] > 0 &&
                 stride[1] > 0 && padding[0] >= 0 && padding[1] >= 0,
             "QuantizedConv2d: invalid geometry");
  internal::register_int8_fusion();
  reset();
}

void QuantizedConv2d::reset() {
  weight = register_buffer("weight", zeros({out_channels, in_channels, kh, kw}, kInt8));
  weight_scale = register_buffer("weight_scale", ones({out_channels}, kFloat32));
  bias = register_buffer("bias", zeros({out_channels}, kFloat32));
  input_scale = register_buffer("input_scale", ones({1}, kFloat32));
  input_zero_point = register_buffer("input_zero_point", zeros({1}, kInt32));
  packed_.reset();
}

std::shared_ptr<QuantizedConv2d> QuantizedConv2d::from_float(const nn::Conv2d& conv, QParams input,
                                                             bool relu) {
  check_conv(conv);
  const auto& o = conv.options;
  const auto& pad = std::get<nn::ExpandingArray<2>>(o.padding());
  auto q = std::make_shared<QuantizedConv2d>(o.in_channels(), o.out_channels(), o.kernel_size()[0],
                                             o.kernel_size()[1],
                                             std::array<int64_t, 2>{o.stride()[0], o.stride()[1]},
                                             std::array<int64_t, 2>{pad[0], pad[1]}, relu);
  const int64_t k = q->in_channels * q->kh * q->kw;
  internal::quantize_rows(conv.weight, q->out_channels, k, q->weight.data<int8_t>(),
                          q->weight_scale.data<float>(), "quantize: " + conv.describe());
  NoGradGuard ng;
  if (conv.bias.defined()) q->bias.copy_(conv.bias.detach().to(kFloat32));
  q->input_scale.data<float>()[0] = input.scale;
  q->input_zero_point.data<int32_t>()[0] = input.zero_point;
  q->eval();
  return q;
}

std::shared_ptr<const QuantizedConv2d::Packed> QuantizedConv2d::packed() const {
  SOMA_CHECK(
      weight.dtype() == kInt8 && weight.shape() == Shape({out_channels, in_channels, kh, kw}),
      describe(), ": weight must be int8 [", out_channels, ", ", in_channels, ", ", kh, ", ", kw,
      "]");
  return internal::cached_pack(packed_, weight, out_channels, in_channels * kh * kw);
}

Tensor QuantizedConv2d::forward(const Tensor& input) {
  trace::Scope ts;  // soma::onnx::export_model writes it as QDQ nodes
  SOMA_CHECK(input.defined() && input.dim() == 4 && input.size(1) == in_channels, describe(),
             ": expected input [N, ", in_channels, ", H, W], got ",
             input.defined() ? input.shape() : Shape{});
  check_inference(input, describe());
  const QParams qp = stored_qparams(input_scale, input_zero_point, describe());
  SOMA_CHECK(weight_scale.dtype() == kFloat32 && weight_scale.numel() == out_channels &&
                 bias.dtype() == kFloat32 && bias.numel() == out_channels,
             describe(), ": weight_scale and bias must be float32 [", out_channels, "]");
  const auto p = packed();
  const int64_t n = input.size(0), h = input.size(2), w = input.size(3);
  const int64_t oh = (h + 2 * padding[0] - kh) / stride[0] + 1;
  const int64_t ow = (w + 2 * padding[1] - kw) / stride[1] + 1;
  SOMA_CHECK(h + 2 * padding[0] >= kh && w + 2 * padding[1] >= kw, describe(), ": input ",
             input.shape(), " is smaller than the kernel");
  const Tensor x = input.detach().contiguous();
  Tensor out = empty({n, out_channels, oh, ow}, kFloat32);
  if (n == 0) return out;
  const int64_t c = in_channels, k = c * kh * kw, pix = oh * ow, oc = out_channels;
  const Tensor ws = weight_scale.contiguous(), b = bias.contiguous();
  const float* px = x.data<float>();
  float* y = out.data<float>();
  const uint8_t zp = static_cast<uint8_t>(qp.zero_point);
  const int64_t sh = stride[0], sw = stride[1], ph = padding[0], pw = padding[1];
  const bool do_relu = relu;
  // One image per task, everything in cache: quantize it, uint8 im2col (padding is the zero
  // point: real 0), the u8 x s8 product (one thread inside the region) into [pix, out], then
  // the transpose to [out, pix] with the fused ReLU.
  kernels::cpu::parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    std::unique_ptr<uint8_t[]> qx(new uint8_t[static_cast<size_t>(c * h * w)]);
    std::unique_ptr<uint8_t[]> cols(new uint8_t[static_cast<size_t>(pix * k)]);
    std::unique_ptr<float[]> rows(new float[static_cast<size_t>(pix * oc)]);
    kernels::cpu::with_vector_isa([&]() SOMA_VECTOR_BODY {
      for (int64_t img = begin; img < end; ++img) {
        lowp::quantize_u8(px + img * c * h * w, c * h * w, qp.scale, qp.zero_point, qx.get());
        uint8_t* dst = cols.get();
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox) {
            const int64_t x0 = ox * sw - pw;
            const bool inside_x = x0 >= 0 && x0 + kw <= w;
            for (int64_t ci = 0; ci < c; ++ci)
              for (int64_t ky = 0; ky < kh; ++ky) {
                const int64_t iy = oy * sh - ph + ky;
                if (iy < 0 || iy >= h) {
                  std::memset(dst, zp, static_cast<size_t>(kw));
                } else {
                  const uint8_t* row = qx.get() + (ci * h + iy) * w;
                  if (inside_x) {
                    for (int64_t kx = 0; kx < kw; ++kx) dst[kx] = row[x0 + kx];
                  } else {
                    for (int64_t kx = 0; kx < kw; ++kx) {
                      const int64_t ix = x0 + kx;
                      dst[kx] = ix >= 0 && ix < w ? row[ix] : zp;
                    }
                  }
                }
                dst += kw;
              }
          }
        lowp::gemm_u8s8_f32(pix, cols.get(), k, p->w, qp.zero_point, qp.scale, ws.data<float>(),
                            b.data<float>(), rows.get(), oc);
        float* yi = y + img * oc * pix;
        for (int64_t i0 = 0; i0 < pix; i0 += 16) {  // blocked transpose
          const int64_t i1 = std::min(pix, i0 + 16);
          for (int64_t o = 0; o < oc; ++o) {
            float* d = yi + o * pix;
            if (do_relu)
              for (int64_t i = i0; i < i1; ++i) d[i] = std::max(rows[i * oc + o], 0.0f);
            else
              for (int64_t i = i0; i < i1; ++i) d[i] = rows[i * oc + o];
          }
        }
      }
    });
  });
  if (ts)
    ts.record("quantized_conv2d",
              {input, weight, weight_scale, bias, input_scale, input_zero_point}, out,
              {{"stride", std::vector<int64_t>{stride[0], stride[1]}},
               {"padding", std::vector<int64_t>{padding[0], padding[1]}},
               {"relu", int64_t{relu}}});
  return out;
}

std::string QuantizedConv2d::describe() const {
  return "QuantizedConv2d(" + std::to_string(in_channels) + " -> " + std::to_string(out_channels) +
         ", kernel " + std::to_string(kh) + "x" + std::to_string(kw) + ", stride " +
         std::to_string(stride[0]) + "x" + std::to_string(stride[1]) + ", padding " +
         std::to_string(padding[0]) + "x" + std::to_string(padding[1]) + (relu ? ", ReLU" : "") +
         ", int8)";
}

// ---- QuantizedLinear -----------------------------------------------------------------------

struct QuantizedLinear::Packed : internal::PackedWeight {};

QuantizedLinear::QuantizedLinear(int64_t in_features, int64_t out_features, bool relu)
    : in_features(in_features), out_features(out_features), relu(relu) {
  SOMA_CHECK(in_features > 0 && out_features > 0, "QuantizedLinear: in_features (", in_features,
             ") and out_features (", out_features, ") must be positive");
  reset();
}

void QuantizedLinear::reset() {
  weight = register_buffer("weight", zeros({out_features, in_features}, kInt8));
  weight_scale = register_buffer("weight_scale", ones({out_features}, kFloat32));
  bias = register_buffer("bias", zeros({out_features}, kFloat32));
  input_scale = register_buffer("input_scale", ones({1}, kFloat32));
  input_zero_point = register_buffer("input_zero_point", zeros({1}, kInt32));
  packed_.reset();
}

std::shared_ptr<QuantizedLinear> QuantizedLinear::from_float(const nn::Linear& linear,
                                                             QParams input, bool relu) {
  auto q = std::make_shared<QuantizedLinear>(linear.in_features, linear.out_features, relu);
  internal::quantize_rows(linear.weight, q->out_features, q->in_features, q->weight.data<int8_t>(),
                          q->weight_scale.data<float>(), "quantize: " + linear.describe());
  NoGradGuard ng;
  if (linear.bias.defined()) q->bias.copy_(linear.bias.detach().to(kFloat32));
  q->input_scale.data<float>()[0] = input.scale;
  q->input_zero_point.data<int32_t>()[0] = input.zero_point;
  q->eval();
  return q;
}

std::shared_ptr<const QuantizedLinear::Packed> QuantizedLinear::packed() const {
  SOMA_CHECK(weight.dtype() == kInt8 && weight.shape() == Shape({out_features, in_features}),
             describe(), ": weight must be int8 [", out_features, ", ", in_features, "]");
  return internal::cached_pack(packed_, weight, out_features, in_features);
}

Tensor QuantizedLinear::forward(const Tensor& input) {
  trace::Scope ts;  // soma::onnx::export_model writes it as QDQ nodes
  SOMA_CHECK(input.defined() && input.dim() >= 1 && input.size(-1) == in_features, describe(),
             ": input of shape ", input.defined() ? input.shape() : Shape{}, " has ",
             input.defined() && input.dim() >= 1 ? input.size(-1) : 0, " features, expected ",
             in_features);
  check_inference(input, describe());
  const QParams qp = stored_qparams(input_scale, input_zero_point, describe());
  SOMA_CHECK(weight_scale.dtype() == kFloat32 && weight_scale.numel() == out_features &&
                 bias.dtype() == kFloat32 && bias.numel() == out_features,
             describe(), ": weight_scale and bias must be float32 [", out_features, "]");
  const auto p = packed();
  const Tensor x = input.detach().contiguous();
  const int64_t m = x.numel() / in_features;
  Shape shape = input.shape();
  shape.back() = out_features;
  Tensor out = empty({m, out_features}, kFloat32);
  if (m > 0) {
    const Tensor ws = weight_scale.contiguous(), b = bias.contiguous();
    lowp::quantize_gemm_u8s8_f32(m, x.data<float>(), in_features, p->w, qp.zero_point, qp.scale,
                                 ws.data<float>(), b.data<float>(), out.data<float>(), out_features,
                                 relu);
  }
  out = out.view(shape);
  if (ts)
    ts.record("quantized_linear",
              {input, weight, weight_scale, bias, input_scale, input_zero_point}, out,
              {{"relu", int64_t{relu}}});
  return out;
}

std::string QuantizedLinear::describe() const {
  return "QuantizedLinear(" + std::to_string(in_features) + " -> " + std::to_string(out_features) +
         (relu ? ", ReLU" : "") + ", int8)";
}

}  // namespace soma::quantization
