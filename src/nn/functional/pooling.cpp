// nn::functional pooling and resampling. Max pooling runs the MaxPoolForward kernel (values and
// flat indices); its backward scatters the gradient to the indices (MaxPoolBackward), an op whose
// own backward gathers at the same indices, so both derivatives are ops of the graph. Average
// pooling and its adjoint (AvgPoolForward / AvgPoolBackward) are each other's backward.
// Adaptive average pooling and bilinear interpolation are two small matmuls with the averaging /
// interpolation matrices; nearest interpolation is index_select; dropout2d a mask product.
#include "soma/nn/pooling.h"

#include <cmath>
#include <sstream>
#include <string>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "kernels/kernels.h"
#include "ops/trace.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/indexing.h"
#include "soma/ops/matmul.h"
#include "soma/ops/shape.h"

namespace soma::nn::functional {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;
using kernels::cpu::PoolGeometry;

namespace {

std::pair<int64_t, int64_t> pair_of(const std::vector<int64_t>& v, const char* op,
                                    const char* what) {
  SOMA_CHECK(v.size() == 1 || v.size() == 2, op, ": ", what, " must hold 1 or 2 values, got ", v);
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// torch's pooling_output_shape, with ceil_mode's rule that the last window starts inside the
// input or the left padding.
int64_t output_size(int64_t in, int64_t k, int64_t pad, int64_t s, int64_t d, bool ceil_mode) {
  int64_t out = floor_div(in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

void check_input(const Tensor& x, const char* op, int64_t spatial) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(is_floating(x.dtype()), op, ": \"", op, "\" not implemented for ", x.dtype(),
             " (float32 and float64 only)");
  const int64_t lo = spatial + 1, hi = spatial + 2;
  bool ok = x.dim() == lo || x.dim() == hi;
  for (int64_t d = x.dim() == hi ? 1 : 0; ok && d < x.dim(); ++d) ok = x.size(d) > 0;
  SOMA_CHECK(ok, op, ": non-empty ", lo, "D or ", hi, "D (batch mode) tensor expected for input, ",
             "got ", x.shape());
}

// [N, C, H, W] (unsqueezing an unbatched [C, H, W]); `unbatched` says to squeeze the result.
Tensor batched(const Tensor& x, int64_t spatial, bool& unbatched) {
  unbatched = x.dim() == spatial + 1;
  Tensor b = unbatched ? soma::unsqueeze(x, 0) : x;
  if (spatial == 1) b = soma::unsqueeze(b, 2);  // [N, C, 1, L]
  return b;
}

Tensor unbatch(const Tensor& y, int64_t spatial, bool unbatched) {
  Tensor r = spatial == 1 ? soma::squeeze(y, 2) : y;
  return unbatched ? soma::squeeze(r, 0) : r;
}

struct Window {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

Window window(const std::vector<int64_t>& kernel_size, const std::vector<int64_t>& stride,
              const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation,
              const char* op) {
  Window w{};
  std::tie(w.kh, w.kw) = pair_of(kernel_size, op, "kernel_size");
  if (stride.empty())
    std::tie(w.sh, w.sw) = std::pair{w.kh, w.kw};
  else
    std::tie(w.sh, w.sw) = pair_of(stride, op, "stride");
  std::tie(w.ph, w.pw) = pair_of(padding, op, "padding");
  std::tie(w.dh, w.dw) = pair_of(dilation, op, "dilation");
  SOMA_CHECK(w.sh != 0 && w.sw != 0, op, ": stride should not be zero (stride ", stride,
             ", kernel_size ", kernel_size, ")");
  SOMA_CHECK(w.kh > 0 && w.kw > 0, op, ": kernel size should be greater than zero, but got ",
             "kernel_size ", kernel_size);
  SOMA_CHECK(w.sh > 0 && w.sw > 0, op, ": stride should be greater than zero, but got stride ",
             stride);
  SOMA_CHECK(w.dh > 0 && w.dw > 0, op, ": dilation should be greater than zero, but got ",
             "dilation ", dilation);
  SOMA_CHECK(w.ph >= 0 && w.pw >= 0, op, ": pad must be non-negative, but got padding ", padding);
  SOMA_CHECK(w.ph <= w.kh / 2 && w.pw <= w.kw / 2, op,
             ": pad should be at most half of effective kernel size, but got padding ", padding,
             " and kernel_size ", kernel_size);
  return w;
}

PoolGeometry geometry(const Tensor& x4, const Window& w, bool ceil_mode, const char* op) {
  PoolGeometry g{};
  g.planes = x4.size(0) * x4.size(1);
  g.height = x4.size(2);
  g.width = x4.size(3);
  g.kh = w.kh, g.kw = w.kw, g.sh = w.sh, g.sw = w.sw, g.ph = w.ph, g.pw = w.pw, g.dh = w.dh,
  g.dw = w.dw;
  g.oh = output_size(g.height, w.kh, w.ph, w.sh, w.dh, ceil_mode);
  g.ow = output_size(g.width, w.kw, w.pw, w.sw, w.dw, ceil_mode);
  SOMA_CHECK(g.oh >= 1 && g.ow >= 1, op, ": Given input size: (", x4.size(1), "x", g.height, "x",
             g.width, "). Calculated output size: (", x4.size(1), "x", g.oh, "x", g.ow,
             "). Output size is too small (kernel_size (", w.kh, ", ", w.kw, "), stride (", w.sh,
             ", ", w.sw, "), padding (", w.ph, ", ", w.pw, "), dilation (", w.dh, ", ", w.dw, "))");
  return g;
}

// ---- the differentiable building blocks (4-D tensors) -----------------------------------------
Tensor gather_planes(const Tensor& x, const Tensor& idx);

// gx [N, C, H, W] with gx[n, c, idx[n, c, o]] += gy[n, c, o]; backward: gather at idx. g is
// the forward's geometry (the kernel may use the window: 2x2 stride-2 windows do not overlap).
Tensor scatter_planes(const Tensor& gy, const Tensor& idx, const PoolGeometry& g) {
  Tensor gx = detail::make_tensor({gy.size(0), gy.size(1), g.height, g.width}, gy.dtype());
  const Tensor gc = gy.contiguous();
  detail::dispatch_float(gy.dtype(), "max_pool2d_backward", [&]<typename T>() {
    kernels::call<kernels::MaxPoolBackward<T>>(gc.data<T>(), idx.data<int64_t>(), gx.data<T>(), g);
  });
  if (needs_grad(gy))
    record(gx, "max_pool2d_backward", {gy},
           [idx](const Tensor& g2) -> Grads { return {gather_planes(g2, idx)}; });
  return gx;
}

// y[n, c, o] = x[n, c, idx[n, c, o]] (flat positions within each plane).
Tensor gather_planes(const Tensor& x, const Tensor& idx) {
  const int64_t n = x.size(0), c = x.size(1);
  const Tensor flat = soma::reshape(x, {n, c, x.size(2) * x.size(3)});
  const Tensor y = soma::gather(flat, 2, soma::reshape(idx, {n, c, idx.size(2) * idx.size(3)}));
  return soma::reshape(y, idx.shape());
}

std::tuple<Tensor, Tensor> max_pool_4d(const Tensor& x, const PoolGeometry& g, const char* op) {
  Tensor y = detail::make_tensor({x.size(0), x.size(1), g.oh, g.ow}, x.dtype());
  Tensor idx = detail::make_tensor({x.size(0), x.size(1), g.oh, g.ow}, kInt64);
  const Tensor xc = x.contiguous();
  detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
    kernels::call<kernels::MaxPoolForward<T>>(xc.data<T>(), y.data<T>(), idx.data<int64_t>(), g);
  });
  if (needs_grad(x))
    record(y, op, {x},
           [idx, g](const Tensor& gy) -> Grads { return {scatter_planes(gy, idx, g)}; });
  return {y, idx};
}

Tensor avg_backward_4d(const Tensor& gy, const PoolGeometry& g);

Tensor avg_forward_4d(const Tensor& x, const PoolGeometry& g) {
  Tensor y = detail::make_tensor({x.size(0), x.size(1), g.oh, g.ow}, x.dtype());
  const Tensor xc = x.contiguous();
  detail::dispatch_float(x.dtype(), "avg_pool2d", [&]<typename T>() {
    kernels::call<kernels::AvgPoolForward<T>>(xc.data<T>(), y.data<T>(), g);
  });
  if (needs_grad(x))
    record(y, "avg_pool2d", {x},
           [g](const Tensor& gy) -> Grads { return {avg_backward_4d(gy, g)}; });
  return y;
}

Tensor avg_backward_4d(const Tensor& gy, const PoolGeometry& g) {
  Tensor gx = detail::make_tensor({gy.size(0), gy.size(1), g.height, g.width}, gy.dtype());
  const Tensor gc = gy.contiguous();
  detail::dispatch_float(gy.dtype(), "avg_pool2d_backward", [&]<typename T>() {
    kernels::call<kernels::AvgPoolBackward<T>>(gc.data<T>(), gx.data<T>(), g);
  });
  if (needs_grad(gy))
    record(gx, "avg_pool2d_backward", {gy},
           [g](const Tensor& g2) -> Grads { return {avg_forward_4d(g2, g)}; });
  return gx;
}

// [out, in] matrix whose row i averages [floor(i in / out), ceil((i + 1) in / out)).
Tensor adaptive_matrix(int64_t in, int64_t out, DType dtype) {
  std::vector<double> m(static_cast<size_t>(in * out), 0.0);
  for (int64_t i = 0; i < out; ++i) {
    const int64_t s = (i * in) / out, e = ((i + 1) * in + out - 1) / out;
    for (int64_t j = s; j < e; ++j) m[i * in + j] = 1.0 / static_cast<double>(e - s);
  }
  return soma::tensor(m, {out, in}).to(dtype);
}

// y = A_h x A_w^T over the last two dims of a 4-D x: A_h [oh, H], A_w [ow, W].
Tensor separable(const Tensor& x, const Tensor& ah, const Tensor& aw) {
  const Tensor t = soma::matmul(x, soma::t(aw));  // [N, C, H, ow]
  return soma::transpose(soma::matmul(soma::transpose(t, 2, 3), soma::t(ah)), 2,
                         3);  // [.., oh, ow]
}

std::pair<int64_t, int64_t> adaptive_size(const std::vector<int64_t>& output_size, const char* op) {
  auto [oh, ow] = pair_of(output_size, op, "output_size");
  SOMA_CHECK(oh >= 0 && ow >= 0, op, ": output_size must be non-negative, got ", output_size);
  return {oh, ow};
}

std::tuple<Tensor, Tensor> adaptive_max_4d(const Tensor& x, int64_t oh, int64_t ow) {
  PoolGeometry g{};
  g.planes = x.size(0) * x.size(1);
  g.height = x.size(2), g.width = x.size(3), g.oh = oh, g.ow = ow;
  Tensor y = detail::make_tensor({x.size(0), x.size(1), oh, ow}, x.dtype());
  Tensor idx = detail::make_tensor({x.size(0), x.size(1), oh, ow}, kInt64);
  const Tensor xc = x.contiguous();
  detail::dispatch_float(x.dtype(), "adaptive_max_pool2d", [&]<typename T>() {
    kernels::call<kernels::AdaptiveMaxPoolForward<T>>(xc.data<T>(), y.data<T>(),
                                                      idx.data<int64_t>(), g);
  });
  if (needs_grad(x))
    record(y, "adaptive_max_pool2d", {x},
           [idx, g](const Tensor& gy) -> Grads { return {scatter_planes(gy, idx, g)}; });
  return {y, idx};
}

}  // namespace

// ---- max pooling -------------------------------------------------------------------------------
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input,
                                                   const std::vector<int64_t>& kernel_size,
                                                   const std::vector<int64_t>& stride,
                                                   const std::vector<int64_t>& padding,
                                                   const std::vector<int64_t>& dilation,
                                                   bool ceil_mode) {
  const char* op = "max_pool2d";
  check_input(input, op, 2);
  const Window w = window(kernel_size, stride, padding, dilation, op);
  bool unbatched = false;
  const Tensor x = batched(input, 2, unbatched);
  auto [y, idx] = max_pool_4d(x, geometry(x, w, ceil_mode, op), op);
  return {unbatch(y, 2, unbatched), unbatch(idx, 2, unbatched)};
}

static Tensor max_pool2d_untraced(const Tensor& input, const std::vector<int64_t>& kernel_size,
                                  const std::vector<int64_t>& stride,
                                  const std::vector<int64_t>& padding,
                                  const std::vector<int64_t>& dilation, bool ceil_mode) {
  return std::get<0>(
      max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode));
}

Tensor max_pool2d(const Tensor& input, const std::vector<int64_t>& kernel_size,
                  const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                  const std::vector<int64_t>& dilation, bool ceil_mode) {
  trace::Scope ts;
  Tensor out = max_pool2d_untraced(input, kernel_size, stride, padding, dilation, ceil_mode);
  if (ts)
    ts.record("max_pool2d", {input}, out,
              {{"kernel_size", kernel_size},
               {"stride", stride},
               {"padding", padding},
               {"dilation", dilation},
               {"ceil_mode", int64_t{ceil_mode}}});
  return out;
}

std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, int64_t kernel_size,
                                                   int64_t stride, int64_t padding,
                                                   int64_t dilation, bool ceil_mode) {
  const char* op = "max_pool1d";
  check_input(input, op, 1);
  const Window w = window({1, kernel_size}, {1, stride == 0 ? kernel_size : stride}, {0, padding},
                          {1, dilation}, op);
  bool unbatched = false;
  const Tensor x = batched(input, 1, unbatched);
  auto [y, idx] = max_pool_4d(x, geometry(x, w, ceil_mode, op), op);
  return {unbatch(y, 1, unbatched), unbatch(idx, 1, unbatched)};
}

Tensor max_pool1d(const Tensor& input, int64_t kernel_size, int64_t stride, int64_t padding,
                  int64_t dilation, bool ceil_mode) {
  return std::get<0>(
      max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode));
}

// ---- average pooling ---------------------------------------------------------------------------
static Tensor avg_pool2d_untraced(const Tensor& input, const std::vector<int64_t>& kernel_size,
                                  const std::vector<int64_t>& stride,
                                  const std::vector<int64_t>& padding, bool ceil_mode,
                                  bool count_include_pad, std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d";
  check_input(input, op, 2);
  SOMA_CHECK(!divisor_override || *divisor_override != 0, op, ": divisor must be not zero");
  const Window w = window(kernel_size, stride, padding, {1}, op);
  bool unbatched = false;
  const Tensor x = batched(input, 2, unbatched);
  PoolGeometry g = geometry(x, w, ceil_mode, op);
  g.count_include_pad = count_include_pad;
  g.divisor = divisor_override.value_or(0);
  return unbatch(avg_forward_4d(x, g), 2, unbatched);
}

Tensor avg_pool2d(const Tensor& input, const std::vector<int64_t>& kernel_size,
                  const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  trace::Scope ts;
  Tensor out = avg_pool2d_untraced(input, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override);
  if (ts)
    ts.record("avg_pool2d", {input}, out,
              {{"kernel_size", kernel_size},
               {"stride", stride},
               {"padding", padding},
               {"ceil_mode", int64_t{ceil_mode}},
               {"count_include_pad", int64_t{count_include_pad}},
               {"divisor_override", divisor_override.value_or(0)}});
  return out;
}

Tensor avg_pool1d(const Tensor& input, int64_t kernel_size, int64_t stride, int64_t padding,
                  bool ceil_mode, bool count_include_pad) {
  const char* op = "avg_pool1d";
  check_input(input, op, 1);
  const Window w =
      window({1, kernel_size}, {1, stride == 0 ? kernel_size : stride}, {0, padding}, {1}, op);
  bool unbatched = false;
  const Tensor x = batched(input, 1, unbatched);
  PoolGeometry g = geometry(x, w, ceil_mode, op);
  g.count_include_pad = count_include_pad;
  return unbatch(avg_forward_4d(x, g), 1, unbatched);
}

// ---- adaptive pooling --------------------------------------------------------------------------
static Tensor adaptive_avg_pool2d_untraced(const Tensor& input,
                                           const std::vector<int64_t>& output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_input(input, op, 2);
  const auto [oh, ow] = adaptive_size(output_size, op);
  bool unbatched = false;
  const Tensor x = batched(input, 2, unbatched);
  const Tensor y = separable(x, adaptive_matrix(x.size(2), oh, x.dtype()),
                             adaptive_matrix(x.size(3), ow, x.dtype()));
  return unbatch(y, 2, unbatched);
}

Tensor adaptive_avg_pool2d(const Tensor& input, const std::vector<int64_t>& output_size) {
  trace::Scope ts;
  Tensor out = adaptive_avg_pool2d_untraced(input, output_size);
  if (ts) ts.record("adaptive_avg_pool2d", {input}, out, {{"output_size", output_size}});
  return out;
}

Tensor adaptive_avg_pool1d(const Tensor& input, int64_t output_size) {
  const char* op = "adaptive_avg_pool1d";
  check_input(input, op, 1);
  SOMA_CHECK(output_size >= 0, op, ": output_size must be non-negative, got ", output_size);
  return soma::matmul(input, soma::t(adaptive_matrix(input.size(-1), output_size, input.dtype())));
}

std::tuple<Tensor, Tensor> adaptive_max_pool2d_with_indices(
    const Tensor& input, const std::vector<int64_t>& output_size) {
  const char* op = "adaptive_max_pool2d";
  check_input(input, op, 2);
  const auto [oh, ow] = adaptive_size(output_size, op);
  bool unbatched = false;
  const Tensor x = batched(input, 2, unbatched);
  auto [y, idx] = adaptive_max_4d(x, oh, ow);
  return {unbatch(y, 2, unbatched), unbatch(idx, 2, unbatched)};
}

Tensor adaptive_max_pool2d(const Tensor& input, const std::vector<int64_t>& output_size) {
  return std::get<0>(adaptive_max_pool2d_with_indices(input, output_size));
}

Tensor adaptive_max_pool1d(const Tensor& input, int64_t output_size) {
  const char* op = "adaptive_max_pool1d";
  check_input(input, op, 1);
  SOMA_CHECK(output_size >= 0, op, ": output_size must be non-negative, got ", output_size);
  bool unbatched = false;
  const Tensor x = batched(input, 1, unbatched);
  return unbatch(std::get<0>(adaptive_max_4d(x, 1, output_size)), 1, unbatched);
}

// ---- interpolate -------------------------------------------------------------------------------
namespace {

// torch's nearest_idx (legacy "nearest"), in float like torch.
Tensor nearest_index(int64_t in, int64_t out, std::optional<double> scale) {
  std::vector<int64_t> idx(static_cast<size_t>(out));
  const float s = scale && *scale > 0.0 ? static_cast<float>(1.0 / *scale)
                                        : static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) {
    if (out == in)
      idx[o] = o;
    else if (out == 2 * in)
      idx[o] = o >> 1;
    else
      idx[o] = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * s)), in - 1);
  }
  return soma::tensor(idx);
}

// [out, in] matrix of torch's linear interpolation weights, computed in T like torch.
template <typename T>
Tensor linear_matrix(int64_t in, int64_t out, bool align_corners, std::optional<double> scale) {
  std::vector<T> m(static_cast<size_t>(in * out), T(0));
  T ratio;
  if (align_corners)
    ratio = out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
  else
    ratio = scale && *scale > 0.0 ? static_cast<T>(1.0 / *scale)
                                  : static_cast<T>(in) / static_cast<T>(out);
  for (int64_t o = 0; o < out; ++o) {
    if (in == out) {
      m[o * in + o] = T(1);
      continue;
    }
    T real =
        align_corners ? ratio * static_cast<T>(o) : ratio * (static_cast<T>(o) + T(0.5)) - T(0.5);
    if (!align_corners && real < T(0)) real = T(0);
    const int64_t i0 = static_cast<int64_t>(real);
    const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
    const T l1 = std::min(std::max(real - static_cast<T>(i0), T(0)), T(1));
    const T l0 = T(1) - l1;
    m[o * in + i0] += l0;
    m[o * in + i1] += l1;
  }
  return soma::tensor(m, {out, in});
}

}  // namespace

Tensor interpolate(const Tensor& input, const InterpolateOptions& options) {
  const char* op = "interpolate";
  SOMA_CHECK(input.defined(), op, ": called with an undefined tensor");
  const std::string& mode = options.mode_;
  SOMA_CHECK(mode == "nearest" || mode == "bilinear", op, ": unsupported mode \"", mode,
             "\" (nearest or bilinear)");
  SOMA_CHECK(mode != "nearest" || !options.align_corners_.has_value(), op,
             ": align_corners option can only be set with the interpolating modes: linear | ",
             "bilinear | bicubic | trilinear");
  SOMA_CHECK(!(options.size_.empty() && options.scale_factor_.empty()), op,
             ": either size or scale_factor should be defined");
  SOMA_CHECK(options.size_.empty() || options.scale_factor_.empty(), op,
             ": only one of size or scale_factor should be defined");
  SOMA_CHECK(is_floating(input.dtype()), op, ": \"upsample_", mode, "2d\" not implemented for ",
             input.dtype(), " (float32 and float64 only)");
  const int64_t spatial = input.dim() - 2;
  SOMA_CHECK(spatial == 2 || (spatial == 1 && mode == "nearest"), op, ": Got ", input.dim(),
             "D input, but ", mode, " mode needs ", mode == "nearest" ? "3D or 4D" : "4D",
             " input (", input.shape(), ")");
  for (int64_t d = 1; d < input.dim(); ++d)
    SOMA_CHECK(input.size(d) > 0, op, ": Input and output sizes should be greater than 0, but ",
               "got input ", input.shape());
  const size_t nd = static_cast<size_t>(spatial);
  std::vector<int64_t> out(nd);
  std::vector<std::optional<double>> scales(nd);
  if (!options.size_.empty()) {
    SOMA_CHECK(options.size_.size() == 1 || options.size_.size() == nd, op, ": size shape must ",
               "match input shape. Input is ", spatial, "D, size is ", options.size_.size());
    for (size_t i = 0; i < nd; ++i) out[i] = options.size_[options.size_.size() == 1 ? 0 : i];
  } else {
    SOMA_CHECK(options.scale_factor_.size() == 1 || options.scale_factor_.size() == nd, op,
               ": scale_factor shape must match input shape. Input is ", spatial,
               "D, scale_factor is ", options.scale_factor_.size());
    for (size_t i = 0; i < nd; ++i) {
      const double f = options.scale_factor_[options.scale_factor_.size() == 1 ? 0 : i];
      scales[i] = f;
      out[i] = static_cast<int64_t>(
          std::floor(static_cast<double>(input.size(2 + static_cast<int64_t>(i))) * f));
    }
  }
  for (size_t i = 0; i < nd; ++i)
    SOMA_CHECK(out[i] > 0, op, ": Input and output sizes should be greater than 0, but got ",
               "input ", input.shape(), " and output size ", out);
  if (mode == "nearest") {
    Tensor y = input;
    for (size_t i = 0; i < nd; ++i) {
      const int64_t d = 2 + static_cast<int64_t>(i);
      y = soma::index_select(y, d, nearest_index(input.size(d), out[i], scales[i]));
    }
    return y;
  }
  const bool align = options.align_corners_.value_or(false);
  return detail::dispatch_float(input.dtype(), op, [&]<typename T>() {
    return separable(input, linear_matrix<T>(input.size(2), out[0], align, scales[0]),
                     linear_matrix<T>(input.size(3), out[1], align, scales[1]));
  });
}

// ---- dropout2d ---------------------------------------------------------------------------------
Tensor dropout2d(const Tensor& input, double p, bool training) {
  SOMA_CHECK(p >= 0.0 && p <= 1.0, "dropout2d: dropout probability has to be between 0 and 1, ",
             "but got ", p);
  SOMA_CHECK(input.defined(), "dropout2d: called with an undefined tensor");
  SOMA_CHECK(input.dim() >= 2, "dropout2d: expected an input with at least 2 dims ([N, C, ...]), ",
             "got ", input.shape());
  if (!training || p == 0.0) return input;
  SOMA_CHECK(is_floating(input.dtype()), "dropout2d: expected a floating-point tensor, got ",
             input.dtype());
  Shape mask_shape(static_cast<size_t>(input.dim()), 1);
  mask_shape[0] = input.size(0);
  mask_shape[1] = input.size(1);
  Tensor mask = empty(mask_shape, input.dtype());
  if (p == 1.0) {
    mask.zero_();
  } else {
    mask.bernoulli_(1.0 - p);
    mask = mask * (1.0 / (1.0 - p));
  }
  return input * mask;
}

}  // namespace soma::nn::functional
