// Normalisation kernels (internal): the loops under nn::functional::batch_norm, layer_norm and
// group_norm. Buffers are contiguous; x is viewed as [A, C, B] (a "channel" c owns the A * B
// elements x[a, c, b]):
//   batch_norm  A = N, C = channels, B = spatial size
//   layer_norm  A = 1, C = rows (leading dims), B = normalized size
//   group_norm  A = 1, C = N * groups, B = (channels / groups) * spatial size
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

/// Per channel c: mean[c] and the biased variance var[c] of x[:, c, :] (one pass over shifted
/// values, accumulated in double). A * B must be > 0.
template <typename T>
void norm_stats(const T* x, int64_t A, int64_t C, int64_t B, T* mean, T* var);
/// y[a, c, b] = (x[a, c, b] - mean[c]) * scale[c] + shift[c] (centred first, so that a large
/// mean does not cancel in float32). y may be x.
template <typename T>
void norm_affine(const T* x, T* y, int64_t A, int64_t C, int64_t B, const T* mean, const T* scale,
                 const T* shift);
/// Layer norm rows: y[m, k] = (x[m, k] - mean[m]) * rstd[m] * w[k] + b[k] (w, b may be null).
template <typename T>
void layer_norm_apply(const T* x, T* y, int64_t M, int64_t K, const T* mean, const T* rstd,
                      const T* w, const T* b);
/// Per channel c: sum_dy[c] = sum dy[:, c, :], sum_dyx[c] = sum dy[:, c, :] * (x[:, c, :] -
/// mean[c]).
template <typename T>
void norm_backward_reduce(const T* dy, const T* x, int64_t A, int64_t C, int64_t B, const T* mean,
                          T* sum_dy, T* sum_dyx);
/// dx[a, c, b] = dy[a, c, b] * k1[c] + (x[a, c, b] - mean[c]) * k2[c] + k3[c].
template <typename T>
void norm_backward_apply(const T* dy, const T* x, T* dx, int64_t A, int64_t C, int64_t B,
                         const T* mean, const T* k1, const T* k2, const T* k3);

/// One element at a time on one thread, long double accumulation: what the fast kernels are
/// tested against.
template <typename T>
void norm_stats_reference(const T* x, int64_t A, int64_t C, int64_t B, T* mean, T* var);
template <typename T>
void norm_affine_reference(const T* x, T* y, int64_t A, int64_t C, int64_t B, const T* mean,
                           const T* scale, const T* shift);
template <typename T>
void layer_norm_apply_reference(const T* x, T* y, int64_t M, int64_t K, const T* mean,
                                const T* rstd, const T* w, const T* b);
template <typename T>
void norm_backward_reduce_reference(const T* dy, const T* x, int64_t A, int64_t C, int64_t B,
                                    const T* mean, T* sum_dy, T* sum_dyx);
template <typename T>
void norm_backward_apply_reference(const T* dy, const T* x, T* dx, int64_t A, int64_t C, int64_t B,
                                   const T* mean, const T* k1, const T* k2, const T* k3);

}  // namespace soma::kernels::cpu
