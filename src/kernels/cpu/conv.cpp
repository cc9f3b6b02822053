// Convolution kernels (see conv.h). The fast path:
//   - depthwise (one input channel per group: groups == c_in, c_out = k c_in, which includes
//     a 1-channel input): direct loops per output plane, the inner loop along a row
//     (contiguous and vectorised at stride 1), threaded over planes;
//   - 1x1, stride 1, no padding: the input already is the column matrix; one GEMM per sample
//     and group straight into the output;
//   - otherwise im2col of a chunk of samples into one column buffer [c_in kh kw, chunk L]
//     (L = oh ow), one GEMM per group, the result scattered into NCHW with the bias added;
//     backward_input is the transposed GEMM then col2im, backward_weight the GEMM against the
//     columns (gb summed while the gradient is gathered).
// Threads: with at least as many samples as threads each thread takes a share of the batch
// and runs single-threaded GEMMs on its own buffers (per-thread partial gw, summed at the end);
// otherwise the chunks run in turn and the GEMM itself is threaded.
#include "kernels/cpu/conv.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/kernels.h"

namespace soma::kernels::cpu {
namespace {

// floor(a / b) and ceil(a / b) for b > 0 and any sign of a.
inline int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
inline int64_t ceil_div(int64_t a, int64_t b) {
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

// The output positions o in [0, n_out) whose input position o s - p + k d lies in [0, n_in):
// [lo, hi).
inline void valid_range(int64_t n_in, int64_t n_out, int64_t s, int64_t p, int64_t kd, int64_t& lo,
                        int64_t& hi) {
  lo = std::clamp<int64_t>(ceil_div(p - kd, s), 0, n_out);
  hi = std::clamp<int64_t>(floor_div(n_in - 1 + p - kd, s) + 1, lo, n_out);
}

template <typename T>
std::unique_ptr<T[]> buffer(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

// cols[(c kh + i) kw + j][l] (row stride ld) = x[c, oy sh - ph + i dh, ox sw - pw + j dw] for one
// sample (all c_in channels), l = oy ow + ox; 0 outside the image.
template <typename T>
void im2col_sample(const T* x, T* cols, int64_t ld, const ConvGeometry& g) {
  const int64_t hw = g.h * g.w;
  for (int64_t c = 0; c < g.c_in; ++c)
    for (int64_t i = 0; i < g.kh; ++i) {
      int64_t ylo, yhi;
      valid_range(g.h, g.oh, g.sh, g.ph, i * g.dh, ylo, yhi);
      for (int64_t j = 0; j < g.kw; ++j) {
        T* row = cols + ((c * g.kh + i) * g.kw + j) * ld;
        int64_t xlo, xhi;
        valid_range(g.w, g.ow, g.sw, g.pw, j * g.dw, xlo, xhi);
        std::fill(row, row + ylo * g.ow, T(0));
        for (int64_t oy = ylo; oy < yhi; ++oy) {
          const T* src = x + c * hw + (oy * g.sh - g.ph + i * g.dh) * g.w + (j * g.dw - g.pw);
          T* dst = row + oy * g.ow;
          std::fill(dst, dst + xlo, T(0));
          if (g.sw == 1) {
            if (xhi > xlo) std::memcpy(dst + xlo, src + xlo, sizeof(T) * (xhi - xlo));
          } else {
            for (int64_t ox = xlo; ox < xhi; ++ox) dst[ox] = src[ox * g.sw];
          }
          std::fill(dst + xhi, dst + g.ow, T(0));
        }
        std::fill(row + yhi * g.ow, row + g.oh * g.ow, T(0));
      }
    }
}

// The adjoint of im2col_sample: gx (one sample, zeroed by the caller) += the columns.
template <typename T>
void col2im_sample(const T* cols, T* gx, int64_t ld, const ConvGeometry& g) {
  const int64_t hw = g.h * g.w;
  for (int64_t c = 0; c < g.c_in; ++c)
    for (int64_t i = 0; i < g.kh; ++i) {
      int64_t ylo, yhi;
      valid_range(g.h, g.oh, g.sh, g.ph, i * g.dh, ylo, yhi);
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* row = cols + ((c * g.kh + i) * g.kw + j) * ld;
        int64_t xlo, xhi;
        valid_range(g.w, g.ow, g.sw, g.pw, j * g.dw, xlo, xhi);
        for (int64_t oy = ylo; oy < yhi; ++oy) {
          T* dst = gx + c * hw + (oy * g.sh - g.ph + i * g.dh) * g.w + (j * g.dw - g.pw);
          const T* src = row + oy * g.ow;
          if (g.sw == 1) {
            for (int64_t ox = xlo; ox < xhi; ++ox) dst[ox] += src[ox];
          } else {
            for (int64_t ox = xlo; ox < xhi; ++ox) dst[ox * g.sw] += src[ox];
          }
        }
      }
    }
}

// The direct depthwise loops multiply in T: a float32 convolution in bfloat16 (g.bf16) takes
// the im2col + gemm_precision path instead.
template <typename T>
bool is_depthwise(const ConvGeometry& g) {
  return g.groups == g.c_in && g.c_out % g.c_in == 0 && !(g.bf16 && std::is_same_v<T, float>);
}
bool is_pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
         g.oh == g.h && g.ow == g.w;
}

// Samples per column buffer: the buffer [c_in kh kw, chunk L] stays near 4 MiB.
template <typename T>
int64_t chunk_size(const ConvGeometry& g, int64_t samples) {
  constexpr int64_t kBytes = int64_t{4} << 20;
  const int64_t per_sample = std::max<int64_t>(g.c_in * g.kh * g.kw * g.oh * g.ow, 1);
  return std::clamp<int64_t>(kBytes / static_cast<int64_t>(sizeof(T)) / per_sample, 1,
                             std::max<int64_t>(samples, 1));
}

// Runs f(n0, n1, threaded_blas) over the batch: one share per thread when there are at least
// as many samples as threads (single-threaded BLAS inside), else f(0, n, true) here.
// Below this many multiply-adds a convolution runs on the calling thread.
constexpr int64_t kMinParallelWork = int64_t{1} << 18;

int batch_threads(const ConvGeometry& g) {
  const int64_t work =
      g.n * g.c_out * (g.c_in / std::max<int64_t>(g.groups, 1)) * g.kh * g.kw * g.oh * g.ow;
  const int threads = num_threads();
  return threads > 1 && g.n >= threads && work >= kMinParallelWork ? threads : 1;
}

template <typename F>
void over_batch(const ConvGeometry& g, F&& f) {
  if (batch_threads(g) > 1) {
    parallel_team(true, [&](int64_t t, int64_t nt) { f(t, g.n * t / nt, g.n * (t + 1) / nt); });
  } else {
    f(0, 0, g.n);
  }
}

// ---- depthwise --------------------------------------------------------------------------------
template <typename T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  const int64_t k = g.c_out / g.c_in, hw = g.h * g.w, L = g.oh * g.ow, taps = g.kh * g.kw;
  parallel_for(g.n * g.c_out, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(L * taps, 1)),
               [&](int64_t p0, int64_t p1) {
                 for (int64_t p = p0; p < p1; ++p) {
                   const int64_t n = p / g.c_out, oc = p % g.c_out;
                   const T* xp = x + (n * g.c_in + oc / k) * hw;
                   const T* wp = w + oc * taps;
                   T* yp = y + p * L;
                   std::fill(yp, yp + L, bias ? bias[oc] : T(0));
                   for (int64_t i = 0; i < g.kh; ++i) {
                     int64_t ylo, yhi;
                     valid_range(g.h, g.oh, g.sh, g.ph, i * g.dh, ylo, yhi);
                     for (int64_t j = 0; j < g.kw; ++j) {
                       const T wv = wp[i * g.kw + j];
                       int64_t xlo, xhi;
                       valid_range(g.w, g.ow, g.sw, g.pw, j * g.dw, xlo, xhi);
                       for (int64_t oy = ylo; oy < yhi; ++oy) {
                         const T* src = xp + (oy * g.sh - g.ph + i * g.dh) * g.w + j * g.dw - g.pw;
                         T* dst = yp + oy * g.ow;
                         if (g.sw == 1) {
                           for (int64_t ox = xlo; ox < xhi; ++ox) dst[ox] += wv * src[ox];
                         } else {
                           for (int64_t ox = xlo; ox < xhi; ++ox) dst[ox] += wv * src[ox * g.sw];
                         }
                       }
                     }
                   }
                 }
               });
}

template <typename T>
void depthwise_backward_input(const T* gy, const T* w, T* gx, const ConvGeometry& g) {
  const int64_t k = g.c_out / g.c_in, hw = g.h * g.w, L = g.oh * g.ow, taps = g.kh * g.kw;
  parallel_for(g.n * g.c_in,
               std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(k * L * taps, 1)),
               [&](int64_t p0, int64_t p1) {
                 for (int64_t p = p0; p < p1; ++p) {
                   const int64_t n = p / g.c_in, c = p % g.c_in;
                   T* xp = gx + p * hw;
                   std::fill(xp, xp + hw, T(0));
                   for (int64_t oc = c * k; oc < (c + 1) * k; ++oc) {
                     const T* yp = gy + (n * g.c_out + oc) * L;
                     const T* wp = w + oc * taps;
                     for (int64_t i = 0; i < g.kh; ++i) {
                       int64_t ylo, yhi;
                       valid_range(g.h, g.oh, g.sh, g.ph, i * g.dh, ylo, yhi);
                       for (int64_t j = 0; j < g.kw; ++j) {
                         const T wv = wp[i * g.kw + j];
                         int64_t xlo, xhi;
                         valid_range(g.w, g.ow, g.sw, g.pw, j * g.dw, xlo, xhi);
                         for (int64_t oy = ylo; oy < yhi; ++oy) {
                           T* dst = xp + (oy * g.sh - g.ph + i * g.dh) * g.w + j * g.dw - g.pw;
                           const T* src = yp + oy * g.ow;
                           if (g.sw == 1) {
                             for (int64_t ox = xlo; ox < xhi; ++ox) dst[ox] += wv * src[ox];
                           } else {
                             for (int64_t ox = xlo; ox < xhi; ++ox) dst[ox * g.sw] += wv * src[ox];
                           }
                         }
                       }
                     }
                   }
                 }
               });
}

template <typename T>
void depthwise_backward_weight(const T* x, const T* gy, T* gw, T* gb, const ConvGeometry& g) {
  const int64_t k = g.c_out / g.c_in, hw = g.h * g.w, L = g.oh * g.ow, taps = g.kh * g.kw;
  parallel_for(g.c_out, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(g.n * L * taps, 1)),
               [&](int64_t c0, int64_t c1) {
                 // per tap, a row of partial sums (a vectorised loop; summed once at the end)
                 std::vector<T> acc(static_cast<size_t>(taps * g.ow + L));
                 for (int64_t oc = c0; oc < c1; ++oc) {
                   std::fill(acc.begin(), acc.end(), T(0));
                   T* bacc = acc.data() + taps * g.ow;
                   for (int64_t n = 0; n < g.n; ++n) {
                     const T* xp = x + (n * g.c_in + oc / k) * hw;
                     const T* yp = gy + (n * g.c_out + oc) * L;
                     if (gb)
                       for (int64_t l = 0; l < L; ++l) bacc[l] += yp[l];
                     for (int64_t i = 0; i < g.kh; ++i) {
                       int64_t ylo, yhi;
                       valid_range(g.h, g.oh, g.sh, g.ph, i * g.dh, ylo, yhi);
                       for (int64_t j = 0; j < g.kw; ++j) {
                         int64_t xlo, xhi;
                         valid_range(g.w, g.ow, g.sw, g.pw, j * g.dw, xlo, xhi);
                         T* a = acc.data() + (i * g.kw + j) * g.ow;
                         for (int64_t oy = ylo; oy < yhi; ++oy) {
                           const T* src =
                               xp + (oy * g.sh - g.ph + i * g.dh) * g.w + j * g.dw - g.pw;
                           const T* gyr = yp + oy * g.ow;
                           if (g.sw == 1) {
                             for (int64_t ox = xlo; ox < xhi; ++ox) a[ox] += gyr[ox] * src[ox];
                           } else {
                             for (int64_t ox = xlo; ox < xhi; ++ox)
                               a[ox] += gyr[ox] * src[ox * g.sw];
                           }
                         }
                       }
                     }
                   }
                   for (int64_t t = 0; t < taps; ++t) {
                     T s = 0;
                     for (int64_t ox = 0; ox < g.ow; ++ox) s += acc[t * g.ow + ox];
                     gw[oc * taps + t] = s;
                   }
                   if (gb) {
                     T s = 0;
                     for (int64_t l = 0; l < L; ++l) s += bacc[l];
                     gb[oc] = s;
                   }
                 }
               });
}

}  // namespace

// ---- fast -------------------------------------------------------------------------------------
template <typename T>
void conv_forward(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  const int64_t L = g.oh * g.ow;
  if (g.n == 0 || g.c_out == 0 || L == 0) return;
  if (is_depthwise<T>(g)) return depthwise_forward(x, w, bias, y, g);
  const int64_t G = g.groups, Cg = g.c_in / G, Mg = g.c_out / G, Kg = Cg * g.kh * g.kw;
  const int64_t hw = g.h * g.w;
  auto fill_bias = [&](T* yn) {
    for (int64_t c = 0; c < g.c_out; ++c) std::fill(yn + c * L, yn + (c + 1) * L, bias[c]);
  };
  if (Kg == 0) {  // no input channels: y = bias
    for (int64_t n = 0; n < g.n; ++n) {
      if (bias)
        fill_bias(y + n * g.c_out * L);
      else
        std::fill(y + n * g.c_out * L, y + (n + 1) * g.c_out * L, T(0));
    }
    return;
  }
  const T beta = bias ? T(1) : T(0);
  if (is_pointwise(g)) {
    over_batch(g, [&](int64_t, int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        T* yn = y + n * g.c_out * L;
        if (bias) fill_bias(yn);
        for (int64_t gi = 0; gi < G; ++gi)
          kernels::gemm_precision<T>(g.bf16, false, false, Mg, L, Cg, T(1), w + gi * Mg * Kg, Kg,
                                     x + (n * g.c_in + gi * Cg) * hw, L, beta, yn + gi * Mg * L, L);
      }
    });
    return;
  }
  const int64_t chunk = chunk_size<T>(g, g.n / std::max(num_threads(), 1));
  over_batch(g, [&](int64_t, int64_t n0, int64_t n1) {
    const int64_t cs_max = std::min(chunk, std::max<int64_t>(n1 - n0, 1));
    auto cols = buffer<T>(G * Kg * cs_max * L);
    std::unique_ptr<T[]> out = cs_max > 1 ? buffer<T>(g.c_out * cs_max * L) : nullptr;
    for (int64_t s0 = n0; s0 < n1; s0 += cs_max) {
      const int64_t cs = std::min(cs_max, n1 - s0), ld = cs * L;
      for (int64_t s = 0; s < cs; ++s)
        im2col_sample(x + (s0 + s) * g.c_in * hw, cols.get() + s * L, ld, g);
      if (cs == 1) {  // straight into y
        T* yn = y + s0 * g.c_out * L;
        if (bias) fill_bias(yn);
        for (int64_t gi = 0; gi < G; ++gi)
          kernels::gemm_precision<T>(g.bf16, false, false, Mg, L, Kg, T(1), w + gi * Mg * Kg, Kg,
                                     cols.get() + gi * Kg * ld, ld, beta, yn + gi * Mg * L, L);
        continue;
      }
      for (int64_t gi = 0; gi < G; ++gi)
        kernels::gemm_precision<T>(g.bf16, false, false, Mg, ld, Kg, T(1), w + gi * Mg * Kg, Kg,
                                   cols.get() + gi * Kg * ld, ld, T(0), out.get() + gi * Mg * ld,
                                   ld);
      for (int64_t s = 0; s < cs; ++s)
        for (int64_t c = 0; c < g.c_out; ++c) {
          const T* src = out.get() + c * ld + s * L;
          T* dst = y + ((s0 + s) * g.c_out + c) * L;
          const T b = bias ? bias[c] : T(0);
          for (int64_t l = 0; l < L; ++l) dst[l] = src[l] + b;
        }
    }
  });
}

// Samples s0 .. s0 + cs of a [n, channels, L] tensor as one [channels, cs L] matrix (what
// one GEMM over a chunk of samples wants): the tensor itself for one sample, else gathered
// into `buf`.
template <typename T>
const T* gather_chunk(const T* src, T* buf, int64_t s0, int64_t cs, int64_t channels, int64_t L) {
  if (cs == 1) return src + s0 * channels * L;
  const int64_t ld = cs * L;
  for (int64_t s = 0; s < cs; ++s)
    for (int64_t c = 0; c < channels; ++c)
      std::memcpy(buf + c * ld + s * L, src + ((s0 + s) * channels + c) * L, sizeof(T) * L);
  return buf;
}

template <typename T>
void conv_backward_input(const T* gy, const T* w, T* gx, const ConvGeometry& g) {
  const int64_t L = g.oh * g.ow, hw = g.h * g.w;
  if (g.n == 0 || g.c_in == 0 || hw == 0) return;
  if (L == 0 || g.c_out == 0) {
    std::fill(gx, gx + g.n * g.c_in * hw, T(0));
    return;
  }
  if (is_depthwise<T>(g)) return depthwise_backward_input(gy, w, gx, g);
  const int64_t G = g.groups, Cg = g.c_in / G, Mg = g.c_out / G, Kg = Cg * g.kh * g.kw;
  if (is_pointwise(g)) {
    over_batch(g, [&](int64_t, int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t gi = 0; gi < G; ++gi)
          kernels::gemm_precision<T>(g.bf16, true, false, Cg, L, Mg, T(1), w + gi * Mg * Kg, Kg,
                                     gy + (n * g.c_out + gi * Mg) * L, L, T(0),
                                     gx + (n * g.c_in + gi * Cg) * hw, L);
    });
    return;
  }
  const int64_t chunk = chunk_size<T>(g, g.n / std::max(num_threads(), 1));
  over_batch(g, [&](int64_t, int64_t n0, int64_t n1) {
    const int64_t cs_max = std::min(chunk, std::max<int64_t>(n1 - n0, 1));
    auto cols = buffer<T>(G * Kg * cs_max * L);
    std::unique_ptr<T[]> in = cs_max > 1 ? buffer<T>(g.c_out * cs_max * L) : nullptr;
    for (int64_t s0 = n0; s0 < n1; s0 += cs_max) {
      const int64_t cs = std::min(cs_max, n1 - s0), ld = cs * L;
      const T* gyc = gather_chunk(gy, in.get(), s0, cs, g.c_out, L);
      for (int64_t gi = 0; gi < G; ++gi)
        kernels::gemm_precision<T>(g.bf16, true, false, Kg, ld, Mg, T(1), w + gi * Mg * Kg, Kg,
                                   gyc + gi * Mg * ld, ld, T(0), cols.get() + gi * Kg * ld, ld);
      for (int64_t s = 0; s < cs; ++s) {
        T* gxn = gx + (s0 + s) * g.c_in * hw;
        std::fill(gxn, gxn + g.c_in * hw, T(0));
        col2im_sample(cols.get() + s * L, gxn, ld, g);
      }
    }
  });
}

template <typename T>
void conv_backward_weight(const T* x, const T* gy, T* gw, T* gb, const ConvGeometry& g) {
  const int64_t L = g.oh * g.ow, hw = g.h * g.w;
  const int64_t G = g.groups, Cg = g.c_in / G, Mg = g.c_out / G, Kg = Cg * g.kh * g.kw;
  const int64_t wsize = g.c_out * Kg;
  if (g.n == 0 || L == 0) {
    std::fill(gw, gw + wsize, T(0));
    if (gb) std::fill(gb, gb + g.c_out, T(0));
    return;
  }
  if (is_depthwise<T>(g)) return depthwise_backward_weight(x, gy, gw, gb, g);
  const int64_t parts = batch_threads(g);
  // partial gw (and gb) per thread: part 0 is gw itself
  std::vector<T> partial(static_cast<size_t>((parts - 1) * (wsize + g.c_out)), T(0));
  std::vector<T> bsum(static_cast<size_t>(g.c_out), T(0));
  auto gw_of = [&](int64_t t) { return t == 0 ? gw : partial.data() + (t - 1) * wsize; };
  auto gb_of = [&](int64_t t) {
    return t == 0 ? bsum.data() : partial.data() + (parts - 1) * wsize + (t - 1) * g.c_out;
  };
  std::fill(gw, gw + wsize, T(0));
  const bool pointwise = is_pointwise(g);
  const int64_t chunk = chunk_size<T>(g, g.n / parts);
  over_batch(g, [&](int64_t t, int64_t n0, int64_t n1) {
    T* gwt = gw_of(t);
    T* gbt = gb_of(t);
    if (gb)
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t c = 0; c < g.c_out; ++c) {
          const T* src = gy + (n * g.c_out + c) * L;
          T s = 0;
          for (int64_t l = 0; l < L; ++l) s += src[l];
          gbt[c] += s;
        }
    if (Kg == 0) return;
    if (pointwise) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t gi = 0; gi < G; ++gi)
          kernels::gemm_precision<T>(
              g.bf16, false, true, Mg, Cg, L, T(1), gy + (n * g.c_out + gi * Mg) * L, L,
              x + (n * g.c_in + gi * Cg) * hw, L, T(1), gwt + gi * Mg * Kg, Kg);
      return;
    }
    const int64_t cs_max = std::min(chunk, std::max<int64_t>(n1 - n0, 1));
    auto cols = buffer<T>(G * Kg * cs_max * L);
    std::unique_ptr<T[]> in = cs_max > 1 ? buffer<T>(g.c_out * cs_max * L) : nullptr;
    for (int64_t s0 = n0; s0 < n1; s0 += cs_max) {
      const int64_t cs = std::min(cs_max, n1 - s0), ld = cs * L;
      for (int64_t s = 0; s < cs; ++s)
        im2col_sample(x + (s0 + s) * g.c_in * hw, cols.get() + s * L, ld, g);
      const T* gyc = gather_chunk(gy, in.get(), s0, cs, g.c_out, L);
      for (int64_t gi = 0; gi < G; ++gi)
        kernels::gemm_precision<T>(g.bf16, false, true, Mg, Kg, ld, T(1), gyc + gi * Mg * ld, ld,
                                   cols.get() + gi * Kg * ld, ld, T(1), gwt + gi * Mg * Kg, Kg);
    }
  });
  for (int64_t t = 1; t < parts; ++t) {
    const T* p = gw_of(t);
    for (int64_t i = 0; i < wsize; ++i) gw[i] += p[i];
    const T* b = gb_of(t);
    for (int64_t c = 0; c < g.c_out; ++c) bsum[c] += b[c];
  }
  if (gb) std::copy(bsum.begin(), bsum.end(), gb);
}

// ---- reference ---------------------------------------------------------------------------------
template <typename T>
void conv_forward_reference(const T* x, const T* w, const T* bias, T* y, const ConvGeometry& g) {
  const int64_t Cg = g.c_in / g.groups, Mg = g.c_out / g.groups;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oc = 0; oc < g.c_out; ++oc)
      for (int64_t oy = 0; oy < g.oh; ++oy)
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          long double s = bias ? bias[oc] : T(0);
          const int64_t gi = oc / Mg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                s += static_cast<long double>(
                         x[((n * g.c_in + gi * Cg + c) * g.h + iy) * g.w + ix]) *
                     w[((oc * Cg + c) * g.kh + i) * g.kw + j];
              }
          y[((n * g.c_out + oc) * g.oh + oy) * g.ow + ox] = static_cast<T>(s);
        }
}

template <typename T>
void conv_backward_input_reference(const T* gy, const T* w, T* gx, const ConvGeometry& g) {
  const int64_t Cg = g.c_in / g.groups, Mg = g.c_out / g.groups;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t ic = 0; ic < g.c_in; ++ic)
      for (int64_t iy = 0; iy < g.h; ++iy)
        for (int64_t ix = 0; ix < g.w; ++ix) {
          long double s = 0;
          const int64_t gi = ic / Cg, c = ic % Cg;
          for (int64_t oc = gi * Mg; oc < (gi + 1) * Mg; ++oc)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ty = iy + g.ph - i * g.dh, tx = ix + g.pw - j * g.dw;
                if (ty < 0 || tx < 0 || ty % g.sh != 0 || tx % g.sw != 0) continue;
                const int64_t oy = ty / g.sh, ox = tx / g.sw;
                if (oy >= g.oh || ox >= g.ow) continue;
                s += static_cast<long double>(gy[((n * g.c_out + oc) * g.oh + oy) * g.ow + ox]) *
                     w[((oc * Cg + c) * g.kh + i) * g.kw + j];
              }
          gx[((n * g.c_in + ic) * g.h + iy) * g.w + ix] = static_cast<T>(s);
        }
}

template <typename T>
void conv_backward_weight_reference(const T* x, const T* gy, T* gw, T* gb, const ConvGeometry& g) {
  const int64_t Cg = g.c_in / g.groups, Mg = g.c_out / g.groups;
  for (int64_t oc = 0; oc < g.c_out; ++oc) {
    const int64_t gi = oc / Mg;
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          long double s = 0;
          for (int64_t n = 0; n < g.n; ++n)
            for (int64_t oy = 0; oy < g.oh; ++oy)
              for (int64_t ox = 0; ox < g.ow; ++ox) {
                const int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                s += static_cast<long double>(gy[((n * g.c_out + oc) * g.oh + oy) * g.ow + ox]) *
                     x[((n * g.c_in + gi * Cg + c) * g.h + iy) * g.w + ix];
              }
          gw[((oc * Cg + c) * g.kh + i) * g.kw + j] = static_cast<T>(s);
        }
    if (gb) {
      long double s = 0;
      for (int64_t n = 0; n < g.n; ++n)
        for (int64_t l = 0; l < g.oh * g.ow; ++l) s += gy[(n * g.c_out + oc) * g.oh * g.ow + l];
      gb[oc] = static_cast<T>(s);
    }
  }
}

#define SOMA_INSTANTIATE(T)                                                                       \
  template void conv_forward<T>(const T*, const T*, const T*, T*, const ConvGeometry&);           \
  template void conv_backward_input<T>(const T*, const T*, T*, const ConvGeometry&);              \
  template void conv_backward_weight<T>(const T*, const T*, T*, T*, const ConvGeometry&);         \
  template void conv_forward_reference<T>(const T*, const T*, const T*, T*, const ConvGeometry&); \
  template void conv_backward_input_reference<T>(const T*, const T*, T*, const ConvGeometry&);    \
  template void conv_backward_weight_reference<T>(const T*, const T*, T*, T*, const ConvGeometry&);
SOMA_INSTANTIATE(float)
SOMA_INSTANTIATE(double)
#undef SOMA_INSTANTIATE

}  // namespace soma::kernels::cpu
