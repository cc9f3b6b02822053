// Strided n-d loops over K operands that share one iteration shape: the engine under every
// elementwise kernel. Operand 0 is usually the output; a broadcast operand has stride 0 in the
// stretched dims. Dims that are contiguous for every operand are merged and size-1 dims are
// dropped, so a contiguous op becomes one flat row that the compiler vectorises.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "kernels/cpu/function_ref.h"
#include "kernels/cpu/parallel.h"
#include "soma/core/tensor.h"

namespace soma::kernels::cpu {

template <int K>
struct StridedLoop {
  std::vector<int64_t> sizes;                   // >= 1 dim, innermost last
  std::array<std::vector<int64_t>, K> strides;  // in elements, per operand
  int64_t numel = 0;
  int64_t grain = kParallelGrain;  // for_each_row runs on one thread below this many elements
};

template <int K>
StridedLoop<K> make_loop(const Shape& shape, const std::array<const Shape*, K>& strides) {
  StridedLoop<K> loop;
  loop.numel = 1;
  for (int64_t s : shape) loop.numel *= s;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !loop.sizes.empty();
    for (int k = 0; k < K && merge; ++k)
      merge = loop.strides[k].back() == (*strides[k])[d] * shape[d];
    if (merge) {
      loop.sizes.back() *= shape[d];
      for (int k = 0; k < K; ++k) loop.strides[k].back() = (*strides[k])[d];
    } else {
      loop.sizes.push_back(shape[d]);
      for (int k = 0; k < K; ++k) loop.strides[k].push_back((*strides[k])[d]);
    }
  }
  if (loop.sizes.empty()) {
    loop.sizes.push_back(1);
    for (int k = 0; k < K; ++k) loop.strides[k].push_back(0);
  }
  return loop;
}

/// What for_each_row calls for each innermost row (or part of a row): f(offsets[K], n,
/// inner_strides[K]), offsets and strides in elements.
using RowFn = FunctionRef<void(const int64_t*, int64_t, const int64_t*)>;

/// Calls f for every innermost row, in parallel when the loop is large (the "cpu" backend).
template <int K>
void for_each_row(const StridedLoop<K>& loop, RowFn f);

/// Calls f for every element, one at a time (n = 1), in row-major order of the unmerged loop,
/// on the calling thread (the "reference" backend).
template <int K>
void for_each_element(const StridedLoop<K>& loop, RowFn f);

}  // namespace soma::kernels::cpu
