// The u8 x s8 GEMM over PackedS8 (internal; see kernels/cpu/lowp.h), written once for two ISAs.
// Included by lowp_int8_vnni.cpp (SOMA_LOWP_VNNI 1: vpdpbusd) and lowp_int8_avx512.cpp
// (SOMA_LOWP_VNNI 0: AVX-512BW, each weight byte widened to int16 and multiplied with vpmaddwd,
// exact: |u8 * s8| <= 32640 and the pair sums fit int32; vpmaddubsw would saturate). Each file
// defines SOMA_LOWP_TARGET (the function attribute naming the ISA) and SOMA_LOWP_NS (the
// namespace the entry points land in) before including this; everything else is in an
// anonymous namespace, so the two copies never meet at link time.
//
// Every function that uses the ISA carries SOMA_LOWP_TARGET (no lambdas in them: a lambda does
// not inherit a target attribute); the parallel region's lambda only calls them.
// GCC 12 warns that the intrinsics' "undefined" vectors are uninitialised when AVX-512 comes
// from a target attribute (a false positive of GCC 12).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/lowp.h"
#include "kernels/cpu/parallel.h"

namespace soma::kernels::lowp {
namespace {

// Where a tile's results go: int32 C, or y through the fused dequantisation (and ReLU). x: A
// in float32 (row stride ldx), quantised a block of rows at a time by the thread that
// multiplies them (with a_scale and zp), instead of a uint8 A.
struct Out {
  int32_t* c = nullptr;
  int64_t ldc = 0;
  float* y = nullptr;
  int64_t ldy = 0;
  int32_t zp = 0;
  float a_scale = 0;
  const float* w_scale = nullptr;
  const float* bias = nullptr;
  const int32_t* col_sums = nullptr;
  bool relu = false;
  const float* x = nullptr;
  int64_t ldx = 0;
};

#if SOMA_LOWP_VNNI
constexpr int kMR = 6;  // rows per tile: 6 x 4 accumulators
#else
constexpr int kMR = 2;  // rows per tile: 2 x 4 x 2 accumulators (pairs of lanes per column;
                        // 3 rows spill registers)
#endif
constexpr int64_t kMC = 96;                     // rows per chunk (A chunk stays in L2)
constexpr int64_t kMinWork = int64_t{1} << 20;  // multiply-adds below which one thread runs

SOMA_LOWP_TARGET inline int32_t load_a4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The last 1-3 bytes of a row (K % 4 != 0), zero-extended: never reads past the row.
SOMA_LOWP_TARGET inline int32_t load_a_tail(const uint8_t* p, int64_t rem) {
  uint32_t v = 0;
  for (int64_t r = 0; r < rem; ++r) v |= static_cast<uint32_t>(p[r]) << (8 * r);
  return static_cast<int32_t>(v);
}

SOMA_LOWP_TARGET inline __mmask16 col_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF)
                    : static_cast<__mmask16>((1u << static_cast<unsigned>(left)) - 1u);
}

SOMA_LOWP_TARGET __attribute__((always_inline)) inline void store(const Out& o, int64_t row,
                                                                  int64_t col, __m512i acc,
                                                                  __mmask16 mask) {
  if (o.c != nullptr) {
    _mm512_mask_storeu_epi32(o.c + row * o.ldc + col, mask, acc);
    return;
  }
  const __m512i cs = _mm512_maskz_loadu_epi32(mask, o.col_sums + col);
  const __m512i d = _mm512_sub_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(o.zp), cs));
  const __m512 s =
      _mm512_mul_ps(_mm512_set1_ps(o.a_scale), _mm512_maskz_loadu_ps(mask, o.w_scale + col));
  const __m512 b =
      o.bias != nullptr ? _mm512_maskz_loadu_ps(mask, o.bias + col) : _mm512_setzero_ps();
  __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), s, b);
  // max(0, v) returns v unless 0 > v: -0 and NaN stay, as std::max(v, 0.0f).
  if (o.relu) v = _mm512_max_ps(_mm512_setzero_ps(), v);
  _mm512_mask_storeu_ps(o.y + row * o.ldy + col, mask, v);
}

#if SOMA_LOWP_VNNI

// MR rows x NV*16 columns of one panel (bp: the panel's first group), all of K; a: A's row
// for output row i0.
template <int NV, int MR>
SOMA_LOWP_TARGET void tile(const uint8_t* a, int64_t lda, const int8_t* bp, int64_t k, int64_t i0,
                           int64_t n0, int64_t n, const Out& o) {
  __m512i acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
  const uint8_t* ar[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) ar[i] = a + i * lda;
  // One loop for the whole groups and the partial last one (a second copy of the body makes
  // GCC 12 keep the accumulators in memory).
  const int64_t groups = k / 4, rem = k % 4, all = groups + (rem != 0);
  const int8_t* b = bp;
  for (int64_t g = 0; g < all; ++g, b += NV * 64) {
    __m512i bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + 64 * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512i av =
          _mm512_set1_epi32(g < groups ? load_a4(ar[i] + 4 * g) : load_a_tail(ar[i] + 4 * g, rem));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], av, bv[v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      store(o, i0 + i, n0 + 16 * v, acc[i][v], col_mask(n - n0 - 16 * v));
}

// One row (batch-1 inference): a GEMV over the packed panel with two accumulator sets (even
// and odd groups), so 2 NV dot products are in flight.
template <int NV>
SOMA_LOWP_TARGET void tile_row(const uint8_t* a, const int8_t* bp, int64_t k, int64_t i0,
                               int64_t n0, int64_t n, const Out& o) {
  __m512i acc0[NV], acc1[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) acc0[v] = acc1[v] = _mm512_setzero_si512();
  const int64_t groups = k / 4, rem = k % 4;
  const int8_t* b = bp;
  int64_t g = 0;
  for (; g + 2 <= groups; g += 2, b += 2 * NV * 64) {
    const __m512i a0 = _mm512_set1_epi32(load_a4(a + 4 * g));
    const __m512i a1 = _mm512_set1_epi32(load_a4(a + 4 * g + 4));
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      acc0[v] = _mm512_dpbusd_epi32(acc0[v], a0, _mm512_loadu_si512(b + 64 * v));
      acc1[v] = _mm512_dpbusd_epi32(acc1[v], a1, _mm512_loadu_si512(b + NV * 64 + 64 * v));
    }
  }
  if (g < groups) {
    const __m512i a0 = _mm512_set1_epi32(load_a4(a + 4 * g));
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc0[v] = _mm512_dpbusd_epi32(acc0[v], a0, _mm512_loadu_si512(b + 64 * v));
    ++g;
    b += NV * 64;
  }
  if (rem != 0) {
    const __m512i a1 = _mm512_set1_epi32(load_a_tail(a + 4 * groups, rem));
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc1[v] = _mm512_dpbusd_epi32(acc1[v], a1, _mm512_loadu_si512(b + 64 * v));
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v)
    store(o, i0, n0 + 16 * v, _mm512_add_epi32(acc0[v], acc1[v]), col_mask(n - n0 - 16 * v));
}

#else  // AVX-512BW

// The four activation bytes as four int16, broadcast to every 64-bit lane.
SOMA_LOWP_TARGET inline __m512i widen_a4(int32_t a4) {
  return _mm512_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(a4)));
}

// acc_lo / acc_hi hold, for columns 0-7 / 8-15 of a vector, two partial sums per column
// (k = 0,1 and k = 2,3 of each group) in adjacent lanes; this adds the pairs.
SOMA_LOWP_TARGET inline __m512i fold_pairs(__m512i lo, __m512i hi) {
  const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  lo = _mm512_add_epi32(lo, _mm512_srli_epi64(lo, 32));
  hi = _mm512_add_epi32(hi, _mm512_srli_epi64(hi, 32));
  return _mm512_permutex2var_epi32(lo, idx, hi);
}

template <int NV, int MR>
SOMA_LOWP_TARGET inline void step(__m512i (&lo)[MR][NV], __m512i (&hi)[MR][NV], const int8_t* b,
                                  const __m512i (&av)[MR]) {
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const __m512i bv = _mm512_loadu_si512(b + 64 * v);
    const __m512i bl = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(bv));
    const __m512i bh = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(bv, 1));
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      lo[i][v] = _mm512_add_epi32(lo[i][v], _mm512_madd_epi16(av[i], bl));
      hi[i][v] = _mm512_add_epi32(hi[i][v], _mm512_madd_epi16(av[i], bh));
    }
  }
}

template <int NV, int MR>
SOMA_LOWP_TARGET void tile(const uint8_t* a, int64_t lda, const int8_t* bp, int64_t k, int64_t i0,
                           int64_t n0, int64_t n, const Out& o) {
  __m512i lo[MR][NV], hi[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) lo[i][v] = hi[i][v] = _mm512_setzero_si512();
  const uint8_t* ar[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) ar[i] = a + i * lda;
  const int64_t groups = k / 4, rem = k % 4, all = groups + (rem != 0);
  const int8_t* b = bp;
  __m512i av[MR];
  for (int64_t g = 0; g < all; ++g, b += NV * 64) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
      av[i] = widen_a4(g < groups ? load_a4(ar[i] + 4 * g) : load_a_tail(ar[i] + 4 * g, rem));
    step<NV, MR>(lo, hi, b, av);
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      store(o, i0 + i, n0 + 16 * v, fold_pairs(lo[i][v], hi[i][v]), col_mask(n - n0 - 16 * v));
}

#endif

template <int NV>
SOMA_LOWP_TARGET void tile_rows(int rows, const uint8_t* a, int64_t lda, const int8_t* bp,
                                int64_t k, int64_t i0, int64_t n0, int64_t n, const Out& o) {
  switch (rows) {
    case 1:
#if SOMA_LOWP_VNNI
      tile_row<NV>(a, bp, k, i0, n0, n, o);
#else
      tile<NV, 1>(a, lda, bp, k, i0, n0, n, o);
#endif
      break;
    case 2:
      tile<NV, 2>(a, lda, bp, k, i0, n0, n, o);
      break;
    case 3:
      if constexpr (kMR >= 3) tile<NV, 3>(a, lda, bp, k, i0, n0, n, o);
      break;
    default:
      if constexpr (kMR >= 6) {
        if (rows == 4)
          tile<NV, 4>(a, lda, bp, k, i0, n0, n, o);
        else if (rows == 5)
          tile<NV, 5>(a, lda, bp, k, i0, n0, n, o);
        else
          tile<NV, 6>(a, lda, bp, k, i0, n0, n, o);
      }
      break;
  }
}

// Rows [r0, r1) x panels [p0, p1).
SOMA_LOWP_TARGET void block(const uint8_t* a, int64_t lda, const PackedS8& w, const Out& o,
                            int64_t r0, int64_t r1, int64_t p0, int64_t p1) {
  const int64_t kp = packed_k(w.k);
  // With a float32 A (o.x): this thread's rows, quantised a chunk at a time (row stride K).
  thread_local std::vector<uint8_t> qbuf;
  if (o.x != nullptr && qbuf.size() < static_cast<size_t>(kMC * w.k))
    qbuf.resize(static_cast<size_t>(kMC * w.k));
  for (int64_t mc = r0; mc < r1; mc += kMC) {
    const int64_t mend = std::min(mc + kMC, r1);
    const uint8_t* ac = a;  // A's row mc, with row stride ldc
    int64_t ldc = lda;
    if (o.x != nullptr) {
      for (int64_t i = mc; i < mend; ++i)
        quantize_u8_serial_avx512(o.x + i * o.ldx, w.k, o.a_scale, o.zp,
                                  qbuf.data() + (i - mc) * w.k);
      ac = qbuf.data();
      ldc = w.k;
    } else {
      ac = a + mc * lda;
    }
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = p * kPanel;
      const int64_t width = panel_width(w.n, n0);
      const int8_t* bp = w.data.data() + n0 * kp;
      for (int64_t i = mc; i < mend; i += kMR) {
        const int rows = static_cast<int>(std::min<int64_t>(kMR, mend - i));
        const uint8_t* ai = ac + (i - mc) * ldc;
        switch (width / 16) {
          case 1:
            tile_rows<1>(rows, ai, ldc, bp, w.k, i, n0, w.n, o);
            break;
          case 2:
            tile_rows<2>(rows, ai, ldc, bp, w.k, i, n0, w.n, o);
            break;
          case 3:
            tile_rows<3>(rows, ai, ldc, bp, w.k, i, n0, w.n, o);
            break;
          default:
            tile_rows<4>(rows, ai, ldc, bp, w.k, i, n0, w.n, o);
            break;
        }
      }
    }
  }
}

// Splits the product over the threads: along M (each thread reads all of the packed weights,
// which stay in its L2) when there are enough rows, else along the panels of N.
void run(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w, const Out& o) {
  const int64_t panels = (w.n + kPanel - 1) / kPanel;
  if (m == 0 || panels == 0) return;
  const int threads = cpu::num_threads();
  if (threads < 2 || m * w.n * std::max<int64_t>(w.k, 1) < kMinWork) {
    block(a, lda, w, o, 0, m, 0, panels);
    return;
  }
  if (m >= 4 * kMR * threads || panels < threads) {
    cpu::parallel_team(true, [&](int64_t t, int64_t nt) {
      // Row edges on multiples of kMR, so no thread gets a ragged tile it could avoid.
      const int64_t tiles = (m + kMR - 1) / kMR;
      const int64_t r0 = std::min(m, tiles * t / nt * kMR);
      const int64_t r1 = t + 1 == nt ? m : std::min(m, tiles * (t + 1) / nt * kMR);
      if (r0 < r1) block(a, lda, w, o, r0, r1, 0, panels);
    });
  } else {
    cpu::parallel_team(true, [&](int64_t t, int64_t nt) {
      const int64_t q0 = panels * t / nt, q1 = panels * (t + 1) / nt;
      if (q0 < q1) block(a, lda, w, o, 0, m, q0, q1);
    });
  }
}

}  // namespace

void SOMA_LOWP_NS(gemm_u8s8s32)(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w,
                                int32_t* c, int64_t ldc) {
  Out o;
  o.c = c;
  o.ldc = ldc;
  run(m, a, lda, w, o);
}

void SOMA_LOWP_NS(gemm_u8s8_f32)(int64_t m, const uint8_t* a, int64_t lda, const PackedS8& w,
                                 int32_t a_zero_point, float a_scale, const float* w_scale,
                                 const float* bias, float* y, int64_t ldy, bool relu) {
  Out o;
  o.y = y;
  o.ldy = ldy;
  o.zp = a_zero_point;
  o.a_scale = a_scale;
  o.w_scale = w_scale;
  o.bias = bias;
  o.col_sums = w.col_sums.data();
  o.relu = relu;
  run(m, a, lda, w, o);
}

void SOMA_LOWP_NS(quantize_gemm_u8s8_f32)(int64_t m, const float* a, int64_t lda, const PackedS8& w,
                                          int32_t a_zero_point, float a_scale, const float* w_scale,
                                          const float* bias, float* y, int64_t ldy, bool relu) {
  Out o;
  o.y = y;
  o.ldy = ldy;
  o.zp = a_zero_point;
  o.a_scale = a_scale;
  o.w_scale = w_scale;
  o.bias = bias;
  o.col_sums = w.col_sums.data();
  o.relu = relu;
  o.x = a;
  o.ldx = lda;
  run(m, nullptr, w.k, w, o);
}

}  // namespace soma::kernels::lowp
