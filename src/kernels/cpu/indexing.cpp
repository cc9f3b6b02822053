// take / put over contiguous buffers (the loops under every indexing op, ops/indexing.cpp).
// take runs in parallel (each output element is independent); put runs in index order on one
// thread, so repeated positions give the same result (last write, or the sum in order) for any
// thread count.
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/parallel.h"
#include "kernels/kernels.h"

namespace soma::kernels::cpu {

template <typename T>
void take_flat(const T* x, const int64_t* lin, T* out, int64_t n) {
  parallel_for(n, kParallelGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = x[lin[i]];
  });
}

template <typename T>
void take_flat_reference(const T* x, const int64_t* lin, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[lin[i]];
}

template <typename T>
void put_flat(T* out, const int64_t* lin, const T* v, int64_t n, bool accumulate) {
  if (!accumulate) {
    for (int64_t i = 0; i < n; ++i) out[lin[i]] = v[i];
  } else if constexpr (std::is_same_v<T, bool>) {
    for (int64_t i = 0; i < n; ++i) out[lin[i]] = out[lin[i]] || v[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[lin[i]] += v[i];
  }
}

template <typename T>
void put_flat_reference(T* out, const int64_t* lin, const T* v, int64_t n, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) {
    T& o = out[lin[i]];
    if (!accumulate)
      o = v[i];
    else if constexpr (std::is_same_v<T, bool>)
      o = o || v[i];
    else
      o = static_cast<T>(o + v[i]);
  }
}

#define SOMA_INDEXING_INSTANTIATE(T)                                           \
  template void take_flat<T>(const T*, const int64_t*, T*, int64_t);           \
  template void take_flat_reference<T>(const T*, const int64_t*, T*, int64_t); \
  template void put_flat<T>(T*, const int64_t*, const T*, int64_t, bool);      \
  template void put_flat_reference<T>(T*, const int64_t*, const T*, int64_t, bool);
SOMA_INDEXING_INSTANTIATE(float)
SOMA_INDEXING_INSTANTIATE(double)
SOMA_INDEXING_INSTANTIATE(int64_t)
SOMA_INDEXING_INSTANTIATE(bool)
SOMA_INDEXING_INSTANTIATE(uint8_t)
SOMA_INDEXING_INSTANTIATE(int8_t)
SOMA_INDEXING_INSTANTIATE(int32_t)
SOMA_INDEXING_INSTANTIATE(BFloat16)
SOMA_INDEXING_INSTANTIATE(Half)
#undef SOMA_INDEXING_INSTANTIATE

}  // namespace soma::kernels::cpu
