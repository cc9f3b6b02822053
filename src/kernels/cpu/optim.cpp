#include "kernels/cpu/optim.h"

#include <cmath>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vector_isa.h"

namespace soma::kernels::cpu {
namespace {

// Element loops over [b, e): the threaded kernels run them over one share per thread, compiled
// for the CPU's vector level (vector_isa.h), the references over [0, n) on the calling thread.
template <typename T>
SOMA_VECTOR_INLINE void sgd_range(int64_t b0, int64_t e, T* p, const T* g, T* b,
                                  const SgdArgs<T>& a) {
  for (int64_t i = b0; i < e; ++i) {
    T d = g[i];
    if (a.weight_decay) d = d + a.wd * p[i];
    if (b) {
      b[i] = a.first ? d : b[i] * a.mu + a.damp * d;
      d = a.nesterov ? d + a.mu * b[i] : b[i];
    }
    p[i] = p[i] - a.lr * d;
  }
}

// Restrict pointers and compile-time modes let the Adam loop vectorise.
template <typename T, AdamMode kMode, bool kAmsgrad>
SOMA_VECTOR_INLINE void adam_loop(int64_t n, T* __restrict p, const T* __restrict g,
                                  T* __restrict m, T* __restrict v, T* __restrict vmax,
                                  const AdamArgs<T> c) {
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i];
    T pi = p[i];
    if constexpr (kMode == AdamMode::Decoupled) pi = pi * c.decay;
    if constexpr (kMode == AdamMode::L2) d = d + c.l2 * pi;
    const T mi = m[i] * c.b1 + c.one_b1 * d;
    const T vi = v[i] * c.b2 + c.one_b2 * d * d;
    m[i] = mi;
    v[i] = vi;
    T second = vi;
    if constexpr (kAmsgrad) {
      second = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = second;
    }
    const T denom = std::sqrt(second) / c.bc2s + c.eps;
    p[i] = pi + c.neg_step * mi / denom;
  }
}

template <typename T>
SOMA_VECTOR_INLINE void adam_range(int64_t b, int64_t e, T* p, const T* g, T* m, T* v, T* vmax,
                                   const AdamArgs<T>& a) {
  // One instantiation per (weight-decay mode, amsgrad), so the loop has no branches.
  auto run = [&]<AdamMode kMode>() SOMA_VECTOR_BODY {
    if (vmax)
      adam_loop<T, kMode, true>(e - b, p + b, g + b, m + b, v + b, vmax + b, a);
    else
      adam_loop<T, kMode, false>(e - b, p + b, g + b, m + b, v + b, nullptr, a);
  };
  switch (a.mode) {
    case AdamMode::Plain:
      return run.template operator()<AdamMode::Plain>();
    case AdamMode::L2:
      return run.template operator()<AdamMode::L2>();
    case AdamMode::Decoupled:
      return run.template operator()<AdamMode::Decoupled>();
  }
}

template <typename T>
SOMA_VECTOR_INLINE void rmsprop_range(int64_t b0, int64_t e, T* p, const T* g, T* v, T* b, T* gm,
                                      const RmspropArgs<T>& a) {
  for (int64_t i = b0; i < e; ++i) {
    T d = g[i];
    if (a.weight_decay) d = d + a.wd * p[i];
    v[i] = v[i] * a.a + a.one_a * d * d;
    T avg;
    if (gm) {
      gm[i] = gm[i] * a.a + a.one_a * d;
      avg = std::sqrt(v[i] + T(-1) * gm[i] * gm[i]);
    } else {
      avg = std::sqrt(v[i]);
    }
    avg = avg + a.eps;
    if (b) {
      b[i] = b[i] * a.mu + d / avg;
      p[i] = p[i] - a.lr * b[i];
    } else {
      p[i] = p[i] + a.neg_lr * d / avg;
    }
  }
}

template <typename T>
SOMA_VECTOR_INLINE void adagrad_range(int64_t b, int64_t e, T* p, const T* g, T* sum,
                                      const AdagradArgs<T>& a) {
  for (int64_t i = b; i < e; ++i) {
    T d = g[i];
    if (a.weight_decay) d = d + a.wd * p[i];
    sum[i] = sum[i] + T(1) * d * d;
    p[i] = p[i] + a.neg_clr * d / (std::sqrt(sum[i]) + a.eps);
  }
}

template <typename T>
SOMA_VECTOR_INLINE void adadelta_range(int64_t b, int64_t e, T* p, const T* g, T* v, T* u,
                                       const AdadeltaArgs<T>& a) {
  for (int64_t i = b; i < e; ++i) {
    T d = g[i];
    if (a.weight_decay) d = d + a.wd * p[i];
    v[i] = v[i] * a.rho + a.one_rho * d * d;
    const T std_ = std::sqrt(v[i] + a.eps);
    const T delta = std::sqrt(u[i] + a.eps) / std_ * d;
    u[i] = u[i] * a.rho + a.one_rho * delta * delta;
    p[i] = p[i] + a.neg_lr * delta;
  }
}

}  // namespace

template <typename T>
void sgd_update(int64_t n, T* p, const T* g, T* b, const SgdArgs<T>& a) {
  parallel_for(n, kParallelGrain, [&](int64_t s, int64_t e) {
    with_vector_isa([&]() SOMA_VECTOR_BODY { sgd_range<T>(s, e, p, g, b, a); });
  });
}
template <typename T>
void adam_update(int64_t n, T* p, const T* g, T* m, T* v, T* vmax, const AdamArgs<T>& a) {
  parallel_for(n, kParallelGrain, [&](int64_t s, int64_t e) {
    with_vector_isa([&]() SOMA_VECTOR_BODY { adam_range<T>(s, e, p, g, m, v, vmax, a); });
  });
}
template <typename T>
void rmsprop_update(int64_t n, T* p, const T* g, T* v, T* b, T* gm, const RmspropArgs<T>& a) {
  parallel_for(n, kParallelGrain, [&](int64_t s, int64_t e) {
    with_vector_isa([&]() SOMA_VECTOR_BODY { rmsprop_range<T>(s, e, p, g, v, b, gm, a); });
  });
}
template <typename T>
void adagrad_update(int64_t n, T* p, const T* g, T* sum, const AdagradArgs<T>& a) {
  parallel_for(n, kParallelGrain, [&](int64_t s, int64_t e) {
    with_vector_isa([&]() SOMA_VECTOR_BODY { adagrad_range<T>(s, e, p, g, sum, a); });
  });
}
template <typename T>
void adadelta_update(int64_t n, T* p, const T* g, T* v, T* u, const AdadeltaArgs<T>& a) {
  parallel_for(n, kParallelGrain, [&](int64_t s, int64_t e) {
    with_vector_isa([&]() SOMA_VECTOR_BODY { adadelta_range<T>(s, e, p, g, v, u, a); });
  });
}

template <typename T>
void sgd_update_reference(int64_t n, T* p, const T* g, T* b, const SgdArgs<T>& a) {
  sgd_range<T>(0, n, p, g, b, a);
}
template <typename T>
void adam_update_reference(int64_t n, T* p, const T* g, T* m, T* v, T* vmax, const AdamArgs<T>& a) {
  for (int64_t i = 0; i < n; ++i) adam_range<T>(i, i + 1, p, g, m, v, vmax, a);
}
template <typename T>
void rmsprop_update_reference(int64_t n, T* p, const T* g, T* v, T* b, T* gm,
                              const RmspropArgs<T>& a) {
  rmsprop_range<T>(0, n, p, g, v, b, gm, a);
}
template <typename T>
void adagrad_update_reference(int64_t n, T* p, const T* g, T* sum, const AdagradArgs<T>& a) {
  adagrad_range<T>(0, n, p, g, sum, a);
}
template <typename T>
void adadelta_update_reference(int64_t n, T* p, const T* g, T* v, T* u, const AdadeltaArgs<T>& a) {
  adadelta_range<T>(0, n, p, g, v, u, a);
}

#define SOMA_INSTANTIATE(T)                                                                      \
  template void sgd_update<T>(int64_t, T*, const T*, T*, const SgdArgs<T>&);                     \
  template void adam_update<T>(int64_t, T*, const T*, T*, T*, T*, const AdamArgs<T>&);           \
  template void rmsprop_update<T>(int64_t, T*, const T*, T*, T*, T*, const RmspropArgs<T>&);     \
  template void adagrad_update<T>(int64_t, T*, const T*, T*, const AdagradArgs<T>&);             \
  template void adadelta_update<T>(int64_t, T*, const T*, T*, T*, const AdadeltaArgs<T>&);       \
  template void sgd_update_reference<T>(int64_t, T*, const T*, T*, const SgdArgs<T>&);           \
  template void adam_update_reference<T>(int64_t, T*, const T*, T*, T*, T*, const AdamArgs<T>&); \
  template void rmsprop_update_reference<T>(int64_t, T*, const T*, T*, T*, T*,                   \
                                            const RmspropArgs<T>&);                              \
  template void adagrad_update_reference<T>(int64_t, T*, const T*, T*, const AdagradArgs<T>&);   \
  template void adadelta_update_reference<T>(int64_t, T*, const T*, T*, T*, const AdadeltaArgs<T>&);
SOMA_INSTANTIATE(float)
SOMA_INSTANTIATE(double)
#undef SOMA_INSTANTIATE

}  // namespace soma::kernels::cpu
