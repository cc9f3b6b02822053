// soma::from_blob: a tensor over memory soma did not allocate (libtorch's torch::from_blob).
//
// The tensor reads and writes the caller's buffer in place: a write through the tensor (or any
// view of it) shows in the buffer, and a write to the buffer shows in the tensor. Nothing is
// copied. With a deleter, soma owns the buffer: the deleter runs exactly once, on `data`, when
// the last tensor sharing the memory dies (views, detach(), tensors autograd saved for backward
// and the tensor handles the optimizer keeps all count). Without one, the caller keeps the
// memory alive for as long as any such tensor exists. The memory never enters soma's caching
// allocator and does not count in soma::memory_stats().
//
//   std::vector<double> buf(12);                 // 3 x 4, row-major, owned by the caller
//   soma::Tensor t = soma::from_blob(buf.data(), {3, 4}, soma::kFloat64);
//   t.mul_(2.0);                                 // doubles buf in place
//
//   // Column 1..2 of a row-major 3 x 4 buffer (row pitch 4), owned by soma from now on:
//   float* p = new float[12]();
//   soma::Tensor cols = soma::from_blob(p + 1, {3, 2}, {4, 1},
//                                       [p](void*) { delete[] p; });
//
// Requirements, each checked (a violation throws soma::Error naming from_blob and the values;
// when from_blob throws, the deleter is not called and the caller still owns the buffer):
//   - sizes >= 0; strides, when given, one per dimension and >= 0 where the size is > 1 (a
//     negative one is an error: copy such an array, e.g. NumPy's a[::-1], before wrapping it).
//     Strides may be 0 (a broadcast read-only view: an in-place write to it throws) or leave gaps
//     (a row pitch).
//   - `data` non-null when the tensor has elements, and aligned to the element size (4 bytes
//     for float32, 8 for float64/int64); any stronger alignment is not needed.
//   - the addressed extent, (sum over dims of (size - 1) * stride + 1) * element size, fits in
//     int64.
// The deleter must not throw, and runs on whichever thread drops the last reference (a Python
// binding takes the GIL in it). soma's version counter sees writes made through tensors only: a
// write to the raw buffer while autograd holds the tensor for backward goes unnoticed (as in
// PyTorch). An optimizer needs contiguous parameters (it rejects others when constructed).
#pragma once

#include <functional>

#include "soma/core/dtype.h"
#include "soma/core/tensor.h"

namespace soma {

/// Called with the data pointer when the last tensor over a from_blob buffer dies.
using Deleter = std::function<void(void*)>;

/// A tensor over `data` with the given shape and strides (in elements), owned through
/// `deleter` (an empty deleter: the caller owns the memory).
Tensor from_blob(void* data, const Shape& shape, const Shape& strides, Deleter deleter,
                 DType dtype = kFloat32);
/// As above, not owned: the caller keeps `data` alive while any tensor over it exists.
Tensor from_blob(void* data, const Shape& shape, const Shape& strides, DType dtype = kFloat32);
/// Row-major (contiguous) strides, owned through `deleter`.
Tensor from_blob(void* data, const Shape& shape, Deleter deleter, DType dtype = kFloat32);
/// Row-major (contiguous) strides, not owned.
Tensor from_blob(void* data, const Shape& shape, DType dtype = kFloat32);

/// The other direction: t's memory handed to code outside soma (a NumPy array, a DLPack
/// consumer), whose writes soma cannot see. While a share is open (begin_external_share without
/// its end_external_share yet) caches that soma keys by a storage's write counter (nn::Linear's
/// packed weight) are not used, and one built before the share is rebuilt after it.
/// mark_shared_externally opens a share that never ends (a raw address kept for writing).
/// Tensors from from_blob count as shared already.
void begin_external_share(const Tensor& t);
void end_external_share(const Tensor& t);
void mark_shared_externally(const Tensor& t);

}  // namespace soma
