// nn::functional::pad, unfold (im2col) and fold (col2im). pad is composed of differentiable ops
// (narrow, cat, index_select); unfold and fold run the im2col / col2im kernels and are each
// other's backward, so all three are differentiable twice.
#include <string>

#include "autograd/node.h"
#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "kernels/kernels.h"
#include "soma/core/error.h"
#include "soma/nn/functional.h"
#include "soma/ops/shape.h"

namespace soma::nn::functional {

using autograd::Grads;
using autograd::needs_grad;
using autograd::record;

// ---- pad -----------------------------------------------------------------------------------
namespace {

Tensor pad_constant(const Tensor& x, const std::vector<int64_t>& pad, double value) {
  Tensor out = x;
  const int64_t pairs = static_cast<int64_t>(pad.size()) / 2;
  for (int64_t i = 0; i < pairs; ++i) {
    const int64_t d = x.dim() - 1 - i;
    const int64_t left = pad[2 * i], right = pad[2 * i + 1], n = x.size(d);
    SOMA_CHECK(n + left + right >= 0, "pad: The input size ", n, ", plus negative padding ", left,
               " and ", right, " resulted in a negative output size, which is invalid. Check ",
               "dimension ", d, " of your input.");
    const int64_t start = std::max<int64_t>(-left, 0);
    const int64_t stop = std::max<int64_t>(n - std::max<int64_t>(-right, 0), start);
    if (start != 0 || stop != n) out = soma::narrow(out, d, start, stop - start);
    std::vector<Tensor> parts;
    Shape side = out.shape();
    if (left > 0) {
      side[d] = left;
      parts.push_back(full(side, value, x.dtype()));
    }
    parts.push_back(out);
    if (right > 0) {
      side[d] = right;
      parts.push_back(full(side, value, x.dtype()));
    }
    if (parts.size() > 1) out = soma::cat(parts, d);
  }
  if (out.impl()->storage == x.impl()->storage) out = out.clone();
  return out;
}

Tensor pad_indexed(const Tensor& x, const std::vector<int64_t>& pad, bool reflect) {
  const char* mode = reflect ? "reflect" : "replicate";
  const int64_t pairs = static_cast<int64_t>(pad.size()) / 2;
  SOMA_CHECK(pairs >= 1 && pairs <= 3 && (x.dim() == pairs + 1 || x.dim() == pairs + 2),
             "pad: Only 2D, 3D, 4D, 5D padding with non-constant padding are supported for now ",
             "(mode ", mode, ", ", pad.size(), " pad values for an input of shape ", x.shape(),
             "; expected ", pairs + 1, " or ", pairs + 2, " dims)");
  Tensor out = x;
  for (int64_t i = 0; i < pairs; ++i) {
    const int64_t d = x.dim() - 1 - i;
    const int64_t left = pad[2 * i], right = pad[2 * i + 1], n = x.size(d);
    if (reflect)
      SOMA_CHECK(left < n && right < n, "pad: Padding size should be less than the corresponding ",
                 "input dimension, but got: padding (", left, ", ", right, ") at dimension ", d,
                 " of input ", x.shape());
    else
      SOMA_CHECK(n > 0, "pad: replicate padding needs a non-empty dimension ", d, " of input ",
                 x.shape());
    const int64_t size = n + left + right;
    SOMA_CHECK(size >= 1, "pad: input (", x.shape(), ") with padding (", left, ", ", right,
               ") at dimension ", d, " gives an output size of ", size, ", which is too small");
    std::vector<int64_t> idx(static_cast<size_t>(size));
    for (int64_t o = 0; o < size; ++o) {
      int64_t j = o - left;
      if (reflect) {
        if (j < 0) j = -j;
        if (j >= n) j = 2 * (n - 1) - j;
      } else {
        j = std::clamp<int64_t>(j, 0, n - 1);
      }
      idx[o] = j;
    }
    out = soma::index_select(out, d, tensor(idx));
  }
  if (out.impl()->storage == x.impl()->storage) out = out.clone();
  return out;
}

// circular: torch's semantics: negative pads crop first; the positive ones then wrap around the
// (cropped) dimension, at most once (each pad <= that dimension's size).
Tensor pad_circular(const Tensor& x, const std::vector<int64_t>& pad) {
  const int64_t pairs = static_cast<int64_t>(pad.size()) / 2;
  SOMA_CHECK(pairs >= 1 && pairs <= 3 && x.dim() == pairs + 2, "pad: Invalid padding size, ",
             "expected ", 2 * (x.dim() - 2), " but got ", pad.size(), " (mode circular pads the ",
             "last 1, 2 or 3 dims of a 3, 4 or 5 dim [N, C, ...] input; input of shape ", x.shape(),
             ")");
  Tensor out = x;
  for (int64_t i = 0; i < pairs; ++i) {
    const int64_t d = x.dim() - 1 - i;
    const int64_t left = pad[2 * i], right = pad[2 * i + 1], n = x.size(d);
    SOMA_CHECK(left <= n && right <= n, "pad: Padding value causes wrapping around more than ",
               "once (padding (", left, ", ", right, ") at dimension ", d, " of input ", x.shape(),
               ")");
    const int64_t start = std::max<int64_t>(-left, 0);
    const int64_t stop = n - std::max<int64_t>(-right, 0);
    SOMA_CHECK(stop - start >= 1, "pad: input (", x.shape(), ") with padding (", left, ", ", right,
               ") at dimension ", d, " gives an empty output, which is invalid");
    const int64_t m = stop - start, l = std::max<int64_t>(left, 0), r = std::max<int64_t>(right, 0);
    std::vector<int64_t> idx(static_cast<size_t>(m + l + r));
    for (int64_t o = 0; o < m + l + r; ++o) idx[o] = start + ((o - l) % m + m) % m;
    out = soma::index_select(out, d, tensor(idx));
  }
  if (out.impl()->storage == x.impl()->storage) out = out.clone();
  return out;
}

}  // namespace

Tensor pad(const Tensor& input, const std::vector<int64_t>& pad, std::string_view mode,
           double value) {
  SOMA_CHECK(input.defined(), "pad: called with an undefined tensor");
  SOMA_CHECK(pad.size() % 2 == 0, "pad: Padding length must be divisible by 2, got ", pad.size());
  SOMA_CHECK(static_cast<int64_t>(pad.size()) / 2 <= input.dim(),
             "pad: Padding length too large:", " ", pad.size(), " values for an input with ",
             input.dim(), " dims");
  if (mode == "constant") return pad_constant(input, pad, value);
  SOMA_CHECK(value == 0.0, "pad: Padding mode \"", mode, "\" doesn't take in value argument (got ",
             value, ")");
  if (mode == "reflect") return pad_indexed(input, pad, true);
  if (mode == "replicate") return pad_indexed(input, pad, false);
  if (mode == "circular") return pad_circular(input, pad);
  detail::fail("pad: unknown padding mode \"", std::string(mode),
               "\" (expected constant, reflect, replicate or circular)");
}

// ---- unfold / fold ---------------------------------------------------------------------------
namespace {

struct Options {
  int64_t kh, kw, dh, dw, ph, pw, sh, sw;
};

std::pair<int64_t, int64_t> pair_of(const std::vector<int64_t>& v, const char* op,
                                    const char* what) {
  SOMA_CHECK(v.size() == 1 || v.size() == 2, op, ": ", what, " must hold 1 or 2 values, got ", v);
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

Options options(const std::vector<int64_t>& kernel_size, const std::vector<int64_t>& dilation,
                const std::vector<int64_t>& padding, const std::vector<int64_t>& stride,
                const char* op) {
  Options o{};
  std::tie(o.kh, o.kw) = pair_of(kernel_size, op, "kernel_size");
  std::tie(o.dh, o.dw) = pair_of(dilation, op, "dilation");
  std::tie(o.ph, o.pw) = pair_of(padding, op, "padding");
  std::tie(o.sh, o.sw) = pair_of(stride, op, "stride");
  SOMA_CHECK(o.kh > 0 && o.kw > 0, op, ": kernel size should be greater than zero, but got ",
             "kernel_size ", kernel_size);
  SOMA_CHECK(o.dh > 0 && o.dw > 0, op, ": dilation should be greater than zero, but got ",
             "dilation ", dilation);
  SOMA_CHECK(o.ph >= 0 && o.pw >= 0, op, ": padding should be non-negative, but got padding ",
             padding);
  SOMA_CHECK(o.sh > 0 && o.sw > 0, op, ": stride should be greater than zero, but got stride ",
             stride);
  return o;
}

// The geometry for images of height x width; checks that at least one block fits.
kernels::cpu::FoldGeometry geometry(const Options& o, int64_t planes, int64_t height, int64_t width,
                                    const char* op) {
  kernels::cpu::FoldGeometry g{planes, height, width, o.kh, o.kw, o.dh, o.dw,
                               o.ph,   o.pw,   o.sh,  o.sw, 0,    0};
  const int64_t eh = height + 2 * o.ph - o.dh * (o.kh - 1) - 1;
  const int64_t ew = width + 2 * o.pw - o.dw * (o.kw - 1) - 1;
  g.oh = eh >= 0 ? eh / o.sh + 1 : 0;
  g.ow = ew >= 0 ? ew / o.sw + 1 : 0;
  SOMA_CHECK(g.oh >= 1 && g.ow >= 1, op, ": Given input with spatial size (", height, ", ", width,
             "), kernel_size=(", o.kh, ", ", o.kw, "), dilation=(", o.dh, ", ", o.dw,
             "), padding=(", o.ph, ", ", o.pw, "), calculated shape of the array of sliding ",
             "blocks as (", eh >= 0 ? g.oh : eh / o.sh + 1, ", ", ew >= 0 ? g.ow : ew / o.sw + 1,
             "), but its components must be at least one.");
  return g;
}

Tensor im2col(const Tensor& input, const Options& o);
Tensor col2im(const Tensor& input, int64_t height, int64_t width, const Options& o);

// input [N, C, H, W] -> [N, C kh kw, L]
Tensor im2col(const Tensor& input, const Options& o) {
  const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  const kernels::cpu::FoldGeometry g = geometry(o, n * c, h, w, "unfold");
  Tensor out = detail::make_tensor({n, c * o.kh * o.kw, g.oh * g.ow}, input.dtype());
  const Tensor xc = input.contiguous();
  soma::detail::dispatch_float(input.dtype(), "unfold", [&]<typename T>() {
    kernels::call<kernels::Im2Col<T>>(xc.data<T>(), out.data<T>(), g);
  });
  if (needs_grad(input))
    record(out, "unfold", {input},
           [h, w, o](const Tensor& grad) -> Grads { return {col2im(grad, h, w, o)}; });
  return out;
}

// input [N, C kh kw, L] -> [N, C, height, width]
Tensor col2im(const Tensor& input, int64_t height, int64_t width, const Options& o) {
  const int64_t n = input.size(0), c = input.size(1) / (o.kh * o.kw);
  const kernels::cpu::FoldGeometry g = geometry(o, n * c, height, width, "fold");
  SOMA_CHECK(input.size(2) == g.oh * g.ow, "fold: Given output_size=(", height, ", ", width,
             "), kernel_size=(", o.kh, ", ", o.kw, "), dilation=(", o.dh, ", ", o.dw,
             "), padding=(", o.ph, ", ", o.pw, "), stride=(", o.sh, ", ", o.sw,
             "), expected size of input's dimension 2 to match the calculated number of sliding ",
             "blocks ", g.oh, " * ", g.ow, " = ", g.oh * g.ow,
             ", but got input.size(2)=", input.size(2), ".");
  Tensor out = zeros({n, c, height, width}, input.dtype());
  const Tensor xc = input.contiguous();
  soma::detail::dispatch_float(input.dtype(), "fold", [&]<typename T>() {
    kernels::call<kernels::Col2Im<T>>(xc.data<T>(), out.data<T>(), g);
  });
  if (needs_grad(input))
    record(out, "fold", {input}, [o](const Tensor& grad) -> Grads { return {im2col(grad, o)}; });
  return out;
}

void check_float(const Tensor& x, const char* op) {
  SOMA_CHECK(x.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(is_floating(x.dtype()), op, ": \"", op == std::string("unfold") ? "im2col" : "col2im",
             "\" is not implemented for ", x.dtype(), " (float32 and float64 only)");
}

}  // namespace

Tensor unfold(const Tensor& input, const std::vector<int64_t>& kernel_size,
              const std::vector<int64_t>& dilation, const std::vector<int64_t>& padding,
              const std::vector<int64_t>& stride) {
  check_float(input, "unfold");
  const Options o = options(kernel_size, dilation, padding, stride, "unfold");
  SOMA_CHECK(input.dim() == 3 || input.dim() == 4,
             "unfold: Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for ",
             "input, but got: ", input.shape());
  if (input.dim() == 3) return soma::squeeze(im2col(soma::unsqueeze(input, 0), o), 0);
  for (int64_t d = 1; d < 4; ++d)
    SOMA_CHECK(input.size(d) > 0, "unfold: Expected non-zero size for dims 1 to 3 of input, got ",
               input.shape());
  return im2col(input, o);
}

Tensor fold(const Tensor& input, const std::vector<int64_t>& output_size,
            const std::vector<int64_t>& kernel_size, const std::vector<int64_t>& dilation,
            const std::vector<int64_t>& padding, const std::vector<int64_t>& stride) {
  check_float(input, "fold");
  const Options o = options(kernel_size, dilation, padding, stride, "fold");
  const auto [height, width] = pair_of(output_size, "fold", "output_size");
  SOMA_CHECK(height > 0 && width > 0, "fold: output size should be greater than zero, but got ",
             "output_size ", output_size);
  SOMA_CHECK(input.dim() == 2 || input.dim() == 3, "fold: Expected 2D or 3D (batch mode) tensor ",
             "with optional 0 dim batch size for input, but got: ", input.shape());
  if (input.dim() == 2)
    return soma::squeeze(
        fold(soma::unsqueeze(input, 0), output_size, kernel_size, dilation, padding, stride), 0);
  SOMA_CHECK(input.size(1) % (o.kh * o.kw) == 0, "fold: Expected size of input's dimension 1 to ",
             "be divisible by the product of kernel_size, but got input.size(1)=", input.size(1),
             " and kernel_size=(", o.kh, ", ", o.kw, ")");
  return col2im(input, height, width, o);
}

}  // namespace soma::nn::functional
