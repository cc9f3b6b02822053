// Convolution kernels (internal): the loops under nn::functional::conv1d/conv2d and
// conv_transpose2d. Buffers are contiguous NCHW (a 1-d convolution has height 1, kh 1). Only
// zero padding reaches the kernels: the op pads reflect/replicate/circular inputs first.
//
// Three kernels cover a convolution and its adjoints (each is the others' derivative):
//   forward          y  = conv(x, w) (+ bias)        [n, c_out, oh, ow]
//   backward_input   gx = conv^T(gy, w)              [n, c_in, h, w]     (conv_transpose2d's
//   forward) backward_weight  gw = corr(x, gy), gb = sum gy   [c_out, c_in / groups, kh, kw]
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

struct ConvGeometry {
  int64_t n = 0, c_in = 0, h = 0, w = 0;                   // input x
  int64_t c_out = 0, kh = 1, kw = 1;                       // weight [c_out, c_in / groups, kh, kw]
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;  // stride, zero padding, dilation
  int64_t groups = 1;
  int64_t oh = 0, ow = 0;  // output: (h + 2 ph - dh (kh - 1) - 1) / sh + 1, likewise ow
  bool bf16 = false;       // float32 products in bfloat16 (soma::autocast; the im2col kernels)
};

/// y = conv(x, w) + bias (bias may be null); overwrites y.
template <typename T>
void conv_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g);
/// gx = the adjoint of conv_forward in x, applied to gy; overwrites gx (every element).
template <typename T>
void conv_backward_input(const T* gy, const T* w, T* gx, const ConvGeometry& g);
/// gw = the adjoint in w (overwrites gw); gb[c] = sum of gy over n, oh, ow when gb is not null.
template <typename T>
void conv_backward_weight(const T* x, const T* gy, T* gw, T* gb, const ConvGeometry& g);

/// Direct loops, one output element at a time on one thread: what the fast kernels are
/// tested against.
template <typename T>
void conv_forward_reference(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g);
template <typename T>
void conv_backward_input_reference(const T* gy, const T* w, T* gx, const ConvGeometry& g);
template <typename T>
void conv_backward_weight_reference(const T* x, const T* gy, T* gw, T* gb, const ConvGeometry& g);

}  // namespace soma::kernels::cpu
