// Data-pipeline kernels (internal): the loops behind soma::data::transforms, on raw buffers.
//
// All buffers are contiguous and row-major. The loops split over threads with parallel_for
// (kernels/cpu/parallel.h), so a DataLoader worker that holds a ThreadLimit(1) runs them on its
// own thread; every element's value is independent of the split.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

/// x viewed as [outer, channels, inner]:
///   out[o, c, i] = float((double(x[o, c, i]) * scale - mean[c]) / std[c])
/// computed in double and rounded once. For uint8 input with at least 256 elements per channel
/// the formula is evaluated for each channel's 256 byte values and the batch is looked up in
/// that table: the same result.
/// T is float, double, int64_t, bool or uint8_t.
template <typename T>
void normalize(const T* x, float* out, int64_t outer, int64_t channels, int64_t inner, double scale,
               const double* mean, const double* std);

/// Zero-padded crop of each sample: x [n, planes, h, w] -> out [n, planes, oh, ow] with
///   out[k, p, r, c] = x[k, p, r + top[k] - pad, c + left[k] - pad]
/// where that position lies inside x, and 0 (all bytes zero) elsewhere. Elements are
/// elem_size bytes (any dtype); top[k] and left[k] index the padded image.
void pad_crop(const void* x, void* out, int64_t elem_size, int64_t n, int64_t planes, int64_t h,
              int64_t w, int64_t oh, int64_t ow, int64_t pad, const int64_t* top,
              const int64_t* left);

/// Horizontal flip of the samples whose flag is set: x [n, rows, w] -> out [n, rows, w] with
///   out[k, r, c] = flip[k] ? x[k, r, w - 1 - c] : x[k, r, c].
void hflip(const void* x, void* out, int64_t elem_size, int64_t n, int64_t rows, int64_t w,
           const uint8_t* flip);

/// The same three as plain element loops on the calling thread (the "reference" backend).
template <typename T>
void normalize_reference(const T* x, float* out, int64_t outer, int64_t channels, int64_t inner,
                         double scale, const double* mean, const double* std);
void pad_crop_reference(const void* x, void* out, int64_t elem_size, int64_t n, int64_t planes,
                        int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t pad,
                        const int64_t* top, const int64_t* left);
void hflip_reference(const void* x, void* out, int64_t elem_size, int64_t n, int64_t rows,
                     int64_t w, const uint8_t* flip);

}  // namespace soma::kernels::cpu
