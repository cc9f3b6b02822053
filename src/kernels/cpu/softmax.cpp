#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cpu/exp.h"
#include "kernels/cpu/loop.h"
#include "kernels/cpu/parallel.h"

namespace soma::kernels::cpu {
namespace {

bool parallel(int64_t work, int64_t tasks) {
  return tasks > 1 && work >= kParallelGrain / 4 && num_threads() > 1;
}

// e^v: float32 in PyTorch's bits (kernels/cpu/exp.h), float64 by libm.
template <typename T>
T exp_of(T v) {
  if constexpr (std::is_same_v<T, float>)
    return exp_float(v);
  else
    return std::exp(v);
}

// One row of n elements, `s` apart.
template <typename T>
void forward_row(const T* x, T* y, int64_t n, int64_t s, bool log) {
  T m = x[0];
  for (int64_t k = 1; k < n; ++k) m = x[k * s] > m ? x[k * s] : m;
  if (std::isinf(m) && m < 0) m = 0;  // all -inf: avoid (-inf) - (-inf)
  double sum = 0;
  if (log) {
    for (int64_t k = 0; k < n; ++k) sum += exp_of(x[k * s] - m);
    // (x - m) - log(sum), not x - (m + log(sum)): m + log(sum) would round to m's grid
    const T log_sum = static_cast<T>(std::log(sum));
    for (int64_t k = 0; k < n; ++k) y[k * s] = (x[k * s] - m) - log_sum;
  } else {
    for (int64_t k = 0; k < n; ++k) {
      const T e = exp_of(x[k * s] - m);
      y[k * s] = e;
      sum += e;
    }
    const T inv = static_cast<T>(1.0 / sum);
    for (int64_t k = 0; k < n; ++k) y[k * s] *= inv;
  }
}

template <typename T>
void backward_row(const T* y, const T* g, T* dx, int64_t n, int64_t s, bool log) {
  double dot = 0;
  if (log) {
    for (int64_t k = 0; k < n; ++k) dot += g[k * s];
    for (int64_t k = 0; k < n; ++k) dx[k * s] = g[k * s] - exp_of(y[k * s]) * static_cast<T>(dot);
  } else {
    for (int64_t k = 0; k < n; ++k) dot += static_cast<double>(g[k * s]) * y[k * s];
    for (int64_t k = 0; k < n; ++k) dx[k * s] = y[k * s] * (g[k * s] - static_cast<T>(dot));
  }
}

// Contiguous float32 rows [r0, r1) of n elements: the rows' x - max first, then one exp_float
// over the block (16 lanes at a time, not one short row at a time), then each row's sum. The
// same operations per row as forward_row, so the same bits.
constexpr int64_t kBlockRows = 64;

void forward_rows(const float* x, float* y, int64_t r0, int64_t r1, int64_t n, bool log) {
  float m[kBlockRows];
  for (int64_t b0 = r0; b0 < r1; b0 += kBlockRows) {
    const int64_t b1 = std::min(r1, b0 + kBlockRows);
    for (int64_t r = b0; r < b1; ++r) {
      const float* xr = x + r * n;
      float mr = xr[0];
      for (int64_t k = 1; k < n; ++k) mr = xr[k] > mr ? xr[k] : mr;
      if (std::isinf(mr) && mr < 0) mr = 0;
      m[r - b0] = mr;
      for (int64_t k = 0; k < n; ++k) y[r * n + k] = xr[k] - mr;
    }
    exp_float(y + b0 * n, y + b0 * n, (b1 - b0) * n);
    for (int64_t r = b0; r < b1; ++r) {
      float* yr = y + r * n;
      double sum = 0;
      for (int64_t k = 0; k < n; ++k) sum += yr[k];
      if (log) {
        const float log_sum = static_cast<float>(std::log(sum));
        const float* xr = x + r * n;
        for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - m[r - b0]) - log_sum;
      } else {
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t k = 0; k < n; ++k) yr[k] *= inv;
      }
    }
  }
}

// log_softmax's backward over contiguous float32 rows [r0, r1): e^y for the whole block first.
void log_backward_rows(const float* y, const float* g, float* dx, int64_t r0, int64_t r1,
                       int64_t n) {
  exp_float(y + r0 * n, dx + r0 * n, (r1 - r0) * n);
  for (int64_t r = r0; r < r1; ++r) {
    double dot = 0;
    for (int64_t k = 0; k < n; ++k) dot += g[r * n + k];
    const auto d = static_cast<float>(dot);
    for (int64_t k = 0; k < n; ++k) dx[r * n + k] = g[r * n + k] - dx[r * n + k] * d;
  }
}

}  // namespace

template <typename T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (n == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (inner == 1) {
      const int64_t blocks = (outer + kBlockRows - 1) / kBlockRows;
#pragma omp parallel for num_threads(num_threads()) if (parallel(outer * n, blocks))
      for (int64_t b = 0; b < blocks; ++b)
        forward_rows(x, y, b * kBlockRows, std::min(outer, (b + 1) * kBlockRows), n, log);
      return;
    }
  }
#pragma omp parallel for collapse(2) \
    num_threads(num_threads()) if (parallel(outer * n * inner, outer * inner))
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      if (inner == 1)
        forward_row(x + base, y + base, n, 1, log);
      else
        forward_row(x + base, y + base, n, inner, log);
    }
}

template <typename T>
void softmax_backward(const T* y, const T* g, T* dx, int64_t outer, int64_t n, int64_t inner,
                      bool log) {
  if (n == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (inner == 1 && log) {
      const int64_t blocks = (outer + kBlockRows - 1) / kBlockRows;
#pragma omp parallel for num_threads(num_threads()) if (parallel(outer * n, blocks))
      for (int64_t b = 0; b < blocks; ++b)
        log_backward_rows(y, g, dx, b * kBlockRows, std::min(outer, (b + 1) * kBlockRows), n);
      return;
    }
  }
#pragma omp parallel for collapse(2) \
    num_threads(num_threads()) if (parallel(outer * n * inner, outer * inner))
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      if (inner == 1)
        backward_row(y + base, g + base, dx + base, n, 1, log);
      else
        backward_row(y + base, g + base, dx + base, n, inner, log);
    }
}

template <typename T>
void softmax_reference(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (n == 0) return;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* px = x + o * n * inner + i;
      T* py = y + o * n * inner + i;
      long double m = px[0], sum = 0;
      for (int64_t k = 1; k < n; ++k) m = std::max<long double>(m, px[k * inner]);
      for (int64_t k = 0; k < n; ++k) sum += std::exp(static_cast<long double>(px[k * inner]) - m);
      for (int64_t k = 0; k < n; ++k) {
        const long double v = static_cast<long double>(px[k * inner]) - m;
        py[k * inner] = static_cast<T>(log ? v - std::log(sum) : std::exp(v) / sum);
      }
    }
}

template <typename T>
void softmax_backward_reference(const T* y, const T* g, T* dx, int64_t outer, int64_t n,
                                int64_t inner, bool log) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      long double s = 0;
      for (int64_t k = 0; k < n; ++k)
        s += log ? static_cast<long double>(g[base + k * inner])
                 : static_cast<long double>(g[base + k * inner]) * y[base + k * inner];
      for (int64_t k = 0; k < n; ++k) {
        const long double yk = y[base + k * inner], gk = g[base + k * inner];
        dx[base + k * inner] = static_cast<T>(log ? gk - std::exp(yk) * s : yk * (gk - s));
      }
    }
}

#define SOMA_INSTANTIATE(T)                                                                      \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t, int64_t, bool);               \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, bool);    \
  template void softmax_reference<T>(const T*, T*, int64_t, int64_t, int64_t, bool);             \
  template void softmax_backward_reference<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, \
                                              bool);
SOMA_INSTANTIATE(float)
SOMA_INSTANTIATE(double)
#undef SOMA_INSTANTIATE

}  // namespace soma::kernels::cpu
