// Max and average pooling loops. The fast versions give each thread whole planes and run the
// innermost loop along an output row (2x2 stride-2 max pooling has its own branch-free loop);
// the references visit one output element at a time on one thread.
#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_isa.h"

#if SOMA_HAVE_TARGET_AVX512
#include <immintrin.h>
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which the uninitialized-use
// warnings report once they are inlined; -Wpsabi notes pick()'s __m512 arguments (always
// inlined into AVX-512 code, so no call crosses the ABI). Popped at the end of the file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

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

// Splits the planes over threads, at least ~kParallelGrain elements per share; each share runs
// f(p) for its planes compiled for the CPU's vector level (vector_isa.h: f and what it calls
// must be inlined, SOMA_VECTOR_BODY / SOMA_VECTOR_INLINE).
template <typename F>
void for_planes(const PoolGeometry& g, F&& f) {
  const int64_t per_plane = std::max<int64_t>(1, g.height * g.width + g.oh * g.ow);
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / per_plane);
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    with_vector_isa([&]() SOMA_VECTOR_BODY {
      for (int64_t p = p0; p < p1; ++p) f(p);
    });
  });
}

// 2x2 windows, stride 2, no padding or dilation, every window inside the input.
inline bool is_2x2(const PoolGeometry& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.dh == 1 &&
         g.dw == 1 && 2 * g.oh <= g.height && 2 * g.ow <= g.width;
}

#if SOMA_HAVE_TARGET_AVX512
// 2x2 stride-2 float32 max pooling with AVX-512 masks, 16 outputs per step: the CNN's rows
// (14 and 7 outputs) are shorter than a 16-lane vector, so the compiler's loop below runs
// them in its scalar remainder. Each step loads the two input rows' 32 floats (masked),
// splits even and odd columns with permutes, picks the window maximum as beats() does (a
// larger value or a NaN replaces it) and writes the index as int64. Positions are int32:
// callers check that the plane has fewer than 2^31 elements. Loads are unmasked wherever the
// full vectors stay inside the plane (every row but the last one or two): on Zen 4 the
// masked loads made the whole loop 2-3x slower (1.5 against 0.6 ms for [128, 32, 28, 28], one
// thread); lanes read past a row's windows only feed output lanes that are never stored.
// One step of beats() over 16 windows: where v is larger than m, or a NaN, m takes v and k at.
SOMA_TARGET_AVX512 inline void pick(__m512& m, __m512i& k, __m512 v, __m512i at) {
  const __mmask16 s = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  m = _mm512_mask_mov_ps(m, s, v);
  k = _mm512_mask_mov_epi32(k, s, at);
}

SOMA_TARGET_AVX512 void max_plane_2x2_avx512(const float* x, float* y, int64_t* idx,
                                             const PoolGeometry& g) {
  const int64_t W = g.width;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i one = _mm512_set1_epi32(1), kw = _mm512_set1_epi32(static_cast<int>(W)),
                kw1 = _mm512_set1_epi32(static_cast<int>(W + 1));
  const float* x_end = x + g.height * W;
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const float* r0 = x + 2 * oy * W;
    const float* r1 = r0 + W;
    float* yr = y + oy * g.ow;
    int64_t* ir = idx + oy * g.ow;
    for (int64_t ox = 0; ox < g.ow; ox += 16) {
      const int n = static_cast<int>(std::min<int64_t>(16, g.ow - ox));
      const auto out = static_cast<__mmask16>((1u << n) - 1);
      __m512 a0, a1, b0, b1;
      if (r1 + 2 * ox + 32 <= x_end) {
        a0 = _mm512_loadu_ps(r0 + 2 * ox);
        a1 = _mm512_loadu_ps(r0 + 2 * ox + 16);
        b0 = _mm512_loadu_ps(r1 + 2 * ox);
        b1 = _mm512_loadu_ps(r1 + 2 * ox + 16);
      } else {
        const auto lo = static_cast<__mmask16>(n >= 8 ? 0xFFFFu : (1u << (2 * n)) - 1);
        const auto hi = static_cast<__mmask16>(n > 8 ? (1u << (2 * n - 16)) - 1 : 0u);
        a0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * ox);
        a1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * ox + 16);
        b0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * ox);
        b1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16);
      }
      __m512 m = _mm512_permutex2var_ps(a0, even, a1);
      __m512i k = _mm512_setzero_si512();
      pick(m, k, _mm512_permutex2var_ps(a0, odd, a1), one);
      pick(m, k, _mm512_permutex2var_ps(b0, even, b1), kw);
      pick(m, k, _mm512_permutex2var_ps(b0, odd, b1), kw1);
      _mm512_mask_storeu_ps(yr + ox, out, m);
      const __m512i pos = _mm512_add_epi32(
          _mm512_add_epi32(k, even), _mm512_set1_epi32(static_cast<int>(2 * oy * W + 2 * ox)));
      _mm512_mask_storeu_epi64(ir + ox, static_cast<__mmask8>(out),
                               _mm512_cvtepi32_epi64(_mm512_castsi512_si256(pos)));
      _mm512_mask_storeu_epi64(ir + ox + 8, static_cast<__mmask8>(out >> 8),
                               _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(pos, 1)));
    }
  }
}

// Its backward: each gx element of the windows gets gy where the index points at it, else 0
// (scatter_plane_2x2's contract; the caller zeroes the columns and rows past the windows).
// As in the forward, loads are unmasked where they stay inside the plane's gy and indices,
// and where a row is one vector step (the CNN's 14 and 7 outputs) and the full stores end
// inside the windows' rows, so are the stores: a row pair's stores run left to right, top to
// bottom, and whatever a full store writes past its row is written again by the next store or
// row pair (or, for an odd width, zeroed by the caller).
SOMA_TARGET_AVX512 void scatter_plane_2x2_avx512(const float* gy, const int64_t* idx, float* gx,
                                                 const PoolGeometry& g) {
  const int64_t W = g.width;
  const __m512i lane2 =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i lo_mix = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_mix = _mm512_add_epi32(lo_mix, _mm512_set1_epi32(8));
  const __m512i one = _mm512_set1_epi32(1), kw = _mm512_set1_epi32(static_cast<int>(W)),
                kw1 = _mm512_set1_epi32(static_cast<int>(W + 1));
  const float* gy_end = gy + g.oh * g.ow;
  const float* gx_rows_end = gx + 2 * g.oh * W;  // the rows the windows cover
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    float* r0 = gx + 2 * oy * W;
    float* r1 = r0 + W;
    const float* gr = gy + oy * g.ow;
    const int64_t* ir = idx + oy * g.ow;
    const bool full_stores = g.ow <= 16 && r1 + (g.ow > 8 ? 32 : 16) <= gx_rows_end;
    for (int64_t ox = 0; ox < g.ow; ox += 16) {
      const int n = static_cast<int>(std::min<int64_t>(16, g.ow - ox));
      const auto out = static_cast<__mmask16>((1u << n) - 1);
      const auto lo = static_cast<__mmask16>(n >= 8 ? 0xFFFFu : (1u << (2 * n)) - 1);
      const auto hi = static_cast<__mmask16>(n > 8 ? (1u << (2 * n - 16)) - 1 : 0u);
      __m512i i0, i1;
      __m512 v;
      if (gr + ox + 16 <= gy_end) {
        i0 = _mm512_loadu_si512(ir + ox);
        i1 = _mm512_loadu_si512(ir + ox + 8);
        v = _mm512_loadu_ps(gr + ox);
      } else {
        i0 = _mm512_maskz_loadu_epi64(static_cast<__mmask8>(out), ir + ox);
        i1 = _mm512_maskz_loadu_epi64(static_cast<__mmask8>(out >> 8), ir + ox + 8);
        v = _mm512_maskz_loadu_ps(out, gr + ox);
      }
      const __m512i pos = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(i0)),
                                             _mm512_cvtepi64_epi32(i1), 1);
      const __m512i k = _mm512_sub_epi32(
          pos, _mm512_add_epi32(lane2, _mm512_set1_epi32(static_cast<int>(2 * oy * W + 2 * ox))));
      const __m512 e0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_setzero_si512()), v);
      const __m512 e1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, one), v);
      const __m512 e2 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, kw), v);
      const __m512 e3 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, kw1), v);
      if (full_stores) {
        _mm512_storeu_ps(r0 + 2 * ox, _mm512_permutex2var_ps(e0, lo_mix, e1));
        if (hi != 0) _mm512_storeu_ps(r0 + 2 * ox + 16, _mm512_permutex2var_ps(e0, hi_mix, e1));
        _mm512_storeu_ps(r1 + 2 * ox, _mm512_permutex2var_ps(e2, lo_mix, e3));
        if (hi != 0) _mm512_storeu_ps(r1 + 2 * ox + 16, _mm512_permutex2var_ps(e2, hi_mix, e3));
        continue;
      }
      _mm512_mask_storeu_ps(r0 + 2 * ox, lo, _mm512_permutex2var_ps(e0, lo_mix, e1));
      _mm512_mask_storeu_ps(r0 + 2 * ox + 16, hi, _mm512_permutex2var_ps(e0, hi_mix, e1));
      _mm512_mask_storeu_ps(r1 + 2 * ox, lo, _mm512_permutex2var_ps(e2, lo_mix, e3));
      _mm512_mask_storeu_ps(r1 + 2 * ox + 16, hi, _mm512_permutex2var_ps(e2, hi_mix, e3));
    }
  }
}
#endif

// The AVX-512 kernels take float32 planes of fewer than 2^31 elements where the CPU (and
// SOMA_MAX_CPU_ISA) allow AVX-512.
template <typename T>
inline bool use_avx512_rows(const PoolGeometry& g) {
  return SOMA_HAVE_TARGET_AVX512 && std::is_same_v<T, float> && vector_level() >= 2 &&
         g.height * g.width < (int64_t{1} << 31);
}

template <typename T>
SOMA_VECTOR_INLINE void max_plane_2x2(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
#if SOMA_HAVE_TARGET_AVX512
  if constexpr (std::is_same_v<T, float>)
    if (use_avx512_rows<T>(g)) return max_plane_2x2_avx512(x, y, idx, g);
#endif
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
SOMA_VECTOR_INLINE void max_plane(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
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
SOMA_VECTOR_INLINE void scatter_plane_2x2(const T* gy, const int64_t* idx, T* gx,
                                          const PoolGeometry& g) {
  const int64_t W = g.width;
#if SOMA_HAVE_TARGET_AVX512
  if constexpr (std::is_same_v<T, float>)
    if (use_avx512_rows<T>(g)) {
      scatter_plane_2x2_avx512(gy, idx, gx, g);
      for (int64_t oy = 0; oy < g.oh; ++oy)
        for (int64_t x = 2 * g.ow; x < W; ++x) gx[2 * oy * W + x] = gx[(2 * oy + 1) * W + x] = T(0);
      std::fill(gx + 2 * g.oh * W, gx + g.height * W, T(0));
      return;
    }
#endif
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
SOMA_VECTOR_INLINE void scatter_plane(const T* gy, const int64_t* idx, T* gx,
                                      const PoolGeometry& g) {
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
SOMA_VECTOR_INLINE void avg_plane(const T* x, T* y, const PoolGeometry& g) {
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
SOMA_VECTOR_INLINE void avg_plane_backward(const T* gy, T* gx, const PoolGeometry& g,
                                           std::vector<T>& scaled) {
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
SOMA_VECTOR_INLINE void adaptive_max_plane(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
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
  for_planes(
      g, [&](int64_t p) SOMA_VECTOR_BODY { max_plane(x + p * in, y + p * out, idx + p * out, g); });
}

template <typename T>
void max_pool_backward(const T* gy, const int64_t* idx, T* gx, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  for_planes(g, [&](int64_t p) SOMA_VECTOR_BODY {
    scatter_plane(gy + p * out, idx + p * out, gx + p * in, g);
  });
}

template <typename T>
void avg_pool_forward(const T* x, T* y, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  for_planes(g, [&](int64_t p) SOMA_VECTOR_BODY { avg_plane(x + p * in, y + p * out, g); });
}

template <typename T>
void avg_pool_backward(const T* gy, T* gx, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  const int64_t grain = std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, in + out));
  parallel_for(g.planes, grain, [&](int64_t p0, int64_t p1) {
    std::vector<T> scaled(static_cast<size_t>(g.ow));
    with_vector_isa([&]() SOMA_VECTOR_BODY {
      for (int64_t p = p0; p < p1; ++p) avg_plane_backward(gy + p * out, gx + p * in, g, scaled);
    });
  });
}

template <typename T>
void adaptive_max_pool_forward(const T* x, T* y, int64_t* idx, const PoolGeometry& g) {
  const int64_t in = g.height * g.width, out = g.oh * g.ow;
  for_planes(g, [&](int64_t p) SOMA_VECTOR_BODY {
    adaptive_max_plane(x + p * in, y + p * out, idx + p * out, g);
  });
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

#if SOMA_HAVE_TARGET_AVX512
#pragma GCC diagnostic pop
#endif
