// Reductions along one dimension of a contiguous buffer viewed as [outer, n, inner] (internal).
// Floating-point sums add 16 lanes in T over short blocks and combine the blocks in double, so
// the error stays at a few ulps for any n; results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

/// out[o, i] = sum_k x[o, k, i]
template <typename T>
void sum_dim(const T* x, T* out, int64_t outer, int64_t n, int64_t inner);

/// values[o, i] = max_k (or min_k) x[o, k, i], indices[o, i] = the first k attaining it
/// (NaN counts as the maximum and the minimum, like PyTorch). n >= 1.
template <typename T>
void extremum_dim(const T* x, T* values, int64_t* indices, int64_t outer, int64_t n, int64_t inner,
                  bool is_max);

/// Plain-loop references for tests.
template <typename T>
void sum_dim_reference(const T* x, T* out, int64_t outer, int64_t n, int64_t inner);
template <typename T>
void extremum_dim_reference(const T* x, T* values, int64_t* indices, int64_t outer, int64_t n,
                            int64_t inner, bool is_max);

}  // namespace soma::kernels::cpu
