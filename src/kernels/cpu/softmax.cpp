#include "kernels/cpu/softmax.h"

#include <cmath>

#include "kernels/cpu/loop.h"
#include "kernels/cpu/parallel.h"

namespace soma::kernels::cpu {
namespace {

bool parallel(int64_t work, int64_t tasks) {
  return tasks > 1 && work >= kParallelGrain / 4 && num_threads() > 1;
}

// One row of n elements, `s` apart.
template <typename T>
void forward_row(const T* x, T* y, int64_t n, int64_t s, bool log) {
  T m = x[0];
  for (int64_t k = 1; k < n; ++k) m = x[k * s] > m ? x[k * s] : m;
  if (std::isinf(m) && m < 0) m = 0;  // all -inf: avoid (-inf) - (-inf)
  double sum = 0;
  if (log) {
    for (int64_t k = 0; k < n; ++k) sum += std::exp(x[k * s] - m);
    // (x - m) - log(sum), not x - (m + log(sum)): m + log(sum) would round to m's grid
    const T log_sum = static_cast<T>(std::log(sum));
    for (int64_t k = 0; k < n; ++k) y[k * s] = (x[k * s] - m) - log_sum;
  } else {
    for (int64_t k = 0; k < n; ++k) {
      const T e = std::exp(x[k * s] - m);
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
    for (int64_t k = 0; k < n; ++k) dx[k * s] = g[k * s] - std::exp(y[k * s]) * static_cast<T>(dot);
  } else {
    for (int64_t k = 0; k < n; ++k) dot += static_cast<double>(g[k * s]) * y[k * s];
    for (int64_t k = 0; k < n; ++k) dx[k * s] = y[k * s] * (g[k * s] - static_cast<T>(dot));
  }
}

}  // namespace

template <typename T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (n == 0) return;
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
