// Strided n-d loops over K operands that share one iteration shape: the engine under every
// elementwise kernel. Operand 0 is usually the output; a broadcast operand has stride 0 in the
// stretched dims. Dims that are contiguous for every operand are merged and size-1 dims are
// dropped, so a contiguous op becomes one flat row that the compiler vectorises.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "soma/core/tensor.h"

namespace soma::kernels::cpu {

template <int K>
struct StridedLoop {
  std::vector<int64_t> sizes;                   // >= 1 dim, innermost last
  std::array<std::vector<int64_t>, K> strides;  // in elements, per operand
  int64_t numel = 0;
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

/// Calls f(offsets[K], n, inner_strides[K]) for every innermost row (or part of a row), in
/// parallel when the loop is large. Offsets and strides are in elements.
template <int K, typename F>
void for_each_row(const StridedLoop<K>& loop, F&& f) {
  if (loop.numel == 0) return;
  const int nd = static_cast<int>(loop.sizes.size());
  const int64_t n = loop.sizes[nd - 1];
  int64_t rows = 1;
  for (int d = 0; d < nd - 1; ++d) rows *= loop.sizes[d];
  std::array<int64_t, K> inner;
  for (int k = 0; k < K; ++k) inner[k] = loop.strides[k][nd - 1];

  // Rows [r0, r1), and within each row the elements [c0, c1).
  auto run = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    std::vector<int64_t> idx(nd > 1 ? nd - 1 : 1, 0);
    std::array<int64_t, K> off{};
    int64_t rem = r0;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = rem % loop.sizes[d];
      rem /= loop.sizes[d];
      for (int k = 0; k < K; ++k) off[k] += idx[d] * loop.strides[k][d];
    }
    for (int64_t r = r0; r < r1; ++r) {
      std::array<int64_t, K> o;
      for (int k = 0; k < K; ++k) o[k] = off[k] + c0 * inner[k];
      f(o.data(), c1 - c0, inner.data());
      for (int d = nd - 2; d >= 0; --d) {  // advance the multi-index
        for (int k = 0; k < K; ++k) off[k] += loop.strides[k][d];
        if (++idx[d] < loop.sizes[d]) break;
        for (int k = 0; k < K; ++k) off[k] -= loop.strides[k][d] * loop.sizes[d];
        idx[d] = 0;
      }
    }
  };

  if (loop.numel < kParallelGrain || num_threads() <= 1) {
    run(0, rows, 0, n);
    return;
  }
  parallel_team(true, [&](int64_t tid, int64_t nt) {
    if (rows >= nt) {
      run(rows * tid / nt, rows * (tid + 1) / nt, 0, n);
    } else {
      // Few long rows: every thread takes its share of each row (64-element aligned).
      int64_t c0 = (n * tid / nt) & ~int64_t{63},
              c1 = tid + 1 == nt ? n : (n * (tid + 1) / nt) & ~int64_t{63};
      if (c1 > c0) run(0, rows, c0, c1);
    }
  });
}

}  // namespace soma::kernels::cpu
