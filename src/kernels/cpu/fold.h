// im2col and col2im (internal): the loops of nn::functional::unfold and fold. An image buffer
// is contiguous [planes, height, width] (planes = N * C); a column buffer is contiguous
// [planes, kh * kw, oh * ow], i.e. [N, C * kh * kw, L] for the batch.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

struct FoldGeometry {
  int64_t planes, height, width;           // image
  int64_t kh, kw, dh, dw, ph, pw, sh, sw;  // kernel, dilation, padding, stride
  int64_t oh, ow;                          // number of block positions along each spatial dim
};

/// cols[p, i * kw + j, y * ow + x] = image[p, y sh - ph + i dh, x sw - pw + j dw] (0 outside).
template <typename T>
void im2col(const T* image, T* cols, const FoldGeometry& g);
/// image (zero-filled by the caller) += the adjoint: each column entry added to its pixel.
template <typename T>
void col2im(const T* cols, T* image, const FoldGeometry& g);

/// One element at a time on one thread.
template <typename T>
void im2col_reference(const T* image, T* cols, const FoldGeometry& g);
template <typename T>
void col2im_reference(const T* cols, T* image, const FoldGeometry& g);

}  // namespace soma::kernels::cpu
