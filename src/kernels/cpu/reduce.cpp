#include "kernels/cpu/reduce.h"

#include <omp.h>

#include <type_traits>
#include <vector>

#include "kernels/cpu/loop.h"

namespace soma::kernels::cpu {
namespace {

template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;

bool parallel(int64_t work, int64_t tasks) {
  return tasks > 1 && work >= kParallelGrain && !omp_in_parallel() && omp_get_max_threads() > 1;
}

}  // namespace

template <typename T>
void sum_dim(const T* x, T* out, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) {
#pragma omp parallel for if (parallel(outer * n, outer))
    for (int64_t o = 0; o < outer; ++o) {
      const T* row = x + o * n;
      // four partial sums break the dependency chain
      Acc<T> s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t k = 0;
      for (; k + 4 <= n; k += 4) {
        s0 += row[k];
        s1 += row[k + 1];
        s2 += row[k + 2];
        s3 += row[k + 3];
      }
      for (; k < n; ++k) s0 += row[k];
      out[o] = static_cast<T>((s0 + s1) + (s2 + s3));
    }
    return;
  }
#pragma omp parallel for if (parallel(outer * n * inner, outer))
  for (int64_t o = 0; o < outer; ++o) {
    std::vector<Acc<T>> acc(static_cast<size_t>(inner), Acc<T>(0));
    for (int64_t k = 0; k < n; ++k) {
      const T* row = x + (o * n + k) * inner;
      for (int64_t i = 0; i < inner; ++i) acc[i] += row[i];
    }
    for (int64_t i = 0; i < inner; ++i) out[o * inner + i] = static_cast<T>(acc[i]);
  }
}

template <typename T>
void extremum_dim(const T* x, T* values, int64_t* indices, int64_t outer, int64_t n, int64_t inner,
                  bool is_max) {
#pragma omp parallel for if (parallel(outer * n * inner, outer))
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* p = x + o * n * inner + i;
      T best = p[0];
      int64_t arg = 0;
      for (int64_t k = 1; k < n && best == best; ++k) {
        const T v = p[k * inner];
        if (v != v || (is_max ? v > best : v < best)) {
          best = v;
          arg = k;
        }
      }
      values[o * inner + i] = best;
      indices[o * inner + i] = arg;
    }
  }
}

template <typename T>
void sum_dim_reference(const T* x, T* out, int64_t outer, int64_t n, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      long double s = 0;
      for (int64_t k = 0; k < n; ++k) s += x[(o * n + k) * inner + i];
      out[o * inner + i] = static_cast<T>(s);
    }
}

#define SOMA_INSTANTIATE(T)                                                               \
  template void sum_dim<T>(const T*, T*, int64_t, int64_t, int64_t);                      \
  template void extremum_dim<T>(const T*, T*, int64_t*, int64_t, int64_t, int64_t, bool); \
  template void sum_dim_reference<T>(const T*, T*, int64_t, int64_t, int64_t);
SOMA_INSTANTIATE(float)
SOMA_INSTANTIATE(double)
SOMA_INSTANTIATE(int64_t)
#undef SOMA_INSTANTIATE

}  // namespace soma::kernels::cpu
