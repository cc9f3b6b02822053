// Softmax and log-softmax along the middle dim of a contiguous [outer, n, inner] buffer
// (internal). Stable: the row maximum is subtracted before exp, so logits of +-1000 are fine.
//   softmax:      y_k = exp(x_k - m) / sum_j exp(x_j - m)
//   log_softmax:  y_k = x_k - m - log sum_j exp(x_j - m)
// Backward (g = dL/dy):
//   softmax:      dx_k = y_k (g_k - sum_j g_j y_j)
//   log_softmax:  dx_k = g_k - exp(y_k) sum_j g_j
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

template <typename T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);

template <typename T>
void softmax_backward(const T* y, const T* g, T* dx, int64_t outer, int64_t n, int64_t inner,
                      bool log);

/// Plain-loop reference (long double) for tests.
template <typename T>
void softmax_reference(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);

template <typename T>
void softmax_backward_reference(const T* y, const T* g, T* dx, int64_t outer, int64_t n,
                                int64_t inner, bool log);

}  // namespace soma::kernels::cpu
