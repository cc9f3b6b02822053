#include "kernels/cpu/vector.h"

#include <cmath>
#include <cstring>
#include <type_traits>

namespace soma::kernels::cpu {

template <typename T>
void scaled_copy(T* __restrict dst, const T* __restrict src, int64_t n, T scale) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = scale * src[i];
}

template <typename T>
void add_into(T* __restrict dst, const T* __restrict src, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// Tests the exponent bits (all ones: inf or NaN) with an integer OR, which vectorises, instead
// of a branch per element.
template <typename T>
void all_finite(const T* x, int64_t n, bool* finite) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr Bits kExp =
      sizeof(T) == 4 ? static_cast<Bits>(0x7f800000u) : static_cast<Bits>(0x7ff0000000000000ull);
  Bits bad = 0;
#pragma omp simd reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, x + i, sizeof(T));
    bad |= static_cast<Bits>((b & kExp) == kExp);
  }
  *finite = bad == 0;
}

template <typename T>
void scaled_copy_reference(T* dst, const T* src, int64_t n, T scale) {
  for (int64_t i = 0; i < n; ++i) dst[i] = scale * src[i];
}
template <typename T>
void add_into_reference(T* dst, const T* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}
template <typename T>
void all_finite_reference(const T* x, int64_t n, bool* finite) {
  *finite = true;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) *finite = false;
}

#define SOMA_INSTANTIATE(T)                                         \
  template void scaled_copy<T>(T*, const T*, int64_t, T);           \
  template void add_into<T>(T*, const T*, int64_t);                 \
  template void all_finite<T>(const T*, int64_t, bool*);            \
  template void scaled_copy_reference<T>(T*, const T*, int64_t, T); \
  template void add_into_reference<T>(T*, const T*, int64_t);       \
  template void all_finite_reference<T>(const T*, int64_t, bool*);
SOMA_INSTANTIATE(float)
SOMA_INSTANTIATE(double)
#undef SOMA_INSTANTIATE

}  // namespace soma::kernels::cpu
