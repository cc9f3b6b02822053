#include "kernels/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_isa.h"

// GCC notes that the 16-lane vectors below change the ABI of calls without AVX-512: they are
// always inlined, so no call passes one. For the whole file: GCC reports it as it emits the
// functions, after the last line.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace soma::kernels::cpu {
namespace {

// Channels per task so that a task holds about kParallelGrain elements.
int64_t channel_grain(int64_t per_channel) {
  return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, per_channel));
}

// 16 lanes of T as one GCC vector: a zmm register for float in the AVX-512 copy, two ymm in the
// AVX2 one, four xmm in the baseline one. Lane-wise arithmetic, so every copy gives the same bits.
typedef float F16 __attribute__((vector_size(64)));
typedef double D16 __attribute__((vector_size(128)));
template <typename T>
struct LanesOf;
template <>
struct LanesOf<float> {
  using type = F16;
};
template <>
struct LanesOf<double> {
  using type = D16;
};

// *p as U: T itself, or 16 consecutive elements as a lane vector.
template <typename U, typename T>
SOMA_VECTOR_INLINE U load(const T* p) {
  if constexpr (std::is_same_v<U, T>) {
    return *p;
  } else {
    U u;
    std::memcpy(&u, p, sizeof u);
    return u;
  }
}

// Running sums s = sum(u), ss = sum(v) over runs of contiguous elements, (u, v) = pair(i, u, v)
// with u, v either T or 16 lanes of T (pair is generic over the two: see norm_stats). Element i
// of a run goes to lane i mod 16 in T; once a lane holds 64 terms, the lanes are flushed into 16
// double lanes, summed in lane order at the end. The lanes carry over from run to run (a
// channel's planes), so a 196-element plane costs 13 vector steps and no horizontal sum.
template <typename T>
struct LaneSums {
  using V = typename LanesOf<T>::type;
  static constexpr int64_t kLanes = 16, kTerms = 64;
  V l1{}, l2{};
  D16 d1{}, d2{};
  int64_t terms = 0;  // the most terms any lane of l1/l2 holds since the last flush (< kTerms)

  template <typename F>
  SOMA_VECTOR_INLINE void add(int64_t n, F pair) {
    int64_t k = 0;
    while (n - k >= kLanes) {
      const int64_t steps = std::min((n - k) / kLanes, kTerms - terms);
      for (const int64_t end = k + steps * kLanes; k < end; k += kLanes) {
        V u, v;
        pair(k, u, v);
        l1 += u;
        l2 += v;
      }
      terms += steps;
      if (terms == kTerms) flush();
    }
    if (k < n) {  // the run's last n mod 16 elements, into lanes 0, 1, ...
      for (int j = 0; k < n; ++k, ++j) {
        T u, v;
        pair(k, u, v);
        l1[j] += u;
        l2[j] += v;
      }
      if (++terms == kTerms) flush();
    }
  }
  SOMA_VECTOR_INLINE void flush() {
    d1 += __builtin_convertvector(l1, D16);
    d2 += __builtin_convertvector(l2, D16);
    l1 = V{};
    l2 = V{};
    terms = 0;
  }
  SOMA_VECTOR_INLINE void total(double& s, double& ss) {
    flush();
    s = ss = 0;
    for (int j = 0; j < kLanes; ++j) {
      s += d1[j];
      ss += d2[j];
    }
  }
};

// Column sums for B == 1 ([A, C], one value per (a, c)): s1[c] = sum_a u, s2[c] = sum_a v where
// (u, v) = pair(a, c); chunks of channels in parallel, rows accumulated in T for kRows rows then
// flushed into double.
template <typename T, typename F>
void column_sums(int64_t A, int64_t C, F pair, double* s1, double* s2) {
  constexpr int64_t kCols = 256, kRows = 64;
  const int64_t chunks = (C + kCols - 1) / kCols;
  parallel_for(chunks, channel_grain(A * kCols), [&](int64_t c0, int64_t c1) {
    with_vector_isa([&]() SOMA_VECTOR_BODY {
      for (int64_t chunk = c0; chunk < c1; ++chunk) {
        const int64_t i0 = chunk * kCols, w = std::min(kCols, C - i0);
        double a1[kCols] = {}, a2[kCols] = {};
        for (int64_t r0 = 0; r0 < A; r0 += kRows) {
          T p1[kCols] = {}, p2[kCols] = {};
          const int64_t r1 = std::min(A, r0 + kRows);
          for (int64_t a = r0; a < r1; ++a)
            for (int64_t j = 0; j < w; ++j) {
              T u, v;
              pair(a, i0 + j, u, v);
              p1[j] += u;
              p2[j] += v;
            }
          for (int64_t j = 0; j < w; ++j) {
            a1[j] += p1[j];
            a2[j] += p2[j];
          }
        }
        for (int64_t j = 0; j < w; ++j) {
          s1[i0 + j] = a1[j];
          s2[i0 + j] = a2[j];
        }
      }
    });
  });
}

}  // namespace

template <typename T>
void norm_stats(const T* x, int64_t A, int64_t C, int64_t B, T* mean, T* var) {
  const double n = static_cast<double>(A * B);
  // One pass of sums shifted by a channel element k: mean = k + s/n, var = ss/n - (s/n)^2. When
  // k lies far from the mean next to the spread (an outlier first element), that difference
  // cancels: if (s/n)^2 is more than 15/16 of ss/n (var below 1/16 of it, 4 bits lost), the
  // channel is summed again shifted by the first pass's mean.
  auto cancels = [&](double s, double ss) {
    const double m = s / n;
    return m * m > 0.9375 * (ss / n);
  };
  auto finish = [&](int64_t c, double shift, double s, double ss) {
    const double m = s / n;
    mean[c] = static_cast<T>(shift + m);
    var[c] = static_cast<T>(std::max(0.0, ss / n - m * m));
  };
  if (B == 1 && A > 1) {
    std::vector<double> s(C), ss(C);
    std::vector<T> shift(x, x + C);  // row 0
    auto sums = [&] {
      column_sums<T>(
          A, C,
          [&](int64_t a, int64_t c, T& u, T& v) SOMA_VECTOR_BODY {
            u = x[a * C + c] - shift[c];
            v = u * u;
          },
          s.data(), ss.data());
    };
    sums();
    bool again = false;
    for (int64_t c = 0; c < C; ++c)
      if (cancels(s[c], ss[c])) {
        shift[c] = static_cast<T>(shift[c] + s[c] / n);
        again = true;
      }
    if (again) sums();  // the other channels' shifts, and so their sums, are unchanged
    for (int64_t c = 0; c < C; ++c) finish(c, shift[c], s[c], ss[c]);
    return;
  }
  parallel_for(C, channel_grain(A * B), [&](int64_t c0, int64_t c1) {
    with_vector_isa([&]() SOMA_VECTOR_BODY {
      auto sums = [&](int64_t c, T k, double& s, double& ss) SOMA_VECTOR_BODY {
        LaneSums<T> lanes;
        for (int64_t a = 0; a < A; ++a) {
          const T* p = x + (a * C + c) * B;
          lanes.add(B, [p, k](int64_t i, auto& u, auto& v) SOMA_VECTOR_BODY {
            using U = std::remove_reference_t<decltype(u)>;
            u = load<U>(p + i) - k;
            v = u * u;
          });
        }
        lanes.total(s, ss);
      };
      for (int64_t c = c0; c < c1; ++c) {
        T k = x[c * B];
        double s, ss;
        sums(c, k, s, ss);
        if (cancels(s, ss)) {
          k = static_cast<T>(k + s / n);
          sums(c, k, s, ss);
        }
        finish(c, k, s, ss);
      }
    });
  });
}

template <typename T>
void norm_affine(const T* x, T* y, int64_t A, int64_t C, int64_t B, const T* mean, const T* scale,
                 const T* shift) {
  if (B == 1) {
    parallel_for(A, channel_grain(C), [&](int64_t a0, int64_t a1) {
      with_vector_isa([&]() SOMA_VECTOR_BODY {
        for (int64_t a = a0; a < a1; ++a) {
          const T* p = x + a * C;
          T* q = y + a * C;
          for (int64_t c = 0; c < C; ++c) q[c] = (p[c] - mean[c]) * scale[c] + shift[c];
        }
      });
    });
    return;
  }
  parallel_for(A * C, channel_grain(B), [&](int64_t r0, int64_t r1) {
    with_vector_isa([&]() SOMA_VECTOR_BODY {
      for (int64_t r = r0; r < r1; ++r) {
        const T m = mean[r % C], s = scale[r % C], t = shift[r % C];
        const T* p = x + r * B;
        T* q = y + r * B;
        for (int64_t i = 0; i < B; ++i) q[i] = (p[i] - m) * s + t;
      }
    });
  });
}

template <typename T>
void layer_norm_apply(const T* x, T* y, int64_t M, int64_t K, const T* mean, const T* rstd,
                      const T* w, const T* b) {
  parallel_for(M, channel_grain(K), [&](int64_t m0, int64_t m1) {
    with_vector_isa([&]() SOMA_VECTOR_BODY {
      for (int64_t m = m0; m < m1; ++m) {
        const T r = rstd[m], mu = mean[m];
        const T* p = x + m * K;
        T* q = y + m * K;
        if (w && b)
          for (int64_t k = 0; k < K; ++k) q[k] = (p[k] - mu) * r * w[k] + b[k];
        else if (w)
          for (int64_t k = 0; k < K; ++k) q[k] = (p[k] - mu) * r * w[k];
        else if (b)
          for (int64_t k = 0; k < K; ++k) q[k] = (p[k] - mu) * r + b[k];
        else
          for (int64_t k = 0; k < K; ++k) q[k] = (p[k] - mu) * r;
      }
    });
  });
}

template <typename T>
void norm_backward_reduce(const T* dy, const T* x, int64_t A, int64_t C, int64_t B, const T* mean,
                          T* sum_dy, T* sum_dyx) {
  if (B == 1 && A > 1) {
    std::vector<double> s(C), ss(C);
    column_sums<T>(
        A, C,
        [&](int64_t a, int64_t c, T& u, T& v) SOMA_VECTOR_BODY {
          u = dy[a * C + c];
          v = u * (x[a * C + c] - mean[c]);
        },
        s.data(), ss.data());
    for (int64_t c = 0; c < C; ++c) {
      sum_dy[c] = static_cast<T>(s[c]);
      sum_dyx[c] = static_cast<T>(ss[c]);
    }
    return;
  }
  parallel_for(C, channel_grain(A * B), [&](int64_t c0, int64_t c1) {
    with_vector_isa([&]() SOMA_VECTOR_BODY {
      for (int64_t c = c0; c < c1; ++c) {
        const T mu = mean[c];
        LaneSums<T> sums;
        for (int64_t a = 0; a < A; ++a) {
          const T* g = dy + (a * C + c) * B;
          const T* p = x + (a * C + c) * B;
          sums.add(B, [g, p, mu](int64_t i, auto& u, auto& v) SOMA_VECTOR_BODY {
            using U = std::remove_reference_t<decltype(u)>;
            u = load<U>(g + i);
            v = u * (load<U>(p + i) - mu);
          });
        }
        double s, ss;
        sums.total(s, ss);
        sum_dy[c] = static_cast<T>(s);
        sum_dyx[c] = static_cast<T>(ss);
      }
    });
  });
}

template <typename T>
void norm_backward_apply(const T* dy, const T* x, T* dx, int64_t A, int64_t C, int64_t B,
                         const T* mean, const T* k1, const T* k2, const T* k3) {
  if (B == 1) {
    parallel_for(A, channel_grain(C), [&](int64_t a0, int64_t a1) {
      with_vector_isa([&]() SOMA_VECTOR_BODY {
        for (int64_t a = a0; a < a1; ++a) {
          const T* g = dy + a * C;
          const T* p = x + a * C;
          T* q = dx + a * C;
          for (int64_t c = 0; c < C; ++c) q[c] = g[c] * k1[c] + (p[c] - mean[c]) * k2[c] + k3[c];
        }
      });
    });
    return;
  }
  parallel_for(A * C, channel_grain(B), [&](int64_t r0, int64_t r1) {
    with_vector_isa([&]() SOMA_VECTOR_BODY {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t c = r % C;
        const T m = mean[c], u = k1[c], v = k2[c], w = k3[c];
        const T* g = dy + r * B;
        const T* p = x + r * B;
        T* q = dx + r * B;
        for (int64_t i = 0; i < B; ++i) q[i] = g[i] * u + (p[i] - m) * v + w;
      }
    });
  });
}

// ---- references ------------------------------------------------------------------------------
template <typename T>
void norm_stats_reference(const T* x, int64_t A, int64_t C, int64_t B, T* mean, T* var) {
  const long double n = static_cast<long double>(A * B);
  for (int64_t c = 0; c < C; ++c) {
    long double s = 0;
    for (int64_t a = 0; a < A; ++a)
      for (int64_t i = 0; i < B; ++i) s += x[(a * C + c) * B + i];
    const long double m = s / n;
    long double ss = 0;
    for (int64_t a = 0; a < A; ++a)
      for (int64_t i = 0; i < B; ++i) {
        const long double d = x[(a * C + c) * B + i] - m;
        ss += d * d;
      }
    mean[c] = static_cast<T>(m);
    var[c] = static_cast<T>(ss / n);
  }
}

template <typename T>
void norm_affine_reference(const T* x, T* y, int64_t A, int64_t C, int64_t B, const T* mean,
                           const T* scale, const T* shift) {
  for (int64_t a = 0; a < A; ++a)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < B; ++i) {
        const int64_t j = (a * C + c) * B + i;
        y[j] = (x[j] - mean[c]) * scale[c] + shift[c];
      }
}

template <typename T>
void layer_norm_apply_reference(const T* x, T* y, int64_t M, int64_t K, const T* mean,
                                const T* rstd, const T* w, const T* b) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) {
      T v = (x[m * K + k] - mean[m]) * rstd[m];
      if (w) v = v * w[k];
      if (b) v = v + b[k];
      y[m * K + k] = v;
    }
}

template <typename T>
void norm_backward_reduce_reference(const T* dy, const T* x, int64_t A, int64_t C, int64_t B,
                                    const T* mean, T* sum_dy, T* sum_dyx) {
  for (int64_t c = 0; c < C; ++c) {
    long double s = 0, ss = 0;
    for (int64_t a = 0; a < A; ++a)
      for (int64_t i = 0; i < B; ++i) {
        const int64_t j = (a * C + c) * B + i;
        s += dy[j];
        ss += static_cast<long double>(dy[j]) * (static_cast<long double>(x[j]) - mean[c]);
      }
    sum_dy[c] = static_cast<T>(s);
    sum_dyx[c] = static_cast<T>(ss);
  }
}

template <typename T>
void norm_backward_apply_reference(const T* dy, const T* x, T* dx, int64_t A, int64_t C, int64_t B,
                                   const T* mean, const T* k1, const T* k2, const T* k3) {
  for (int64_t a = 0; a < A; ++a)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < B; ++i) {
        const int64_t j = (a * C + c) * B + i;
        dx[j] = dy[j] * k1[c] + (x[j] - mean[c]) * k2[c] + k3[c];
      }
}

#define SOMA_NORM_INSTANTIATE(T)                                                                  \
  template void norm_stats<T>(const T*, int64_t, int64_t, int64_t, T*, T*);                       \
  template void norm_affine<T>(const T*, T*, int64_t, int64_t, int64_t, const T*, const T*,       \
                               const T*);                                                         \
  template void layer_norm_apply<T>(const T*, T*, int64_t, int64_t, const T*, const T*, const T*, \
                                    const T*);                                                    \
  template void norm_backward_reduce<T>(const T*, const T*, int64_t, int64_t, int64_t, const T*,  \
                                        T*, T*);                                                  \
  template void norm_backward_apply<T>(const T*, const T*, T*, int64_t, int64_t, int64_t,         \
                                       const T*, const T*, const T*, const T*);                   \
  template void norm_stats_reference<T>(const T*, int64_t, int64_t, int64_t, T*, T*);             \
  template void norm_affine_reference<T>(const T*, T*, int64_t, int64_t, int64_t, const T*,       \
                                         const T*, const T*);                                     \
  template void layer_norm_apply_reference<T>(const T*, T*, int64_t, int64_t, const T*, const T*, \
                                              const T*, const T*);                                \
  template void norm_backward_reduce_reference<T>(const T*, const T*, int64_t, int64_t, int64_t,  \
                                                  const T*, T*, T*);                              \
  template void norm_backward_apply_reference<T>(const T*, const T*, T*, int64_t, int64_t,        \
                                                 int64_t, const T*, const T*, const T*, const T*);
SOMA_NORM_INSTANTIATE(float)
SOMA_NORM_INSTANTIATE(double)
#undef SOMA_NORM_INSTANTIATE

}  // namespace soma::kernels::cpu
