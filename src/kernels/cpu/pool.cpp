// Max and average pooling loops. The fast versions give each thread whole planes and run the
// innermost loop along an output row (2x2 stride-2 max pooling has its own branch-free loop);
// the references visit one output element at a time on one thread.
#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace soma::kernels::cpu {

namespace {

template <typename T>
constexpr T kLowest = -std::numeric_limits<T>::infinity();

// torch's comparison: a larger value or a NaN replaces the running maximum.
template <typename T>
inline bool beats(T v, T m) {
  return v > m || v != v;
}

// The range [lo, hi) of output positions o whose input position o * s + off lies in [0, n).
inline void valid_range(int64_t off, int64_t s, int64_t n, int64_t count, int64_t& lo,
                        int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = n - 1 - off >= 0 ? std::min(count, (n - 1 - off) / s + 1) : 0;
  if (hi < lo) hi = lo;
}

// Splits the planes over threads, at least ~kParallelGrain elements per share.
template <typename F>
void for_planes(const PoolGeometry& g, F&& f) {
  const int64_t per_plane = std::max<int64_t>(1, g.height * g.width + g.oh * g.ow);
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / per_plane);
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) f(p);
  });
}

// 2x2 windows, stride 2, no padding or dilation, every window inside the input.
inline bool is_2x2(const PoolGeometry& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.dh == 1 &&
         g.dw == 1 && 2 * g.oh <= g.height && 2 * g.ow <= g.width;
}

template <typename T>
void max_plane_2x2(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
  const int64_t W = g.width;
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const T* r0 = x + 2 * oy * W;
    const T* r1 = r0 + W;
    T* yr = y + oy * g.ow;
    int64_t* ir = idx + oy * g.ow;
    const int64_t base = 2 * oy * W;
#pragma omp simd
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
      T m = a;
      int64_t k = 0;
      if (beats(b, m)) m = b, k = 1;
      if (beats(c, m)) m = c, k = W;
      if (beats(d, m)) m = d, k = W + 1;
      yr[ox] = m;
      ir[ox] = base + 2 * ox + k;
    }
  }
}

template <typename T>
void max_plane(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
  const int64_t H = g.height, W = g.width;
  if (is_2x2(g)) return max_plane_2x2(x, y, idx, g);
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    T* yr = y + oy * g.ow;
    int64_t* ir = idx + oy * g.ow;
    const int64_t hs = oy * g.sh - g.ph;
    int64_t h0 = hs;
    while (h0 < 0) h0 += g.dh;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      int64_t w0 = ox * g.sw - g.pw;
      while (w0 < 0) w0 += g.dw;
      yr[ox] = kLowest<T>;
      ir[ox] = h0 * W + w0;
    }
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t iy = hs + i * g.dh;
      if (iy < 0 || iy >= H) continue;
      const T* row = x + iy * W;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t off = j * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(off, g.sw, W, g.ow, lo, hi);
        for (int64_t ox = lo; ox < hi; ++ox) {
          const int64_t ix = ox * g.sw + off;
          const T v = row[ix];
          if (beats(v, yr[ox])) {
            yr[ox] = v;
            ir[ox] = iy * W + ix;
          }
        }
      }
    }
  }
}

// 2x2 stride-2 windows without padding do not overlap: each gx element is written once, gy
// where the index points at it and 0 elsewhere (no zero fill, no scatter).
template <typename T>
void scatter_plane_2x2(const T* gy, const int64_t* idx, T* gx, const PoolGeometry& g) {
  const int64_t W = g.width;
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    T* r0 = gx + 2 * oy * W;
    T* r1 = r0 + W;
    const T* gr = gy + oy * g.ow;
    const int64_t* ir = idx + oy * g.ow;
    const int64_t base = 2 * oy * W;
#pragma omp simd
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const int64_t k = ir[ox] - base - 2 * ox;
      const T v = gr[ox];
      r0[2 * ox] = k == 0 ? v : T(0);
      r0[2 * ox + 1] = k == 1 ? v : T(0);
      r1[2 * ox] = k == W ? v : T(0);
      r1[2 * ox + 1] = k == W + 1 ? v : T(0);
    }
    for (int64_t x = 2 * g.ow; x < W; ++x) r0[x] = r1[x] = T(0);
  }
  std::fill(gx + 2 * g.oh * W, gx + g.height * W, T(0));
}

template <typename T>
void scatter_plane(const T* gy, const int64_t* idx, T* gx, const PoolGeometry& g) {
  if (is_2x2(g)) return scatter_plane_2x2(gy, idx, gx, g);
  const int64_t n = g.height * g.width, L = g.oh * g.ow;
  std::fill(gx, gx + n, T(0));
  for (int64_t o = 0; o < L; ++o) {
    const int64_t k = idx[o];
    if (k >= 0 && k < n) gx[k] += gy[o];
  }
}

// The divisor of output (oy, ox)'s window (torch's avg_pool2d rule).
inline int64_t avg_divisor(const PoolGeometry& g, int64_t oy, int64_t ox) {
  if (g.divisor != 0) return g.divisor;
  const int64_t hs = oy * g.sh - g.ph, ws = ox * g.sw - g.pw;
  const int64_t he = std::min(hs + g.kh, g.height + g.ph), we = std::min(ws + g.kw, g.width + g.pw);
  if (g.count_include_pad) return (he - hs) * (we - ws);
  return (std::min(he, g.height) - std::max<int64_t>(hs, 0)) *
         (std::min(we, g.width) - std::max<int64_t>(ws, 0));
}

template <typename T>
void avg_plane(const T* x, T* y, const PoolGeometry& g) {
  const int64_t H = g.height, W = g.width;
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    T* yr = y + oy * g.ow;
    std::fill(yr, yr + g.ow, T(0));
    const int64_t hs = oy * g.sh - g.ph;
    const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.kh, H);
    for (int64_t iy = h0; iy < h1; ++iy) {
      const T* row = x + iy * W;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t off = j - g.pw;
        int64_t lo, hi;
        valid_range(off, g.sw, W, g.ow, lo, hi);
        for (int64_t ox = lo; ox < hi; ++ox) yr[ox] += row[ox * g.sw + off];
      }
    }
    for (int64_t ox = 0; ox < g.ow; ++ox) yr[ox] /= static_cast<T>(avg_divisor(g, oy, ox));
  }
}

template <typename T>
void avg_plane_backward(const T* gy, T* gx, const PoolGeometry& g, std::vector<T>& scaled) {
  const int64_t H = g.height, W = g.width;
  std::fill(gx, gx + H * W, T(0));
  scaled.resize(static_cast<size_t>(g.ow));
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const T* gr = gy + oy * g.ow;
    for (int64_t ox = 0; ox < g.ow; ++ox)
      scaled[ox] = gr[ox] / static_cast<T>(avg_divisor(g, oy, ox));
    const int64_t hs = oy * g.sh - g.ph;
    const int64_t h0 = std::max<int64_t>(hs, 0), h1 = std::min(hs + g.kh, H);
    for (int64_t iy = h0; iy < h1; ++iy) {
      T* row = gx + iy * W;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t off = j - g.pw;
        int64_t lo, hi;
        valid_range(off, g.sw, W, g.ow, lo, hi);
        for (int64_t ox = lo; ox < hi; ++ox) row[ox * g.sw + off] += scaled[ox];
      }
    }
  }
}

inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) {
  return (i * in) / out;
}
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

template <typename T>
void adaptive_max_plane(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
  const int64_t H = g.height, W = g.width;
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const int64_t h0 = adaptive_start(oy, H, g.oh), h1 = adaptive_end(oy, H, g.oh);
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const int64_t w0 = adaptive_start(ox, W, g.ow), w1 = adaptive_end(ox, W, g.ow);
      T m = kLowest<T>;
      int64_t k = h0 * W + w0;
      for (int64_t iy = h0; iy < h1; ++iy)
        for (int64_t ix = w0; ix < w1; ++ix) {
          const T v = x[iy * W + ix];
          if (beats(v, m)) m = v, k = iy * W + ix;
        }
      y[oy * g.ow + ox] = m;
      idx[oy * g.ow + ox] = k;
    }
  }
}

}  // namespace

// ---- fast ------------------------------------------------------------------------------------
template <typename T>
void max_pool_forward(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  for_planes(g, [&](int64_t p) { max_plane(x + p * in, y + p * out, idx + p * out, g); });
}

template <typename T>
void max_pool_backward(const T* gy, const int64_t* idx, T* gx, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  for_planes(g, [&](int64_t p) { scatter_plane(gy + p * out, idx + p * out, gx + p * in, g); });
}

template <typename T>
void avg_pool_forward(const T* x, T* y, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  for_planes(g, [&](int64_t p) { avg_plane(x + p * in, y + p * out, g); });
}

template <typename T>
void avg_pool_backward(const T* gy, T* gx, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, in + out));
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    std::vector<T> scaled;
    for (int64_t p = p0; p < p1; ++p) avg_plane_backward(gy + p * out, gx + p * in, g, scaled);
  });
}

template <typename T>
void adaptive_max_pool_forward(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  for_planes(g, [&](int64_t p) { adaptive_max_plane(x + p * in, y + p * out, idx + p * out, g); });
}

// ---- references: one output element at a time ------------------------------------------------
template <typename T>
void max_pool_forward_reference(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
  const int64_t H = g.height, W = g.width;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        int64_t h0 = oy * g.sh - g.ph, w0 = ox * g.sw - g.pw;
        const int64_t h1 = std::min(h0 + (g.kh - 1) * g.dh + 1, H);
        const int64_t w1 = std::min(w0 + (g.kw - 1) * g.dw + 1, W);
        while (h0 < 0) h0 += g.dh;
        while (w0 < 0) w0 += g.dw;
        T m = kLowest<T>;
        int64_t k = h0 * W + w0;
        for (int64_t iy = h0; iy < h1; iy += g.dh)
          for (int64_t ix = w0; ix < w1; ix += g.dw) {
            const T v = x[(p * H + iy) * W + ix];
            if (beats(v, m)) m = v, k = iy * W + ix;
          }
        y[(p * g.oh + oy) * g.ow + ox] = m;
        idx[(p * g.oh + oy) * g.ow + ox] = k;
      }
}

template <typename T>
void max_pool_backward_reference(const T* gy, const int64_t* idx, T* gx, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  for (int64_t i = 0; i < g.planes * in; ++i) gx[i] = T(0);
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t o = 0; o < out; ++o) {
      const int64_t k = idx[p * out + o];
      if (k >= 0 && k < in) gx[p * in + k] += gy[p * out + o];
    }
}

template <typename T>
void avg_pool_forward_reference(const T* x, T* y, const PoolGeometry& g) {
  const int64_t H = g.height, W = g.width;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const int64_t hs = oy * g.sh - g.ph, ws = ox * g.sw - g.pw;
        long double sum = 0;
        for (int64_t iy = std::max<int64_t>(hs, 0); iy < std::min(hs + g.kh, H); ++iy)
          for (int64_t ix = std::max<int64_t>(ws, 0); ix < std::min(ws + g.kw, W); ++ix)
            sum += x[(p * H + iy) * W + ix];
        y[(p * g.oh + oy) * g.ow + ox] =
            static_cast<T>(sum / static_cast<long double>(avg_divisor(g, oy, ox)));
      }
}

template <typename T>
void avg_pool_backward_reference(const T* gy, T* gx, const PoolGeometry& g) {
  const int64_t H = g.height, W = g.width;
  for (int64_t i = 0; i < g.planes * H * W; ++i) gx[i] = T(0);
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const int64_t hs = oy * g.sh - g.ph, ws = ox * g.sw - g.pw;
        const T v = gy[(p * g.oh + oy) * g.ow + ox] / static_cast<T>(avg_divisor(g, oy, ox));
        for (int64_t iy = std::max<int64_t>(hs, 0); iy < std::min(hs + g.kh, H); ++iy)
          for (int64_t ix = std::max<int64_t>(ws, 0); ix < std::min(ws + g.kw, W); ++ix)
            gx[(p * H + iy) * W + ix] += v;
      }
}

template <typename T>
void adaptive_max_pool_forward_reference(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  for (int64_t p = 0; p < g.planes; ++p)
    adaptive_max_plane(x + p * in, y + p * out, idx + p * out, g);
}

#define SOMA_INSTANTIATE_POOL(T)                                                                   \
  template void max_pool_forward<T>(const T*, T*, int64_t*, const PoolGeometry&);                  \
  template void max_pool_forward_reference<T>(const T*, T*, int64_t*, const PoolGeometry&);        \
  template void max_pool_backward<T>(const T*, const int64_t*, T*, const PoolGeometry&);           \
  template void max_pool_backward_reference<T>(const T*, const int64_t*, T*, const PoolGeometry&); \
  template void avg_pool_forward<T>(const T*, T*, const PoolGeometry&);                            \
  template void avg_pool_forward_reference<T>(const T*, T*, const PoolGeometry&);                  \
  template void avg_pool_backward<T>(const T*, T*, const PoolGeometry&);                           \
  template void avg_pool_backward_reference<T>(const T*, T*, const PoolGeometry&);                 \
  template void adaptive_max_pool_forward<T>(const T*, T*, int64_t*, const PoolGeometry&);         \
  template void adaptive_max_pool_forward_reference<T>(const T*, T*, int64_t*, const PoolGeometry&);
SOMA_INSTANTIATE_POOL(float)
SOMA_INSTANTIATE_POOL(double)
#undef SOMA_INSTANTIATE_POOL

}  // namespace soma::kernels::cpu
