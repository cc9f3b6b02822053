// im2col / col2im: the fast versions split the planes over threads and run the innermost loop
// over a contiguous output row; the references visit one element at a time.
#include "kernels/cpu/fold.h"

#include <algorithm>

#include "kernels/cpu/parallel.h"

namespace soma::kernels::cpu {

namespace {

// Calls f(plane, kernel_row k, block_y, block_x_begin..end valid, source row, source x0) for
// every (plane, kernel offset, output row) with its in-bounds x range.
template <typename F>
void for_each_row(const FoldGeometry& g, int64_t p0, int64_t p1, F&& f) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t k = i * g.kw + j;
        for (int64_t y = 0; y < g.oh; ++y) {
          const int64_t iy = y * g.sh - g.ph + i * g.dh;
          const bool row_in = iy >= 0 && iy < g.height;
          f(p, k, y, row_in, iy, j * g.dw - g.pw);
        }
      }
}

}  // namespace

template <typename T>
void im2col(const T* image, T* cols, const FoldGeometry& g) {
  const int64_t L = g.oh * g.ow, K = g.kh * g.kw;
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, K * L));
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    for_each_row(g, p0, p1,
                 [&](int64_t p, int64_t k, int64_t y, bool row_in, int64_t iy, int64_t x0) {
                   T* dst = cols + (p * K + k) * L + y * g.ow;
                   const T* src = image + (p * g.height + iy) * g.width;
                   for (int64_t x = 0; x < g.ow; ++x) {
                     const int64_t ix = x * g.sw + x0;
                     dst[x] = row_in && ix >= 0 && ix < g.width ? src[ix] : T(0);
                   }
                 });
  });
}

template <typename T>
void col2im(const T* cols, T* image, const FoldGeometry& g) {
  const int64_t L = g.oh * g.ow, K = g.kh * g.kw;
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, K * L));
  // each thread owns whole planes, so the accumulation never races
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    for_each_row(g, p0, p1,
                 [&](int64_t p, int64_t k, int64_t y, bool row_in, int64_t iy, int64_t x0) {
                   if (!row_in) return;
                   const T* src = cols + (p * K + k) * L + y * g.ow;
                   T* dst = image + (p * g.height + iy) * g.width;
                   for (int64_t x = 0; x < g.ow; ++x) {
                     const int64_t ix = x * g.sw + x0;
                     if (ix >= 0 && ix < g.width) dst[ix] += src[x];
                   }
                 });
  });
}

template <typename T>
void im2col_reference(const T* image, T* cols, const FoldGeometry& g) {
  const int64_t L = g.oh * g.ow, K = g.kh * g.kw;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t iy = (l / g.ow) * g.sh - g.ph + (k / g.kw) * g.dh;
        const int64_t ix = (l % g.ow) * g.sw - g.pw + (k % g.kw) * g.dw;
        const bool in = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
        cols[(p * K + k) * L + l] = in ? image[(p * g.height + iy) * g.width + ix] : T(0);
      }
}

template <typename T>
void col2im_reference(const T* cols, T* image, const FoldGeometry& g) {
  const int64_t L = g.oh * g.ow, K = g.kh * g.kw;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t l = 0; l < L; ++l) {
        const int64_t iy = (l / g.ow) * g.sh - g.ph + (k / g.kw) * g.dh;
        const int64_t ix = (l % g.ow) * g.sw - g.pw + (k % g.kw) * g.dw;
        if (iy >= 0 && iy < g.height && ix >= 0 && ix < g.width)
          image[(p * g.height + iy) * g.width + ix] += cols[(p * K + k) * L + l];
      }
}

#define SOMA_INSTANTIATE_FOLD(T)                                        \
  template void im2col<T>(const T*, T*, const FoldGeometry&);           \
  template void col2im<T>(const T*, T*, const FoldGeometry&);           \
  template void im2col_reference<T>(const T*, T*, const FoldGeometry&); \
  template void col2im_reference<T>(const T*, T*, const FoldGeometry&);
SOMA_INSTANTIATE_FOLD(float)
SOMA_INSTANTIATE_FOLD(double)
#undef SOMA_INSTANTIATE_FOLD

}  // namespace soma::kernels::cpu
