// Small contiguous vector kernels (internal): gradient-bucket packing for dist/ and the
// finiteness check of the training loop.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

/// dst[i] = scale * src[i], i < n.
template <typename T>
void scaled_copy(T* dst, const T* src, int64_t n, T scale);
/// dst[i] += src[i], i < n.
template <typename T>
void add_into(T* dst, const T* src, int64_t n);
/// *finite = no element of x[0, n) is inf or NaN.
template <typename T>
void all_finite(const T* x, int64_t n, bool* finite);

template <typename T>
void scaled_copy_reference(T* dst, const T* src, int64_t n, T scale);
template <typename T>
void add_into_reference(T* dst, const T* src, int64_t n);
template <typename T>
void all_finite_reference(const T* x, int64_t n, bool* finite);

}  // namespace soma::kernels::cpu
