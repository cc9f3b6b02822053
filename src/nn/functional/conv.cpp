// nn::functional::conv1d / conv2d / conv_transpose1d / conv_transpose2d. Three differentiable
// ops on 4-d NCHW tensors, each running one kernel (kernels/cpu/conv.h), close under
// differentiation:
//   conv(x, w)   -> dx = conv_t(gy, w),  dw = wgrad(x, gy)         (+ db = sum gy over N, H, W)
//   conv_t(gy, w) -> d gy = conv(G, w),  dw = wgrad(G, gy)
//   wgrad(x, gy) -> dx = conv_t(gy, G),  d gy = conv(x, G)
// so gradients of any order are built from the same three kernels. A 1-d convolution is a 2-d
// one with height 1; reflect/replicate/circular padding is F::pad before a padding-0 conv (the
// modules do that, as torch).
#include "soma/nn/conv.h"

#include <string>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "ops/trace.h"
#include "soma/core/autocast.h"
#include "soma/core/error.h"
#include "soma/nn/functional.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/reduce.h"
#include "soma/ops/shape.h"

namespace soma::nn::functional {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

namespace {

// stride, padding, dilation and groups of one convolution (2-d; a 1-d one has height 1).
struct Params {
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  bool bf16 = false;  // soma::autocast was on at the forward: every product of it in bfloat16
};

kernels::cpu::ConvGeometry geometry(const Params& p, int64_t n, int64_t c_in, int64_t h, int64_t w,
                                    const Tensor& weight, int64_t oh, int64_t ow) {
  kernels::cpu::ConvGeometry g;
  g.n = n, g.c_in = c_in, g.h = h, g.w = w;
  g.c_out = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3);
  g.sh = p.sh, g.sw = p.sw, g.ph = p.ph, g.pw = p.pw, g.dh = p.dh, g.dw = p.dw;
  g.groups = p.groups, g.oh = oh, g.ow = ow;
  g.bf16 = p.bf16;
  return g;
}

Tensor conv_op(const Tensor& x, const Tensor& w, const Tensor& b, const Params& p, int64_t oh,
               int64_t ow);
Tensor conv_t_op(const Tensor& gy, const Tensor& w, const Params& p, int64_t h, int64_t wd);
Tensor wgrad_op(const Tensor& x, const Tensor& gy, const Params& p, int64_t kh, int64_t kw,
                Tensor* bias_grad = nullptr);

// y [N, C_out, oh, ow] = conv(x [N, C_in, H, W], w [C_out, C_in / groups, kh, kw]) + b
Tensor conv_op(const Tensor& x, const Tensor& w, const Tensor& b, const Params& p, int64_t oh,
               int64_t ow) {
  const auto g = geometry(p, x.size(0), x.size(1), x.size(2), x.size(3), w, oh, ow);
  Tensor out = empty({g.n, g.c_out, oh, ow}, x.dtype());
  const Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous();
  const Tensor bc = b.defined() ? b.detach().contiguous() : Tensor();
  detail::dispatch_float(x.dtype(), "conv2d", [&]<typename T>() {
    kernels::call<kernels::ConvForward<T>>(xc.data<T>(), wc.data<T>(),
                                           bc.defined() ? bc.data<T>() : nullptr, out.data<T>(), g);
  });
  if (needs_grad(x, w, b)) {
    const int64_t h = x.size(2), wd = x.size(3), kh = w.size(2), kw = w.size(3);
    record(out, "conv2d", {x, w, b},
           [x, w, p, h, wd, kh, kw, rx = x.requires_grad(), rw = w.requires_grad(),
            rb = b.defined() && b.requires_grad()](const Tensor& gy) -> Grads {
             Tensor dx, dw, db;
             if (rx) dx = conv_t_op(gy, w, p, h, wd);
             // A first-order float32/64 backward takes the bias gradient from the weight
             // gradient's kernel (a sum over gy as it reads it). Under create_graph it is a
             // recorded sum, and under autocast too: the kernel would sum the bfloat16 gy.
             const bool fused_bias = rb && rw && !p.bf16 && !autograd::is_grad_enabled();
             if (rw) dw = wgrad_op(x, gy, p, kh, kw, fused_bias ? &db : nullptr);
             if (rb && !fused_bias) db = soma::sum(gy, std::vector<int64_t>{0, 2, 3});
             return {dx, dw, db};
           });
  }
  return out;
}

// gx [N, C_in, h, wd] = conv's adjoint in x applied to gy [N, C_out, oh, ow]
Tensor conv_t_op(const Tensor& gy, const Tensor& w, const Params& p, int64_t h, int64_t wd) {
  const int64_t c_in = w.size(1) * p.groups;
  const auto g = geometry(p, gy.size(0), c_in, h, wd, w, gy.size(2), gy.size(3));
  Tensor out = empty({g.n, c_in, h, wd}, gy.dtype());
  const Tensor gc = gy.detach().contiguous(), wc = w.detach().contiguous();
  detail::dispatch_float(gy.dtype(), "conv_transpose2d", [&]<typename T>() {
    kernels::call<kernels::ConvBackwardInput<T>>(gc.data<T>(), wc.data<T>(), out.data<T>(), g);
  });
  if (needs_grad(gy, w)) {
    const int64_t kh = w.size(2), kw = w.size(3), oh = gy.size(2), ow = gy.size(3);
    record(out, "conv_transpose2d", {gy, w},
           [gy, w, p, kh, kw, oh, ow, rg = gy.requires_grad(),
            rw = w.requires_grad()](const Tensor& G) -> Grads {
             Tensor dg, dw;
             if (rg) dg = conv_op(G, w, Tensor(), p, oh, ow);
             if (rw) dw = wgrad_op(G, gy, p, kh, kw);
             return {dg, dw};
           });
  }
  return out;
}

// gw [C_out, C_in / groups, kh, kw] = conv's adjoint in w: correlation of x and gy; with
// bias_grad (outside create_graph only: it is not recorded), also the sums of gy over N, oh, ow.
Tensor wgrad_op(const Tensor& x, const Tensor& gy, const Params& p, int64_t kh, int64_t kw,
                Tensor* bias_grad) {
  const int64_t c_out = gy.size(1), c_in = x.size(1);
  kernels::cpu::ConvGeometry g;
  g.n = x.size(0), g.c_in = c_in, g.h = x.size(2), g.w = x.size(3);
  g.c_out = c_out, g.kh = kh, g.kw = kw;
  g.sh = p.sh, g.sw = p.sw, g.ph = p.ph, g.pw = p.pw, g.dh = p.dh, g.dw = p.dw;
  g.groups = p.groups, g.oh = gy.size(2), g.ow = gy.size(3);
  g.bf16 = p.bf16;
  Tensor out = empty({c_out, c_in / p.groups, kh, kw}, x.dtype());
  const Tensor xc = x.detach().contiguous(), gc = gy.detach().contiguous();
  if (bias_grad) *bias_grad = empty({c_out}, x.dtype());
  detail::dispatch_float(x.dtype(), "conv2d weight gradient", [&]<typename T>() {
    kernels::call<kernels::ConvBackwardWeight<T>>(xc.data<T>(), gc.data<T>(), out.data<T>(),
                                                  bias_grad ? bias_grad->data<T>() : nullptr, g);
  });
  if (needs_grad(x, gy)) {
    const int64_t h = x.size(2), wd = x.size(3), oh = gy.size(2), ow = gy.size(3);
    record(out, "conv2d_weight_grad", {x, gy},
           [x, gy, p, h, wd, oh, ow, rx = x.requires_grad(),
            rg = gy.requires_grad()](const Tensor& G) -> Grads {
             Tensor dx, dg;
             if (rx) dx = conv_t_op(gy, G, p, h, wd);
             if (rg) dg = conv_op(x, G, Tensor(), p, oh, ow);
             return {dx, dg};
           });
  }
  return out;
}

// ---- argument checks ----------------------------------------------------------------------------
std::pair<int64_t, int64_t> pair_of(const std::vector<int64_t>& v, const char* op, const char* what,
                                    int64_t dims) {
  SOMA_CHECK(v.size() == 1 || static_cast<int64_t>(v.size()) == dims, op, ": ", what,
             " must hold 1 or ", dims, " values, got ", v);
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

void check_tensors(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias) {
  SOMA_CHECK(input.defined() && weight.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(is_floating(input.dtype()), op, ": \"", op, "\" is not implemented for ",
             input.dtype(), " (float32 and float64 only)");
  SOMA_CHECK(input.dtype() == weight.dtype(), op, ": Input type (", input.dtype(),
             ") and weight type (", weight.dtype(), ") should be the same");
  if (bias.defined())
    SOMA_CHECK(bias.dtype() == input.dtype(), op, ": Input type (", input.dtype(),
               ") and bias type (", bias.dtype(), ") should be the same");
}

// Parses stride / padding / dilation for a `dims`-d op (1 or 2) into 2-d Params.
Params params(const char* op, int64_t dims, const std::vector<int64_t>& stride,
              const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation,
              int64_t groups) {
  Params p;
  p.bf16 = is_autocast_enabled();  // float32 only: the kernels ignore it for float64
  auto [s0, s1] = pair_of(stride, op, "stride", dims);
  auto [p0, p1] = pair_of(padding, op, "padding", dims);
  auto [d0, d1] = pair_of(dilation, op, "dilation", dims);
  SOMA_CHECK(s0 > 0 && s1 > 0, op, ": non-positive stride is not supported (stride ", stride, ")");
  SOMA_CHECK(p0 >= 0 && p1 >= 0, op, ": negative padding is not supported (padding ", padding, ")");
  SOMA_CHECK(d0 > 0 && d1 > 0, op, ": dilation should be greater than zero (dilation ", dilation,
             ")");
  SOMA_CHECK(groups > 0, op, ": non-positive groups is not supported (groups ", groups, ")");
  if (dims == 1) {
    p.sw = s0, p.pw = p0, p.dw = d0;
  } else {
    p.sh = s0, p.sw = s1, p.ph = p0, p.pw = p1, p.dh = d0, p.dw = d1;
  }
  p.groups = groups;
  return p;
}

// conv of a batched 4-d input (1-d ops pass [N, C, 1, L] and a [C_out, C_in/g, 1, k] weight).
// `shown` is the caller's input shape for messages.
Tensor conv_checked(const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                    const Params& p, const Shape& shown, const Shape& wshown) {
  const int64_t groups = p.groups;
  SOMA_CHECK(w.size(0) >= groups && w.size(0) % groups == 0, op, ": Given groups=", groups,
             ", expected weight to be divisible by ", groups, " at dimension 0, but got weight of ",
             "size ", wshown, " instead");
  SOMA_CHECK(x.size(1) == w.size(1) * groups, op, ": Given groups=", groups, ", weight of size ",
             wshown, ", expected input", shown, " to have ", w.size(1) * groups,
             " channels, but got ", x.size(1), " channels instead",
             shown.size() == wshown.size() - 1
                 ? std::string(" (a ") + std::to_string(shown.size()) +
                       "-d input is one unbatched sample [C, ...]; add the batch dimension)"
                 : std::string());
  if (b.defined())
    SOMA_CHECK(b.dim() == 1 && b.size(0) == w.size(0), op, ": Given weight of size ", wshown,
               ", expected bias to be 1-dimensional with ", w.size(0), " elements, but got bias ",
               "of size ", b.shape(), " instead");
  const int64_t ph = x.size(2) + 2 * p.ph, pw = x.size(3) + 2 * p.pw;
  const int64_t eh = p.dh * (w.size(2) - 1) + 1, ew = p.dw * (w.size(3) - 1) + 1;
  SOMA_CHECK(
      ph >= eh && pw >= ew, op, ": Calculated padded input size per channel: (",
      wshown.size() == 3 ? std::to_string(pw) : std::to_string(ph) + " x " + std::to_string(pw),
      "). Kernel size: (",
      wshown.size() == 3 ? std::to_string(ew) : std::to_string(eh) + " x " + std::to_string(ew),
      "). Kernel size can't be greater than actual input size (input ", shown, ", weight ", wshown,
      ")");
  const int64_t oh = (ph - eh) / p.sh + 1, ow = (pw - ew) / p.sw + 1;
  return conv_op(x, w, b, p, oh, ow);
}

// The padding of a "same" convolution along one dim: (before, after).
std::pair<int64_t, int64_t> same_pad(int64_t k, int64_t d) {
  const int64_t total = d * (k - 1);
  return {total / 2, total - total / 2};
}

// The checks and reshapes every conv entry point shares: a (dims + 2)-d weight, a (dims + 1)-d
// (unbatched) or (dims + 2)-d input, both viewed as 2-d (a 1-d conv is a 2-d one of height 1)
// and batched. `weight_layout` names the weight's dims in the error.
struct NdView {
  Tensor x, w;
  bool unbatched;
};
NdView nd_view(const char* op, int64_t dims, const Tensor& input, const Tensor& weight,
               const char* weight_layout) {
  SOMA_CHECK(weight.dim() == dims + 2, op, ": expected a ", dims + 2, "-d weight [", weight_layout,
             ", ", dims == 1 ? "k" : "kh, kw", "], got weight of size ", weight.shape());
  SOMA_CHECK(input.dim() == dims + 1 || input.dim() == dims + 2, op, ": Expected ", dims + 1,
             "D (unbatched) or ", dims + 2, "D (batched) input to ", op,
             ", but got input of size: ", input.shape());
  NdView v{input, weight, input.dim() == dims + 1};
  if (v.unbatched) v.x = soma::unsqueeze(input, 0);
  if (dims == 1) {
    v.x = soma::unsqueeze(v.x, 2);
    v.w = soma::unsqueeze(weight, 2);
  }
  return v;
}

// The result of a conv on an nd_view, back in the caller's dims.
Tensor nd_result(int64_t dims, const NdView& v, Tensor y) {
  if (dims == 1) y = soma::squeeze(y, 2);
  return v.unbatched ? soma::squeeze(y, 0) : y;
}

Tensor conv_nd(const char* op, int64_t dims, const Tensor& input, const Tensor& weight,
               const Tensor& bias, const Params& p) {
  check_tensors(op, input, weight, bias);
  const NdView v = nd_view(op, dims, input, weight, "out_channels, in_channels / groups");
  return nd_result(dims, v, conv_checked(op, v.x, v.w, bias, p, input.shape(), weight.shape()));
}

Tensor conv_nd_str(const char* op, int64_t dims, const Tensor& input, const Tensor& weight,
                   const Tensor& bias, const std::vector<int64_t>& stride, std::string_view padding,
                   const std::vector<int64_t>& dilation, int64_t groups) {
  if (padding == "valid")
    return conv_nd(op, dims, input, weight, bias, params(op, dims, stride, {0}, dilation, groups));
  SOMA_CHECK(padding == "same", op, ": Invalid padding string '", std::string(padding),
             "' (expected 'same' or 'valid')");
  Params p = params(op, dims, stride, {0}, dilation, groups);
  SOMA_CHECK(p.sh == 1 && p.sw == 1, op, ": padding='same' is not supported for strided ",
             "convolutions (stride ", stride, ")");
  check_tensors(op, input, weight, bias);
  SOMA_CHECK(weight.dim() == dims + 2, op, ": expected a ", dims + 2, "-d weight, got weight of ",
             "size ", weight.shape());
  // the symmetric part as conv padding; an odd total pads the input's end by one first
  std::vector<int64_t> extra;  // F::pad order: last dim first
  bool asymmetric = false;
  for (int64_t i = dims - 1; i >= 0; --i) {
    const int64_t k = weight.size(2 + i), d = i == dims - 1 ? p.dw : p.dh;
    const auto [before, after] = same_pad(k, d);
    extra.push_back(0);
    extra.push_back(after - before);
    asymmetric = asymmetric || after != before;
    (i == dims - 1 ? p.pw : p.ph) = before;
  }
  const Tensor x = asymmetric ? pad(input, extra) : input;
  return conv_nd(op, dims, x, weight, bias, p);
}

Tensor conv_transpose_nd(const char* op, int64_t dims, const Tensor& input, const Tensor& weight,
                         const Tensor& bias, const std::vector<int64_t>& stride,
                         const std::vector<int64_t>& padding,
                         const std::vector<int64_t>& output_padding, int64_t groups,
                         const std::vector<int64_t>& dilation) {
  check_tensors(op, input, weight, bias);
  const Params p = params(op, dims, stride, padding, dilation, groups);
  auto [op0, op1] = pair_of(output_padding, op, "output_padding", dims);
  const int64_t oph = dims == 1 ? 0 : op0, opw = dims == 1 ? op0 : op1;
  SOMA_CHECK(oph >= 0 && opw >= 0, op, ": negative output_padding is not supported ",
             "(output_padding ", output_padding, ")");
  SOMA_CHECK((oph < p.sh || oph < p.dh) && (opw < p.sw || opw < p.dw), op,
             ": output padding must be smaller than either stride or dilation, but got ",
             "output_padding ", output_padding, ", stride ", stride, ", dilation ", dilation);
  const NdView v = nd_view(op, dims, input, weight, "in_channels, out_channels / groups");
  const Tensor& x = v.x;
  const Tensor& w = v.w;
  SOMA_CHECK(w.size(0) >= groups && w.size(0) % groups == 0, op, ": Given groups=", groups,
             ", expected weight to be divisible by ", groups, " at dimension 0, but got weight of ",
             "size ", weight.shape(), " instead");
  SOMA_CHECK(x.size(1) == w.size(0), op, ": Given transposed=1, weight of size ", weight.shape(),
             ", expected input", input.shape(), " to have ", w.size(0), " channels, but got ",
             x.size(1), " channels instead");
  const int64_t c_out = w.size(1) * groups;
  if (bias.defined())
    SOMA_CHECK(bias.dim() == 1 && bias.size(0) == c_out, op, ": Given transposed=1, weight of ",
               "size ", weight.shape(), ", expected bias to be 1-dimensional with ", c_out,
               " elements, but got bias of size ", bias.shape(), " instead");
  const int64_t h = (x.size(2) - 1) * p.sh - 2 * p.ph + p.dh * (w.size(2) - 1) + oph + 1;
  const int64_t wd = (x.size(3) - 1) * p.sw - 2 * p.pw + p.dw * (w.size(3) - 1) + opw + 1;
  SOMA_CHECK(h > 0 && wd > 0, op, ": Given input size per channel ", input.shape(),
             ", the calculated output size per channel (",
             dims == 1 ? std::to_string(wd) : std::to_string(h) + " x " + std::to_string(wd),
             ") is too small");
  Tensor y = conv_t_op(x, w, p, h, wd);
  if (bias.defined()) y = y + soma::reshape(bias, {1, c_out, 1, 1});
  return nd_result(dims, v, y);
}

}  // namespace

static Tensor conv2d_untraced(const Tensor& input, const Tensor& weight, const Tensor& bias,
                              const std::vector<int64_t>& stride,
                              const std::vector<int64_t>& padding,
                              const std::vector<int64_t>& dilation, int64_t groups) {
  return conv_nd("conv2d", 2, input, weight, bias,
                 params("conv2d", 2, stride, padding, dilation, groups));
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
              const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
              const std::vector<int64_t>& dilation, int64_t groups) {
  trace::Scope ts;
  Tensor out = conv2d_untraced(input, weight, bias, stride, padding, dilation, groups);
  if (ts)
    ts.record(
        "conv2d", {input, weight, bias}, out,
        {{"stride", stride}, {"padding", padding}, {"dilation", dilation}, {"groups", groups}});
  return out;
}

static Tensor conv1d_untraced(const Tensor& input, const Tensor& weight, const Tensor& bias,
                              const std::vector<int64_t>& stride,
                              const std::vector<int64_t>& padding,
                              const std::vector<int64_t>& dilation, int64_t groups) {
  return conv_nd("conv1d", 1, input, weight, bias,
                 params("conv1d", 1, stride, padding, dilation, groups));
}

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias,
              const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
              const std::vector<int64_t>& dilation, int64_t groups) {
  trace::Scope ts;
  Tensor out = conv1d_untraced(input, weight, bias, stride, padding, dilation, groups);
  if (ts)
    ts.record(
        "conv1d", {input, weight, bias}, out,
        {{"stride", stride}, {"padding", padding}, {"dilation", dilation}, {"groups", groups}});
  return out;
}

static Tensor conv_transpose2d_untraced(const Tensor& input, const Tensor& weight,
                                        const Tensor& bias, const std::vector<int64_t>& stride,
                                        const std::vector<int64_t>& padding,
                                        const std::vector<int64_t>& output_padding, int64_t groups,
                                        const std::vector<int64_t>& dilation) {
  return conv_transpose_nd("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation);
}

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                        const std::vector<int64_t>& output_padding, int64_t groups,
                        const std::vector<int64_t>& dilation) {
  trace::Scope ts;
  Tensor out = conv_transpose2d_untraced(input, weight, bias, stride, padding, output_padding,
                                         groups, dilation);
  if (ts)
    ts.record("conv_transpose2d", {input, weight, bias}, out,
              {{"stride", stride},
               {"padding", padding},
               {"output_padding", output_padding},
               {"groups", groups},
               {"dilation", dilation}});
  return out;
}

Tensor conv_transpose1d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                        const std::vector<int64_t>& output_padding, int64_t groups,
                        const std::vector<int64_t>& dilation) {
  return conv_transpose_nd("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation);
}

}  // namespace soma::nn::functional

namespace soma::detail {

Tensor conv2d_str(const Tensor& input, const Tensor& weight, const Tensor& bias,
                  const std::vector<int64_t>& stride, std::string_view padding,
                  const std::vector<int64_t>& dilation, int64_t groups) {
  return nn::functional::conv_nd_str("conv2d", 2, input, weight, bias, stride, padding, dilation,
                                     groups);
}

Tensor conv1d_str(const Tensor& input, const Tensor& weight, const Tensor& bias,
                  const std::vector<int64_t>& stride, std::string_view padding,
                  const std::vector<int64_t>& dilation, int64_t groups) {
  return nn::functional::conv_nd_str("conv1d", 1, input, weight, bias, stride, padding, dilation,
                                     groups);
}

}  // namespace soma::detail
