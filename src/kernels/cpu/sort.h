// Scans and sorts along one dimension of a contiguous buffer viewed as [outer, n, inner]
// (internal; toolkit: reductions, sorting).
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

/// out[o, k, i] = x[o, 0, i] (+ or *) ... x[o, k, i]; reverse: x[o, k, i] ... x[o, n - 1, i].
template <typename T>
void scan_dim(const T* x, T* out, int64_t outer, int64_t n, int64_t inner, bool reverse,
              bool product);
/// indices[o, :, i] = the stable order of x[o, :, i] (ascending or descending; NaN is the
/// largest value).
template <typename T>
void sort_dim(const T* x, int64_t* indices, int64_t outer, int64_t n, int64_t inner,
              bool descending);

/// Plain-loop references for tests (an insertion sort, stable).
template <typename T>
void scan_dim_reference(const T* x, T* out, int64_t outer, int64_t n, int64_t inner, bool reverse,
                        bool product);
template <typename T>
void sort_dim_reference(const T* x, int64_t* indices, int64_t outer, int64_t n, int64_t inner,
                        bool descending);

}  // namespace soma::kernels::cpu
