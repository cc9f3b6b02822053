// Strided copy with dtype conversion (internal).
#pragma once

#include "soma/core/tensor.h"

namespace soma::kernels::cpu {

/// dst[i] = convert(src[i]) for every index; shapes must be equal (broadcast src beforehand
/// with stride-0 views). Works for any strides and any pair of dtypes.
void copy(Tensor& dst, const Tensor& src);

}  // namespace soma::kernels::cpu
