#include "kernels/cpu/shape.h"

#include <algorithm>

#include "kernels/cpu/parallel.h"

namespace soma::kernels::cpu {

template <typename T>
void index_add_rows(const T* src, T* dst, int64_t outer, int64_t size, const int64_t* idx,
                    int64_t m, int64_t inner) {
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, m * inner));
  // each thread owns whole outer slices, so repeated indices never race
  parallel_for(outer, grain, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t j = 0; j < m; ++j) {
        T* row = dst + (o * size + idx[j]) * inner;
        const T* srow = src + (o * m + j) * inner;
        for (int64_t i = 0; i < inner; ++i) row[i] += srow[i];
      }
  });
}

template <typename T>
void index_add_rows_reference(const T* src, T* dst, int64_t outer, int64_t size, const int64_t* idx,
                              int64_t m, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < inner; ++i)
        dst[(o * size + idx[j]) * inner + i] += src[(o * m + j) * inner + i];
}

#define SOMA_INSTANTIATE_INDEX_ADD(T)                                                       \
  template void index_add_rows<T>(const T*, T*, int64_t, int64_t, const int64_t*, int64_t,  \
                                  int64_t);                                                 \
  template void index_add_rows_reference<T>(const T*, T*, int64_t, int64_t, const int64_t*, \
                                            int64_t, int64_t);
SOMA_INSTANTIATE_INDEX_ADD(float)
SOMA_INSTANTIATE_INDEX_ADD(double)
#undef SOMA_INSTANTIATE_INDEX_ADD

}  // namespace soma::kernels::cpu
