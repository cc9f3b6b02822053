// Data-pipeline kernels: normalisation to float32, zero-padded crop, horizontal flip.
#include "kernels/cpu/data.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_isa.h"

namespace soma::kernels::cpu {

namespace {

// Rows of `row_elems` elements per parallel chunk so that a chunk holds about kParallelGrain
// elements (the same threshold as every other elementwise kernel).
int64_t row_grain(int64_t row_elems) {
  return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, row_elems));
}

template <int64_t Size>
struct Word {
  unsigned char b[Size];
};

template <int64_t Size>
void reverse_row(const unsigned char* src, unsigned char* dst, int64_t w) {
  const auto* s = reinterpret_cast<const Word<Size>*>(src);
  auto* d = reinterpret_cast<Word<Size>*>(dst);
  for (int64_t c = 0; c < w; ++c) std::memcpy(&d[c], &s[w - 1 - c], Size);
}

void reverse_row(const unsigned char* src, unsigned char* dst, int64_t w, int64_t elem) {
  switch (elem) {
    case 1:
      return reverse_row<1>(src, dst, w);
    case 2:
      return reverse_row<2>(src, dst, w);
    case 4:
      return reverse_row<4>(src, dst, w);
    case 8:
      return reverse_row<8>(src, dst, w);
    default:
      for (int64_t c = 0; c < w; ++c) std::memcpy(dst + c * elem, src + (w - 1 - c) * elem, elem);
  }
}

}  // namespace

#if SOMA_HAVE_TARGET_AVX512
namespace {

// out[j] = table[p[j]] for a 256-entry table held in 16 registers: each group of 16 bytes is
// looked up in the eight 32-entry halves by two-source permutes (the index's low 5 bits) and
// the eight results are merged by bits 5, 6 and 7. About twice the scalar loop's speed (which
// GCC vectorises as element-by-element inserts, not gathers).
SOMA_TARGET_AVX512 void lookup_avx512(const uint8_t* p, float* out, int64_t n, const float* table) {
  __m512 t[16];
  for (int q = 0; q < 16; ++q) t[q] = _mm512_loadu_ps(table + 16 * q);
  const __m512i bit5 = _mm512_set1_epi32(32), bit6 = _mm512_set1_epi32(64),
                bit7 = _mm512_set1_epi32(128);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512i idx =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + j)));
    __m512 r[8];
    for (int q = 0; q < 8; ++q) r[q] = _mm512_permutex2var_ps(t[2 * q], idx, t[2 * q + 1]);
    const __mmask16 m5 = _mm512_test_epi32_mask(idx, bit5), m6 = _mm512_test_epi32_mask(idx, bit6),
                    m7 = _mm512_test_epi32_mask(idx, bit7);
    for (int q = 0; q < 4; ++q) r[q] = _mm512_mask_blend_ps(m5, r[2 * q], r[2 * q + 1]);
    for (int q = 0; q < 2; ++q) r[q] = _mm512_mask_blend_ps(m6, r[2 * q], r[2 * q + 1]);
    _mm512_storeu_ps(out + j, _mm512_mask_blend_ps(m7, r[0], r[1]));
  }
  for (; j < n; ++j) out[j] = table[p[j]];
}

}  // namespace
#endif

template <typename T>
void normalize(const T* x, float* out, int64_t outer, int64_t channels, int64_t inner, double scale,
               const double* mean, const double* std) {
  if (outer <= 0 || channels <= 0 || inner <= 0) return;
  const double sc = scale;
  if constexpr (std::is_same_v<T, uint8_t>) {
    // uint8 (images): 256 possible inputs per channel. When the batch holds more elements than
    // the channels' tables, the formula is evaluated once per (channel, byte value) and the
    // batch is a table lookup: the same bits as the formula, and no double arithmetic (nor a
    // library call for std::fma where the baseline ISA has no FMA) per element.
    const int64_t total = outer * channels * inner;
    if (channels * 256 <= total) {
      std::vector<float> lut(static_cast<size_t>(channels * 256));
      for (int64_t c = 0; c < channels; ++c)
        for (int v = 0; v < 256; ++v)
          lut[static_cast<size_t>(c * 256 + v)] =
              static_cast<float>((static_cast<double>(v) * sc - mean[c]) / std[c]);
      const float* table = lut.data();
      if (inner == 1) {  // tabular [rows, features]: feature j's table is row j of lut
        parallel_for(outer, row_grain(channels), [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i)
            for (int64_t j = 0; j < channels; ++j)
              out[i * channels + j] = table[j * 256 + x[i * channels + j]];
        });
        return;
      }
      const bool avx512 = SOMA_HAVE_TARGET_AVX512 && vector_level() == 2;
      parallel_for(total, kParallelGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end;) {
          const int64_t r = i / inner, stop = std::min(end, (r + 1) * inner);
          const float* t = table + (r % channels) * 256;
          const uint8_t* p = x + i;
          float* po = out + i;
#if SOMA_HAVE_TARGET_AVX512
          if (avx512) {
            lookup_avx512(p, po, stop - i, t);
            i = stop;
            continue;
          }
#endif
          for (int64_t j = 0, len = stop - i; j < len; ++j) po[j] = t[p[j]];
          i = stop;
        }
      });
      return;
    }
  }
  if (inner == 1) {
    // Tabular [rows, features]: one statistic per column.
    parallel_for(outer, row_grain(channels), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        for (int64_t j = 0; j < channels; ++j)
          out[i * channels + j] = static_cast<float>(
              (static_cast<double>(x[i * channels + j]) * sc - mean[j]) / std[j]);
    });
    return;
  }
  // Split over elements (a batch of one channel is a single row), a chunk at a time per row.
  parallel_for(outer * channels * inner, kParallelGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const int64_t r = i / inner, c = r % channels, stop = std::min(end, (r + 1) * inner);
      const T* p = x + i;
      float* po = out + i;
      const double mu = mean[c], sd = std[c];
      for (int64_t j = 0, len = stop - i; j < len; ++j)
        po[j] = static_cast<float>((static_cast<double>(p[j]) * sc - mu) / sd);
      i = stop;
    }
  });
}

template void normalize<float>(const float*, float*, int64_t, int64_t, int64_t, double,
                               const double*, const double*);
template void normalize<double>(const double*, float*, int64_t, int64_t, int64_t, double,
                                const double*, const double*);
template void normalize<int64_t>(const int64_t*, float*, int64_t, int64_t, int64_t, double,
                                 const double*, const double*);
template void normalize<bool>(const bool*, float*, int64_t, int64_t, int64_t, double, const double*,
                              const double*);
template void normalize<uint8_t>(const uint8_t*, float*, int64_t, int64_t, int64_t, double,
                                 const double*, const double*);

void pad_crop(const void* x, void* out, int64_t elem_size, int64_t n, int64_t planes, int64_t h,
              int64_t w, int64_t oh, int64_t ow, int64_t pad, const int64_t* top,
              const int64_t* left) {
  const auto* src = static_cast<const unsigned char*>(x);
  auto* dst = static_cast<unsigned char*>(out);
  const int64_t in_plane = h * w * elem_size, out_plane = oh * ow * elem_size;
  parallel_for(n * planes, row_grain(oh * ow), [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const int64_t k = q / planes;
      const int64_t r0 = top[k] - pad, c0 = left[k] - pad;  // window origin in x's coordinates
      // Columns of the window that fall inside x: [c_lo, c_hi) of the output row.
      const int64_t c_lo = std::clamp<int64_t>(-c0, 0, ow);
      const int64_t c_hi = std::clamp<int64_t>(w - c0, c_lo, ow);
      const unsigned char* sp = src + q * in_plane;
      unsigned char* dp = dst + q * out_plane;
      for (int64_t r = 0; r < oh; ++r) {
        unsigned char* drow = dp + r * ow * elem_size;
        const int64_t sr = r + r0;
        if (sr < 0 || sr >= h || c_hi <= c_lo) {
          std::memset(drow, 0, static_cast<size_t>(ow * elem_size));
          continue;
        }
        if (c_lo > 0) std::memset(drow, 0, static_cast<size_t>(c_lo * elem_size));
        std::memcpy(drow + c_lo * elem_size, sp + (sr * w + c0 + c_lo) * elem_size,
                    static_cast<size_t>((c_hi - c_lo) * elem_size));
        if (c_hi < ow)
          std::memset(drow + c_hi * elem_size, 0, static_cast<size_t>((ow - c_hi) * elem_size));
      }
    }
  });
}

void hflip(const void* x, void* out, int64_t elem_size, int64_t n, int64_t rows, int64_t w,
           const uint8_t* flip) {
  const auto* src = static_cast<const unsigned char*>(x);
  auto* dst = static_cast<unsigned char*>(out);
  const int64_t row_bytes = w * elem_size;
  parallel_for(n * rows, row_grain(w), [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const unsigned char* s = src + q * row_bytes;
      unsigned char* d = dst + q * row_bytes;
      if (flip[q / rows])
        reverse_row(s, d, w, elem_size);
      else
        std::memcpy(d, s, static_cast<size_t>(row_bytes));
    }
  });
}

template <typename T>
void normalize_reference(const T* x, float* out, int64_t outer, int64_t channels, int64_t inner,
                         double scale, const double* mean, const double* std) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t k = (o * channels + c) * inner + i;
        out[k] = static_cast<float>((static_cast<double>(x[k]) * scale - mean[c]) / std[c]);
      }
}
template void normalize_reference<float>(const float*, float*, int64_t, int64_t, int64_t, double,
                                         const double*, const double*);
template void normalize_reference<double>(const double*, float*, int64_t, int64_t, int64_t, double,
                                          const double*, const double*);
template void normalize_reference<int64_t>(const int64_t*, float*, int64_t, int64_t, int64_t,
                                           double, const double*, const double*);
template void normalize_reference<bool>(const bool*, float*, int64_t, int64_t, int64_t, double,
                                        const double*, const double*);
template void normalize_reference<uint8_t>(const uint8_t*, float*, int64_t, int64_t, int64_t,
                                           double, const double*, const double*);

void pad_crop_reference(const void* x, void* out, int64_t elem_size, int64_t n, int64_t planes,
                        int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t pad,
                        const int64_t* top, const int64_t* left) {
  const auto* src = static_cast<const unsigned char*>(x);
  auto* dst = static_cast<unsigned char*>(out);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t r = 0; r < oh; ++r)
        for (int64_t c = 0; c < ow; ++c) {
          const int64_t sr = r + top[k] - pad, sc = c + left[k] - pad;
          unsigned char* d = dst + (((k * planes + p) * oh + r) * ow + c) * elem_size;
          for (int64_t b = 0; b < elem_size; ++b)
            d[b] = sr >= 0 && sr < h && sc >= 0 && sc < w
                       ? src[(((k * planes + p) * h + sr) * w + sc) * elem_size + b]
                       : 0;
        }
}

void hflip_reference(const void* x, void* out, int64_t elem_size, int64_t n, int64_t rows,
                     int64_t w, const uint8_t* flip) {
  const auto* src = static_cast<const unsigned char*>(x);
  auto* dst = static_cast<unsigned char*>(out);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < w; ++c)
        for (int64_t b = 0; b < elem_size; ++b)
          dst[((k * rows + r) * w + c) * elem_size + b] =
              src[((k * rows + r) * w + (flip[k] ? w - 1 - c : c)) * elem_size + b];
}

}  // namespace soma::kernels::cpu
