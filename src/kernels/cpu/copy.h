// Strided copy with dtype conversion (internal).
#pragma once

#include "soma/core/tensor.h"

namespace soma::kernels::cpu {

/// dst[i] = convert(src[i]) for every index; shapes must be equal (broadcast src beforehand
/// with stride-0 views). Works for any strides and any pair of dtypes.
void copy(Tensor& dst, const Tensor& src);
/// Element by element in index order, one thread, no merged dims (the "reference" backend).
void copy_reference(Tensor& dst, const Tensor& src);

/// out[o, j, :] = x[o, idx[j], :]: rows of row_bytes bytes, x contiguous [outer, size, row],
/// out [outer, m, row] (index_select's gather; indices already checked).
void gather_rows(const char* x, char* out, int64_t outer, int64_t size, const int64_t* idx,
                 int64_t m, int64_t row_bytes);
void gather_rows_reference(const char* x, char* out, int64_t outer, int64_t size,
                           const int64_t* idx, int64_t m, int64_t row_bytes);

}  // namespace soma::kernels::cpu
