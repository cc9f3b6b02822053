// Row scatter-add for the shape ops' backward (internal): index_select's adjoint.
#pragma once

#include <cstdint>

namespace soma::kernels::cpu {

/// dst[o, idx[j], :] += src[o, j, :] for a contiguous src [outer, m, inner] and dst
/// [outer, size, inner]; repeated indices add up. Splits `outer` over threads.
template <typename T>
void index_add_rows(const T* src, T* dst, int64_t outer, int64_t size, const int64_t* idx,
                    int64_t m, int64_t inner);
/// One element at a time on one thread.
template <typename T>
void index_add_rows_reference(const T* src, T* dst, int64_t outer, int64_t size, const int64_t* idx,
                              int64_t m, int64_t inner);

}  // namespace soma::kernels::cpu
