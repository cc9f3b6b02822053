#include "kernels/cpu/reduce.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu/loop.h"
#include "kernels/cpu/parallel.h"

namespace soma::kernels::cpu {
namespace {

template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;

bool parallel(int64_t work, int64_t tasks) {
  return tasks > 1 && work >= kParallelGrain && num_threads() > 1;
}

// Sums n contiguous values: 16 lanes in T over blocks of 1024 (vectorised), blocks combined in
// Acc (double for floats), so the error stays at a few ulps for any n.
template <typename T>
Acc<T> sum_contiguous(const T* x, int64_t n) {
  constexpr int kLanes = 16;
  constexpr int64_t kBlock = 1024;
  Acc<T> total = 0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    T lanes[kLanes] = {};
    int64_t k = b;
    for (; k + kLanes <= e; k += kLanes)
      for (int j = 0; j < kLanes; ++j) lanes[j] += x[k + j];
    Acc<T> s = 0;
    for (; k < e; ++k) s += x[k];
    for (int j = 0; j < kLanes; ++j) s += lanes[j];
    total += s;
  }
  return total;
}

}  // namespace

template <typename T>
void sum_dim(const T* x, T* out, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1 && outer == 1) {
    // One long row: a fixed split into kParts parts summed in order, so the result does not
    // depend on the number of threads.
    constexpr int kParts = 64;
    Acc<T> part[kParts];
    const int64_t step = (n + kParts - 1) / kParts;
#pragma omp parallel for num_threads(num_threads()) if (parallel(n, kParts))
    for (int p = 0; p < kParts; ++p) {
      const int64_t b = std::min(n, p * step), e = std::min(n, b + step);
      part[p] = sum_contiguous(x + b, e - b);
    }
    Acc<T> total = 0;
    for (int p = 0; p < kParts; ++p) total += part[p];
    out[0] = static_cast<T>(total);
    return;
  }
  if (inner == 1) {
#pragma omp parallel for num_threads(num_threads()) if (parallel(outer * n, outer))
    for (int64_t o = 0; o < outer; ++o) out[o] = static_cast<T>(sum_contiguous(x + o * n, n));
    return;
  }
  // Columns: chunks of kCols outputs; rows accumulate in T for kRows rows (vectorised across the
  // chunk), then flush into Acc.
  constexpr int64_t kCols = 256, kRows = 64;
  const int64_t chunks = (inner + kCols - 1) / kCols;
#pragma omp parallel for collapse(2) \
    num_threads(num_threads()) if (parallel(outer * n * inner, outer * chunks))
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t i0 = c * kCols, w = std::min(kCols, inner - i0);
      Acc<T> acc[kCols] = {};
      for (int64_t k0 = 0; k0 < n; k0 += kRows) {
        T part[kCols] = {};
        const int64_t k1 = std::min(n, k0 + kRows);
        for (int64_t k = k0; k < k1; ++k) {
          const T* row = x + (o * n + k) * inner + i0;
          for (int64_t i = 0; i < w; ++i) part[i] += row[i];
        }
        for (int64_t i = 0; i < w; ++i) acc[i] += part[i];
      }
      for (int64_t i = 0; i < w; ++i) out[o * inner + i0 + i] = static_cast<T>(acc[i]);
    }
  }
}

template <typename T>
void extremum_dim(const T* x, T* values, int64_t* indices, int64_t outer, int64_t n, int64_t inner,
                  bool is_max) {
#pragma omp parallel for num_threads(num_threads()) if (parallel(outer * n * inner, outer))
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

template <typename T>
void extremum_dim_reference(const T* x, T* values, int64_t* indices, int64_t outer, int64_t n,
                            int64_t inner, bool is_max) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t arg = 0;
      for (int64_t k = 1; k < n; ++k) {
        const T v = x[(o * n + k) * inner + i], best = x[(o * n + arg) * inner + i];
        if (best != best) break;  // NaN found first: it stays
        if (v != v || (is_max ? v > best : v < best)) arg = k;
      }
      values[o * inner + i] = x[(o * n + arg) * inner + i];
      indices[o * inner + i] = arg;
    }
}

#define SOMA_INSTANTIATE(T)                                                               \
  template void sum_dim<T>(const T*, T*, int64_t, int64_t, int64_t);                      \
  template void extremum_dim<T>(const T*, T*, int64_t*, int64_t, int64_t, int64_t, bool); \
  template void sum_dim_reference<T>(const T*, T*, int64_t, int64_t, int64_t);            \
  template void extremum_dim_reference<T>(const T*, T*, int64_t*, int64_t, int64_t, int64_t, bool);
SOMA_INSTANTIATE(float)
SOMA_INSTANTIATE(double)
SOMA_INSTANTIATE(int64_t)
#undef SOMA_INSTANTIATE

}  // namespace soma::kernels::cpu
