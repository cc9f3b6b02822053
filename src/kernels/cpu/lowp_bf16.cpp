// bfloat16 GEMM with float32 accumulation on AVX-512 BF16 (vdpbf16ps: two bf16 x bf16 products
// per float32 lane), kernels/cpu/lowp.h's gemm_bf16. Compiled for that ISA by function
// attributes whatever the build's -march; the registry runs it only where cpuid reports
// AVX-512 F/BW/VL/BF16 (lowp::bf16_available).
//
// Both operands are converted (vcvtne2ps2bf16: round to nearest even) and packed per call:
//   op(B) [K, N] -> panels of 64 columns (the last narrower, a multiple of 16), each a run of
//     K/2 groups (K rounded up to even, zero-padded); group p holds for every column j the
//     dword (B[2p, j], B[2p + 1, j]);
//   op(A) [M, K] -> rows of K/2 dwords (A[i, 2p], A[i, 2p + 1]) when A is stored [M, K], or
//     blocks of 16 rows, [p][16] dwords, when A is stored transposed ([K, M]: two stored rows
//     interleave into a block's group without a transpose).
// The 6 x 64 register tile broadcasts one A dword per row and multiplies four B vectors.
// GCC 12 warns that the intrinsics' "undefined" vectors are uninitialised when AVX-512 comes
// from a target attribute (a false positive of GCC 12).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/lowp.h"
#include "kernels/cpu/parallel.h"

#define SOMA_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace soma::kernels::lowp {
namespace {

constexpr int kMR = 6;
constexpr int64_t kMC = 96;
constexpr int64_t kMinWork = int64_t{1} << 20;  // multiply-adds below which one thread runs

SOMA_BF16 inline __mmask16 mask16(int64_t left) {
  return left >= 16  ? static_cast<__mmask16>(0xFFFF)
         : left <= 0 ? static_cast<__mmask16>(0)
                     : static_cast<__mmask16>((1u << static_cast<unsigned>(left)) - 1u);
}

// 32 floats (lo: elements 0-15, hi: 16-31) as 32 bfloat16 in order.
SOMA_BF16 inline __m512i cvt32(__m512 lo, __m512 hi) {
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
}

// dword j = (bf16(x[j]), bf16(y[j])): x the even k, y the odd k.
SOMA_BF16 inline __m512i interleave(__m512 x, __m512 y) {
  static const uint16_t order[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                     8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_loadu_si512(order);
  return _mm512_permutexvar_epi16(idx, cvt32(x, y));
}

SOMA_BF16 inline void transpose16(__m512i (&r)[16]) {
  __m512i t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  __m512i s[16];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    s[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    s[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    s[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    s[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  // s[4 i + c], 128-bit lane L: column 4 L + c of rows 4 i .. 4 i + 3.
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m512i x = _mm512_shuffle_i32x4(s[c], s[4 + c], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i y = _mm512_shuffle_i32x4(s[c], s[4 + c], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512i z = _mm512_shuffle_i32x4(s[8 + c], s[12 + c], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i w = _mm512_shuffle_i32x4(s[8 + c], s[12 + c], _MM_SHUFFLE(3, 1, 3, 1));
    r[c] = _mm512_shuffle_i32x4(x, z, _MM_SHUFFLE(2, 0, 2, 0));
    r[8 + c] = _mm512_shuffle_i32x4(x, z, _MM_SHUFFLE(3, 1, 3, 1));
    r[4 + c] = _mm512_shuffle_i32x4(y, w, _MM_SHUFFLE(2, 0, 2, 0));
    r[12 + c] = _mm512_shuffle_i32x4(y, w, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

// ---- packing -------------------------------------------------------------------------------

// Panels [q0, q1) of op(B) (see the file comment); P = K/2 rounded up.
SOMA_BF16 void pack_b(bool tb, const float* b, int64_t ldb, int64_t k, int64_t n, int64_t P,
                      uint32_t* out, int64_t q0, int64_t q1) {
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t n0 = q * kPanel, w = panel_width(n, n0);
    uint32_t* panel = out + n0 * P;
    for (int64_t j0 = n0; j0 < n0 + w; j0 += 16) {
      const __mmask16 cols = mask16(n - j0);
      if (!tb) {  // B [K, N]: rows 2p and 2p + 1, 16 columns
        for (int64_t p = 0; p < P; ++p) {
          const __m512 x = _mm512_maskz_loadu_ps(cols, b + 2 * p * ldb + j0);
          const __m512 y = 2 * p + 1 < k ? _mm512_maskz_loadu_ps(cols, b + (2 * p + 1) * ldb + j0)
                                         : _mm512_setzero_ps();
          _mm512_storeu_si512(panel + p * w + (j0 - n0), interleave(x, y));
        }
      } else {  // B stored [N, K]: 16 rows of 16 pairs, transposed
        for (int64_t p0 = 0; p0 < P; p0 += 16) {
          __m512i r[16];
          const int64_t k0 = 2 * p0;
          const __mmask16 lo = mask16(k - k0), hi = mask16(k - k0 - 16);
#pragma GCC unroll 16
          for (int j = 0; j < 16; ++j) {
            if (j0 + j < n) {
              const float* row = b + (j0 + j) * ldb + k0;
              r[j] = cvt32(_mm512_maskz_loadu_ps(lo, row), _mm512_maskz_loadu_ps(hi, row + 16));
            } else {
              r[j] = _mm512_setzero_si512();
            }
          }
          transpose16(r);
          const int64_t np = std::min<int64_t>(16, P - p0);
          for (int64_t pp = 0; pp < np; ++pp)
            _mm512_storeu_si512(panel + (p0 + pp) * w + (j0 - n0), r[pp]);
        }
      }
    }
  }
}

// Rows [r0, r1) of op(A) stored [M, K]: row-major dwords, P per row.
SOMA_BF16 void pack_a_rows(const float* a, int64_t lda, int64_t k, int64_t P, uint32_t* out,
                           int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; ++i) {
    const float* row = a + i * lda;
    uint32_t* dst = out + i * P;
    for (int64_t k0 = 0; k0 < 2 * P; k0 += 32) {
      const __m512i v = cvt32(_mm512_maskz_loadu_ps(mask16(k - k0), row + k0),
                              _mm512_maskz_loadu_ps(mask16(k - k0 - 16), row + k0 + 16));
      _mm512_mask_storeu_epi32(dst + k0 / 2, mask16(P - k0 / 2), v);
    }
  }
}

// Blocks [q0, q1) of 16 rows of op(A) with A stored [K, M]: block q is [P][16] dwords.
SOMA_BF16 void pack_a_blocks(const float* a, int64_t lda, int64_t k, int64_t m, int64_t P,
                             uint32_t* out, int64_t q0, int64_t q1) {
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t i0 = q * 16;
    const __mmask16 rows = mask16(m - i0);
    uint32_t* blk = out + q * 16 * P;
    for (int64_t p = 0; p < P; ++p) {
      const __m512 x = _mm512_maskz_loadu_ps(rows, a + 2 * p * lda + i0);
      const __m512 y = 2 * p + 1 < k ? _mm512_maskz_loadu_ps(rows, a + (2 * p + 1) * lda + i0)
                                     : _mm512_setzero_ps();
      _mm512_storeu_si512(blk + p * 16, interleave(x, y));
    }
  }
}

// ---- the register tile ---------------------------------------------------------------------

struct Args {
  const uint32_t* ap;  // packed A
  bool blocked;        // A in 16-row blocks (else rows)
  const uint32_t* bp;  // packed B
  int64_t P, m, n;
  float alpha, beta;
  float* c;
  int64_t ldc;
};

SOMA_BF16 inline const uint32_t* a_row(const Args& g, int64_t i) {
  return g.blocked ? g.ap + (i / 16) * 16 * g.P + i % 16 : g.ap + i * g.P;
}

template <int NV, int MR>
SOMA_BF16 void tile(const Args& g, int64_t i0, int64_t n0) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  const uint32_t* ar[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) ar[i] = a_row(g, i0 + i);
  const int64_t ps = g.blocked ? 16 : 1;
  const uint32_t* b = g.bp + n0 * g.P;
  for (int64_t p = 0; p < g.P; ++p, b += NV * 16) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b + 16 * v));
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512bh av =
          reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(ar[i][p * ps])));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
    }
  }
  const __m512 alpha = _mm512_set1_ps(g.alpha), beta = _mm512_set1_ps(g.beta);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 k = mask16(g.n - n0 - 16 * v);
      float* out = g.c + (i0 + i) * g.ldc + n0 + 16 * v;
      __m512 r = _mm512_mul_ps(alpha, acc[i][v]);
      if (g.beta != 0.0f) r = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(k, out), r);
      _mm512_mask_storeu_ps(out, k, r);
    }
}

template <int NV>
SOMA_BF16 void tile_rows(const Args& g, int rows, int64_t i0, int64_t n0) {
  switch (rows) {
    case 1:
      tile<NV, 1>(g, i0, n0);
      break;
    case 2:
      tile<NV, 2>(g, i0, n0);
      break;
    case 3:
      tile<NV, 3>(g, i0, n0);
      break;
    case 4:
      tile<NV, 4>(g, i0, n0);
      break;
    case 5:
      tile<NV, 5>(g, i0, n0);
      break;
    default:
      tile<NV, 6>(g, i0, n0);
      break;
  }
}

SOMA_BF16 void compute(const Args& g, int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
  for (int64_t mc = r0; mc < r1; mc += kMC) {
    const int64_t mend = std::min(mc + kMC, r1);
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n0 = q * kPanel, nv = panel_width(g.n, n0) / 16;
      for (int64_t i = mc; i < mend; i += kMR) {
        const int rows = static_cast<int>(std::min<int64_t>(kMR, mend - i));
        switch (nv) {
          case 1:
            tile_rows<1>(g, rows, i, n0);
            break;
          case 2:
            tile_rows<2>(g, rows, i, n0);
            break;
          case 3:
            tile_rows<3>(g, rows, i, n0);
            break;
          default:
            tile_rows<4>(g, rows, i, n0);
            break;
        }
      }
    }
  }
}

// ---- a few rows (batch-1 inference): no packing of B ---------------------------------------
// Packing B costs as much as the whole product when M is tiny; these read B in place, convert
// it on the fly and use the same vdpbf16ps products (the same rounding, another summation order).
constexpr int64_t kSmallM = 4;

// op(A)'s rows (m <= kSmallM) as bfloat16 pairs, P dwords each; `tmp` holds K floats.
SOMA_BF16 void small_a(bool ta, const float* a, int64_t lda, int64_t m, int64_t k, int64_t P,
                       uint32_t* out, float* tmp) {
  if (!ta) return pack_a_rows(a, lda, k, P, out, 0, m);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t p = 0; p < k; ++p) tmp[p] = a[p * lda + i];
    pack_a_rows(tmp, k, k, P, out + i * P, 0, 1);
  }
}

// B stored [N, K] (op(B) = B^T): C[i, j] = a_i . b_j, four columns at a time, 32 k per step.
template <int MR>
SOMA_BF16 void small_bt(const uint32_t* arows, int64_t P, const float* b, int64_t ldb, int64_t k,
                        int64_t j0, int64_t j1, float alpha, float beta, float* c, int64_t ldc) {
  for (int64_t j = j0; j < j1; j += 4) {
    const int nj = static_cast<int>(std::min<int64_t>(4, j1 - j));
    __m512 acc[MR][4];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) acc[i][q] = _mm512_setzero_ps();
    for (int64_t k0 = 0; k0 < 2 * P; k0 += 32) {
      const __mmask16 lo = mask16(k - k0), hi = mask16(k - k0 - 16);
      __m512bh bv[4];
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const float* row = b + (j + (q < nj ? q : 0)) * ldb + k0;
        bv[q] = reinterpret_cast<__m512bh>(
            cvt32(_mm512_maskz_loadu_ps(lo, row), _mm512_maskz_loadu_ps(hi, row + 16)));
      }
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) {
        const __m512bh av = reinterpret_cast<__m512bh>(
            _mm512_maskz_loadu_epi32(mask16(P - k0 / 2), arows + i * P + k0 / 2));
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) acc[i][q] = _mm512_dpbf16_ps(acc[i][q], av, bv[q]);
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int q = 0; q < nj; ++q) {
        float& out = c[i * ldc + j + q];
        const float r = alpha * _mm512_reduce_add_ps(acc[i][q]);
        out = beta == 0.0f ? r : std::fma(beta, out, r);
      }
  }
}

// B stored [K, N]: rows 2p and 2p + 1 interleaved on the fly, 64 columns at a time.
template <int MR>
SOMA_BF16 void small_bn(const uint32_t* arows, int64_t P, const float* b, int64_t ldb, int64_t k,
                        int64_t j0, int64_t j1, float alpha, float beta, float* c, int64_t ldc) {
  for (int64_t j = j0; j < j1; j += 64) {
    __m512 acc[MR][4];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[i][v] = _mm512_setzero_ps();
    __mmask16 cols[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) cols[v] = mask16(j1 - j - 16 * v);
    for (int64_t p = 0; p < P; ++p) {
      __m512bh bv[4];
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        const __m512 x = _mm512_maskz_loadu_ps(cols[v], b + 2 * p * ldb + j + 16 * v);
        const __m512 y = 2 * p + 1 < k
                             ? _mm512_maskz_loadu_ps(cols[v], b + (2 * p + 1) * ldb + j + 16 * v)
                             : _mm512_setzero_ps();
        bv[v] = reinterpret_cast<__m512bh>(interleave(x, y));
      }
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) {
        const __m512bh av =
            reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(arows[i * P + p])));
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
      }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < 4; ++v) {
        float* out = c + i * ldc + j + 16 * v;
        __m512 r = _mm512_mul_ps(va, acc[i][v]);
        if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(cols[v], out), r);
        _mm512_mask_storeu_ps(out, cols[v], r);
      }
  }
}

template <int MR>
SOMA_BF16 void small_rows(bool tb, const uint32_t* arows, int64_t P, const float* b, int64_t ldb,
                          int64_t k, int64_t j0, int64_t j1, float alpha, float beta, float* c,
                          int64_t ldc) {
  if (tb)
    small_bt<MR>(arows, P, b, ldb, k, j0, j1, alpha, beta, c, ldc);
  else
    small_bn<MR>(arows, P, b, ldb, k, j0, j1, alpha, beta, c, ldc);
}

SOMA_BF16 void small_m(bool tb, int64_t m, const uint32_t* arows, int64_t P, const float* b,
                       int64_t ldb, int64_t k, int64_t j0, int64_t j1, float alpha, float beta,
                       float* c, int64_t ldc) {
  switch (m) {
    case 1:
      small_rows<1>(tb, arows, P, b, ldb, k, j0, j1, alpha, beta, c, ldc);
      break;
    case 2:
      small_rows<2>(tb, arows, P, b, ldb, k, j0, j1, alpha, beta, c, ldc);
      break;
    case 3:
      small_rows<3>(tb, arows, P, b, ldb, k, j0, j1, alpha, beta, c, ldc);
      break;
    default:
      small_rows<4>(tb, arows, P, b, ldb, k, j0, j1, alpha, beta, c, ldc);
      break;
  }
}

}  // namespace

void gemm_bf16_avx512_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                           const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                           float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const int64_t P = (k + 1) / 2;
  if (m <= kSmallM) {
    thread_local std::vector<uint32_t> rows;
    thread_local std::vector<float> tmp;
    rows.resize(static_cast<size_t>(m * P));
    if (ta) tmp.resize(static_cast<size_t>(2 * P));
    small_a(ta, a, lda, m, k, P, rows.data(), tmp.data());
    const uint32_t* ar = rows.data();
    if (cpu::num_threads() < 2 || m * n * k < kMinWork || n < 128) {
      small_m(tb, m, ar, P, b, ldb, k, 0, n, alpha, beta, c, ldc);
    } else {
      cpu::parallel_team(true, [&](int64_t t, int64_t nt) {
        const int64_t j0 = (n * t / nt) & ~int64_t{63};
        const int64_t j1 = t + 1 == nt ? n : (n * (t + 1) / nt) & ~int64_t{63};
        if (j0 < j1) small_m(tb, m, ar, P, b, ldb, k, j0, j1, alpha, beta, c, ldc);
      });
    }
    return;
  }
  const int64_t panels = (n + kPanel - 1) / kPanel;
  int64_t bsize = 0;
  for (int64_t n0 = 0; n0 < n; n0 += kPanel) bsize += panel_width(n, n0) * P;
  const int64_t ablocks = (m + 15) / 16;
  const int64_t asize = ta ? ablocks * 16 * P : m * P;
  // The calling thread's buffers (the team only reads them while this call runs).
  thread_local std::vector<uint32_t> abuf, bbuf;
  if (static_cast<int64_t>(abuf.size()) < asize) abuf.resize(static_cast<size_t>(asize));
  if (static_cast<int64_t>(bbuf.size()) < bsize) bbuf.resize(static_cast<size_t>(bsize));
  uint32_t* ap = abuf.data();
  uint32_t* bp = bbuf.data();

  const Args g{ap, ta, bp, P, m, n, alpha, beta, c, ldc};
  const int64_t a_units = ta ? ablocks : m;
  auto pack = [&](int64_t t, int64_t nt) {
    const int64_t q0 = panels * t / nt, q1 = panels * (t + 1) / nt;
    if (q0 < q1) pack_b(tb, b, ldb, k, n, P, bp, q0, q1);
    const int64_t u0 = a_units * t / nt, u1 = a_units * (t + 1) / nt;
    if (u0 < u1) {
      if (ta)
        pack_a_blocks(a, lda, k, m, P, ap, u0, u1);
      else
        pack_a_rows(a, lda, k, P, ap, u0, u1);
    }
  };
  const int threads = cpu::num_threads();
  if (threads < 2 || m * n * k < kMinWork) {
    pack(0, 1);
    compute(g, 0, m, 0, panels);
    return;
  }
  cpu::parallel_team(true, pack);
  if (m >= 4 * kMR * threads || panels < threads) {
    cpu::parallel_team(true, [&](int64_t t, int64_t nt) {
      const int64_t tiles = (m + kMR - 1) / kMR;
      const int64_t r0 = std::min(m, tiles * t / nt * kMR);
      const int64_t r1 = t + 1 == nt ? m : std::min(m, tiles * (t + 1) / nt * kMR);
      if (r0 < r1) compute(g, r0, r1, 0, panels);
    });
  } else {
    cpu::parallel_team(true, [&](int64_t t, int64_t nt) {
      const int64_t q0 = panels * t / nt, q1 = panels * (t + 1) / nt;
      if (q0 < q1) compute(g, 0, m, q0, q1);
    });
  }
}

}  // namespace soma::kernels::lowp
