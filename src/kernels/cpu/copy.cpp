#include "kernels/cpu/copy.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/convert.h"
#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "kernels/cpu/loop.h"
#include "kernels/cpu/parallel.h"

namespace soma::kernels::cpu {

void copy(Tensor& dst, const Tensor& src) {
  auto loop = make_loop<2>(dst.shape(), {&dst.strides(), &src.strides()});
  detail::dispatch_all(dst.dtype(), [&]<typename D>() {
    detail::dispatch_all(src.dtype(), [&]<typename S>() {
      D* out = reinterpret_cast<D*>(dst.impl()->bytes());
      const S* in = reinterpret_cast<const S*>(src.impl()->bytes());
      for_each_row<2>(loop, [&](const int64_t* off, int64_t n, const int64_t* st) {
        D* o = out + off[0];
        const S* x = in + off[1];
        if constexpr (std::is_same_v<D, S>) {
          if (st[0] == 1 && st[1] == 1) {
            std::memcpy(o, x, static_cast<size_t>(n) * sizeof(D));
            return;
          }
        }
        if (st[0] == 1 && st[1] == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] = detail::convert<D>(x[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i * st[0]] = detail::convert<D>(x[i * st[1]]);
        }
      });
    });
  });
}

void copy_reference(Tensor& dst, const Tensor& src) {
  const int64_t nd = dst.dim(), total = dst.numel();
  detail::dispatch_all(dst.dtype(), [&]<typename D>() {
    detail::dispatch_all(src.dtype(), [&]<typename S>() {
      D* out = reinterpret_cast<D*>(dst.impl()->bytes());
      const S* in = reinterpret_cast<const S*>(src.impl()->bytes());
      std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
      for (int64_t e = 0; e < total; ++e) {
        int64_t od = 0, os = 0;
        for (int64_t d = 0; d < nd; ++d) {
          od += idx[d] * dst.stride(d);
          os += idx[d] * src.stride(d);
        }
        out[od] = detail::convert<D>(in[os]);
        for (int64_t d = nd - 1; d >= 0; --d) {
          if (++idx[d] < dst.size(d)) break;
          idx[d] = 0;
        }
      }
    });
  });
}

void gather_rows(const char* x, char* out, int64_t outer, int64_t size, const int64_t* idx,
                 int64_t m, int64_t row_bytes) {
  const auto bytes = static_cast<size_t>(row_bytes);
  const int64_t rows = outer * m;
  const int64_t grain = std::max<int64_t>(1, kParallelGrain * 4 / std::max<int64_t>(1, row_bytes));
  // Rows picked at random from a large tensor (a DataLoader's batch from its dataset) each miss
  // the caches; the first kPrefetchBytes of the row kAhead rows on are requested while this one
  // is copied, so several rows' misses are in flight at once (MNIST batch of 128 x 784 bytes:
  // ~20 -> ~15 us).
  constexpr int64_t kAhead = 8, kPrefetchBytes = 4096;
  const int64_t prefetch = std::min(row_bytes, kPrefetchBytes);
  const auto row = [&](int64_t r) {
    const int64_t o = r / m, j = r % m;
    return x + (o * size + idx[j]) * row_bytes;
  };
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < std::min(e, b + kAhead); ++r)
      for (int64_t c = 0; c < prefetch; c += 64) __builtin_prefetch(row(r) + c);
    for (int64_t r = b; r < e; ++r) {
      if (r + kAhead < e)
        for (int64_t c = 0; c < prefetch; c += 64) __builtin_prefetch(row(r + kAhead) + c);
      std::memcpy(out + r * row_bytes, row(r), bytes);
    }
  });
}

void gather_rows_reference(const char* x, char* out, int64_t outer, int64_t size,
                           const int64_t* idx, int64_t m, int64_t row_bytes) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t c = 0; c < row_bytes; ++c)
        out[(o * m + j) * row_bytes + c] = x[(o * size + idx[j]) * row_bytes + c];
}

}  // namespace soma::kernels::cpu
