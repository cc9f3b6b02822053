// Pooling loops (internal): max and average pooling over contiguous [planes, height, width]
// images (planes = N * C) into contiguous [planes, oh, ow] outputs, and their adjoints. The fast
// versions split the planes over threads and run the innermost loop along an output row; the
// references visit one output at a time on one thread.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

struct PoolGeometry {
  int64_t planes, height, width;  // input
  int64_t oh, ow;                 // output
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool count_include_pad = true;  // average pooling: padded cells count in the divisor
  int64_t divisor = 0;            // average pooling: divisor_override when non-zero
};

/// y[p, oy, ox] = max over the (dilated) window, idx = its flat position iy * width + ix in the
/// plane; the first maximum in row-major window order wins, a NaN wins (torch's rule).
template <typename T>
void max_pool_forward(const T* x, T* y, int64_t* idx, const PoolGeometry& g);
template <typename T>
void max_pool_forward_reference(const T* x, T* y, int64_t* idx, const PoolGeometry& g);

/// gx[p, idx[p, o]] += gy[p, o] over a gx that the kernel zero-fills first (the adjoint of
/// gathering at idx; serves max pooling and adaptive max pooling). g is the forward's geometry
/// and idx its indices: with 2x2 stride-2 windows (no overlap) the cpu version writes each gx
/// element once instead of zero-filling and scattering.
template <typename T>
void max_pool_backward(const T* gy, const int64_t* idx, T* gx, const PoolGeometry& g);
template <typename T>
void max_pool_backward_reference(const T* gy, const int64_t* idx, T* gx, const PoolGeometry& g);

/// y = window sum / divisor (torch's avg_pool2d: divisor_override, else the window's size
/// clipped to the padded input (count_include_pad) or to the input).
template <typename T>
void avg_pool_forward(const T* x, T* y, const PoolGeometry& g);
template <typename T>
void avg_pool_forward_reference(const T* x, T* y, const PoolGeometry& g);
/// The adjoint of avg_pool_forward; gx is zero-filled by the kernel first.
template <typename T>
void avg_pool_backward(const T* gy, T* gx, const PoolGeometry& g);
template <typename T>
void avg_pool_backward_reference(const T* gy, T* gx, const PoolGeometry& g);

/// Adaptive max pooling: output cell (oy, ox) covers rows [floor(oy H / oh), ceil((oy + 1) H /
/// oh)) and the same for columns (only planes, height, width, oh, ow of g are read).
template <typename T>
void adaptive_max_pool_forward(const T* x, T* y, int64_t* idx, const PoolGeometry& g);
template <typename T>
void adaptive_max_pool_forward_reference(const T* x, T* y, int64_t* idx, const PoolGeometry& g);

}  // namespace soma::kernels::cpu
