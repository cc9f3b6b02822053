// Scans and sorts along a dimension (see sort.h). The "cpu" versions run the rows in parallel
// (each row gathered into a contiguous buffer); the references are plain serial loops.
#include "kernels/cpu/sort.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace soma::kernels::cpu {

namespace {

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}

// Strict order: ascending with NaN last, or descending with NaN first.
template <typename T>
bool before(T a, T b, bool descending) {
  if (descending) return (is_nan(a) && !is_nan(b)) || a > b;
  return (!is_nan(a) && is_nan(b)) || a < b;
}

template <typename T>
void scan_row(const T* x, T* out, int64_t n, int64_t inner, bool reverse, bool product) {
  T acc = product ? T(1) : T(0);
  for (int64_t kk = 0; kk < n; ++kk) {
    const int64_t k = reverse ? n - 1 - kk : kk;
    acc = product ? static_cast<T>(acc * x[k * inner]) : static_cast<T>(acc + x[k * inner]);
    out[k * inner] = acc;
  }
}

}  // namespace

template <typename T>
void scan_dim(const T* x, T* out, int64_t outer, int64_t n, int64_t inner, bool reverse,
              bool product) {
  const int64_t rows = outer * inner;
  parallel_for(
      rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t o = r / inner, i = r % inner;
          scan_row(x + o * n * inner + i, out + o * n * inner + i, n, inner, reverse, product);
        }
      });
}

template <typename T>
void sort_dim(const T* x, int64_t* indices, int64_t outer, int64_t n, int64_t inner,
              bool descending) {
  const int64_t rows = outer * inner;
  parallel_for(rows, std::max<int64_t>(1, 1024 / std::max<int64_t>(n, 1)),
               [&](int64_t begin, int64_t end) {
                 std::vector<T> vals(static_cast<size_t>(n));
                 std::vector<int64_t> order(static_cast<size_t>(n));
                 for (int64_t r = begin; r < end; ++r) {
                   const int64_t o = r / inner, i = r % inner;
                   const T* base = x + o * n * inner + i;
                   for (int64_t k = 0; k < n; ++k) vals[k] = base[k * inner];
                   std::iota(order.begin(), order.end(), int64_t{0});
                   std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
                     return before(vals[a], vals[b], descending);
                   });
                   int64_t* out = indices + o * n * inner + i;
                   for (int64_t k = 0; k < n; ++k) out[k * inner] = order[k];
                 }
               });
}

template <typename T>
void scan_dim_reference(const T* x, T* out, int64_t outer, int64_t n, int64_t inner, bool reverse,
                        bool product) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      scan_row(x + o * n * inner + i, out + o * n * inner + i, n, inner, reverse, product);
}

template <typename T>
void sort_dim_reference(const T* x, int64_t* indices, int64_t outer, int64_t n, int64_t inner,
                        bool descending) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* base = x + o * n * inner + i;
      int64_t* out = indices + o * n * inner + i;
      // Insertion sort: an element moves left only past strictly later ones (stable).
      for (int64_t k = 0; k < n; ++k) {
        int64_t j = k;
        while (j > 0 && before(base[k * inner], base[out[(j - 1) * inner] * inner], descending)) {
          out[j * inner] = out[(j - 1) * inner];
          --j;
        }
        out[j * inner] = k;
      }
    }
}

#define SOMA_SORT_INSTANTIATE(T)                                                            \
  template void scan_dim<T>(const T*, T*, int64_t, int64_t, int64_t, bool, bool);           \
  template void sort_dim<T>(const T*, int64_t*, int64_t, int64_t, int64_t, bool);           \
  template void scan_dim_reference<T>(const T*, T*, int64_t, int64_t, int64_t, bool, bool); \
  template void sort_dim_reference<T>(const T*, int64_t*, int64_t, int64_t, int64_t, bool);
SOMA_SORT_INSTANTIATE(float)
SOMA_SORT_INSTANTIATE(double)
SOMA_SORT_INSTANTIATE(int64_t)
SOMA_SORT_INSTANTIATE(bool)
SOMA_SORT_INSTANTIATE(uint8_t)
#undef SOMA_SORT_INSTANTIATE

}  // namespace soma::kernels::cpu
