#include "kernels/cpu/loop.h"

#include "kernels/cpu/parallel.h"

namespace soma::kernels::cpu {

template <int K>
void for_each_row(const StridedLoop<K>& loop, RowFn f) {
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

  parallel_team(loop.numel >= loop.grain, [&](int64_t tid, int64_t nt) {
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

template <int K>
void for_each_element(const StridedLoop<K>& loop, RowFn f) {
  if (loop.numel == 0) return;
  const int nd = static_cast<int>(loop.sizes.size());
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  std::array<int64_t, K> off{}, one{};
  for (int64_t e = 0; e < loop.numel; ++e) {
    for (int k = 0; k < K; ++k) {
      off[k] = 0;
      for (int d = 0; d < nd; ++d) off[k] += idx[d] * loop.strides[k][d];
      one[k] = loop.strides[k][nd - 1];
    }
    f(off.data(), 1, one.data());
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < loop.sizes[d]) break;
      idx[d] = 0;
    }
  }
}

template void for_each_row<1>(const StridedLoop<1>&, RowFn);
template void for_each_row<2>(const StridedLoop<2>&, RowFn);
template void for_each_row<3>(const StridedLoop<3>&, RowFn);
template void for_each_row<4>(const StridedLoop<4>&, RowFn);
template void for_each_element<1>(const StridedLoop<1>&, RowFn);
template void for_each_element<2>(const StridedLoop<2>&, RowFn);
template void for_each_element<3>(const StridedLoop<3>&, RowFn);
template void for_each_element<4>(const StridedLoop<4>&, RowFn);

}  // namespace soma::kernels::cpu
