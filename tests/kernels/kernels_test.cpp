// Every optimised CPU kernel against a slow, obvious reference:
//   gemm          vs gemm_reference (long double triple loop)
//   sum_dim       vs sum_dim_reference
//   extremum_dim  vs a plain loop written here (NaN wins, first index on ties)
//   softmax       vs softmax_reference; backward vs the explicit formula and finite differences
//   dropout       vs its documented draw, computed here with philox4x32_reference, whose
//                 output is checked against Random123's published known-answer vectors
//   the strided elementwise engine (add, mul, relu, where, contiguous, copy_) vs loops over
//   indices computed here from a layout this file describes on its own
// and results that must not depend on the number of threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/tensor_impl.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/softmax.h"
#include "soma/soma.h"

namespace {

using soma::Shape;
using soma::Tensor;

// The sizes every kernel is tried on.
const std::vector<int64_t> kSizes = {1, 7, 63, 65, 1000};

std::string str(const Shape& s) {
  return soma::shape_str(s);
}

// Restores the thread count on scope exit.
class ThreadsGuard {
 public:
  ThreadsGuard() : prev_(soma::get_num_threads()) {}
  ~ThreadsGuard() { soma::set_num_threads(prev_); }

 private:
  int prev_;
};

// Collects the worst element of a comparison so a failure prints one line: what was compared,
// how many elements were bad, the first bad index and the largest error.
struct Mismatch {
  int64_t bad = 0, first = -1;
  double max_err = 0, got = 0, want = 0;
  void add(int64_t i, double g, double w, double tol) {
    const double err =
        std::isnan(g) != std::isnan(w) ? INFINITY : (std::isnan(g) ? 0 : std::abs(g - w));
    max_err = std::max(max_err, err);
    if (!(err <= tol)) {
      if (bad++ == 0) {
        first = i;
        got = g;
        want = w;
      }
    }
  }
  std::string report(const std::string& what) const {
    std::ostringstream os;
    os << what << ": " << bad << " bad elements, first at " << first << " (got " << got << ", want "
       << want << "), max error " << max_err;
    return os.str();
  }
};

// ---- gemm ------------------------------------------------------------------------------------

template <typename T>
void check_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, T beta, int64_t pad,
                std::mt19937& rng) {
  // Stored shapes: A is [m, k] (or [k, m] when transposed), B is [k, n] (or [n, k]); each row
  // padded by `pad` elements that hold NaN, so reading outside the sub-matrix shows up.
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<T> a(a_rows * lda, nan), b(b_rows * ldb, nan), c(m * ldc, nan);
  for (int64_t i = 0; i < a_rows; ++i)
    for (int64_t j = 0; j < a_cols; ++j) a[i * lda + j] = static_cast<T>(dist(rng));
  for (int64_t i = 0; i < b_rows; ++i)
    for (int64_t j = 0; j < b_cols; ++j) b[i * ldb + j] = static_cast<T>(dist(rng));
  // With beta == 0, C is not read (BLAS semantics), so NaN there must not leak into the result.
  if (beta != T(0))
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = static_cast<T>(dist(rng));
  std::vector<T> ref = c, out = c;
  soma::kernels::cpu::gemm<T>(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta,
                              out.data(), ldc);
  soma::kernels::cpu::gemm_reference<T>(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta,
                                        ref.data(), ldc);

  const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  const double atol = std::is_same_v<T, float> ? 1e-6 : 1e-12;
  Mismatch mm, pad_mm;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double scale = 0;  // sum_p |alpha a_ip b_pj| + |beta c_ij|
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a[p * lda + i] : a[i * lda + p];
        const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        scale += std::abs(av * bv);
      }
      scale =
          std::abs(double(alpha)) * scale + (beta != T(0) ? std::abs(beta * c[i * ldc + j]) : 0);
      mm.add(i * n + j, out[i * ldc + j], ref[i * ldc + j], rtol * scale + atol);
    }
    for (int64_t j = n; j < ldc; ++j)  // padding of C stays untouched (NaN)
      pad_mm.add(i * ldc + j, out[i * ldc + j], nan, 0);
  }
  std::ostringstream what;
  what << "gemm<" << (std::is_same_v<T, float> ? "float" : "double") << "> trans_a=" << ta
       << " trans_b=" << tb << " m=" << m << " n=" << n << " k=" << k << " alpha=" << alpha
       << " beta=" << beta << " pad=" << pad;
  EXPECT_EQ(mm.bad, 0) << mm.report(what.str());
  EXPECT_EQ(pad_mm.bad, 0) << pad_mm.report(what.str() + " (C padding written)");
}

template <typename T>
void gemm_suite() {
  std::mt19937 rng(1234);
  const std::vector<int64_t> small = {1, 7, 63, 65};
  struct Scalars {
    T alpha, beta;
  };
  const std::vector<Scalars> scalars = {{1, 0}, {T(0.5), T(-2)}, {T(-1.5), 0}, {1, 1}};
  int case_id = 0;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      for (int64_t m : small)
        for (int64_t n : small)
          for (int64_t k : small) {
            const Scalars s = scalars[case_id % scalars.size()];
            const int64_t pad = case_id % 3 == 0 ? 0 : 3;
            check_gemm<T>(ta, tb, m, n, k, s.alpha, s.beta, pad, rng);
            ++case_id;
          }
      // 1000 in one dimension at a time, the others non-square.
      check_gemm<T>(ta, tb, 1000, 7, 63, T(1), T(0), 2, rng);
      check_gemm<T>(ta, tb, 65, 1000, 7, T(0.5), T(2), 0, rng);
      check_gemm<T>(ta, tb, 63, 65, 1000, T(1), T(0), 5, rng);
      check_gemm<T>(ta, tb, 1, 1, 1000, T(-1), T(1), 1, rng);
      // >= 128 rows (columns) per thread and >= 2^20 multiply-adds: split over the threads.
      check_gemm<T>(ta, tb, 301, 70, 65, T(0.5), T(-2), 3, rng);
      check_gemm<T>(ta, tb, 70, 301, 65, T(1), T(1), 2, rng);
      // one row (the GEMV path) with a larger B
      check_gemm<T>(ta, tb, 1, 301, 300, T(1), T(0), 3, rng);
      check_gemm<T>(ta, tb, 1, 1000, 70, T(0.5), T(-2), 0, rng);
    }
}

TEST(KernelsGemm, FloatMatchesReference) {
  gemm_suite<float>();
}

TEST(KernelsGemm, DoubleMatchesReference) {
  gemm_suite<double>();
}

// ---- sum_dim ---------------------------------------------------------------------------------

template <typename T>
std::vector<T> random_values(int64_t n, std::mt19937& rng) {
  std::vector<T> v(static_cast<size_t>(n));
  if constexpr (std::is_floating_point_v<T>) {
    std::normal_distribution<double> dist(0.0, 1.0);
    for (T& x : v) x = static_cast<T>(dist(rng));
  } else {
    std::uniform_int_distribution<int64_t> dist(-1000, 1000);
    for (T& x : v) x = dist(rng);
  }
  return v;
}

// [outer, n, inner] combinations of kSizes with at most `max_numel` elements (the default keeps
// 1000 x 65 and 1000 x 7 x 7, which take the OpenMP paths, and the file under a few seconds).
std::vector<std::array<int64_t, 3>> split_shapes(int64_t max_numel = 70000) {
  std::vector<std::array<int64_t, 3>> out;
  for (int64_t o : kSizes)
    for (int64_t n : kSizes)
      for (int64_t i : kSizes)
        if (o * n * i <= max_numel) out.push_back({o, n, i});
  return out;
}

template <typename T>
void sum_dim_suite() {
  std::mt19937 rng(7);
  for (auto [outer, n, inner] : split_shapes()) {
    const std::vector<T> x = random_values<T>(outer * n * inner, rng);
    std::vector<T> out(outer * inner), ref(outer * inner);
    soma::kernels::cpu::sum_dim<T>(x.data(), out.data(), outer, n, inner);
    soma::kernels::cpu::sum_dim_reference<T>(x.data(), ref.data(), outer, n, inner);
    // float: one rounding of the double sum; double: n roundings of at most eps |x| each.
    const double rtol = std::is_same_v<T, float> ? 1e-6 : std::is_same_v<T, double> ? 1e-12 : 0;
    Mismatch mm;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        double abs_sum = 0;
        for (int64_t k = 0; k < n; ++k) abs_sum += std::abs(double(x[(o * n + k) * inner + i]));
        mm.add(o * inner + i, double(out[o * inner + i]), double(ref[o * inner + i]),
               rtol * abs_sum);
      }
    EXPECT_EQ(mm.bad, 0) << mm.report("sum_dim [outer, n, inner] = " + str({outer, n, inner}) +
                                      " dtype " +
                                      std::string(soma::dtype_name(soma::dtype_of<T>())));
  }
}

TEST(KernelsSumDim, MatchesReference) {
  sum_dim_suite<float>();
  sum_dim_suite<double>();
  sum_dim_suite<int64_t>();
}

// ---- extremum_dim ----------------------------------------------------------------------------

// Plain loop: the first index attaining the max (min); the first NaN wins over everything.
template <typename T>
void extremum_loop(const std::vector<T>& x, std::vector<T>& values, std::vector<int64_t>& indices,
                   int64_t outer, int64_t n, int64_t inner, bool is_max) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = -1;
      for (int64_t k = 0; k < n; ++k) {
        const T v = x[(o * n + k) * inner + i];
        if (std::isnan(double(v))) {
          best = k;
          break;
        }
        if (best < 0) {
          best = k;
          continue;
        }
        const T b = x[(o * n + best) * inner + i];
        if (is_max ? v > b : v < b) best = k;
      }
      values[o * inner + i] = x[(o * n + best) * inner + i];
      indices[o * inner + i] = best;
    }
}

template <typename T>
void extremum_suite(bool with_nan) {
  std::mt19937 rng(99);
  for (auto [outer, n, inner] : split_shapes()) {
    std::vector<T> x = random_values<T>(outer * n * inner, rng);
    if constexpr (std::is_integral_v<T>) {
      for (T& v : x) v %= 4;  // many ties: the first index must win
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (with_nan) {  // a NaN in about one reduced row in three, at a random position
        std::uniform_int_distribution<int64_t> pos(0, n - 1);
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i)
            if ((o * inner + i) % 3 == 0)
              x[(o * n + pos(rng)) * inner + i] = std::numeric_limits<T>::quiet_NaN();
      }
    }
    for (bool is_max : {true, false}) {
      std::vector<T> values(outer * inner), ref_values(outer * inner);
      std::vector<int64_t> indices(outer * inner), ref_indices(outer * inner);
      soma::kernels::cpu::extremum_dim<T>(x.data(), values.data(), indices.data(), outer, n, inner,
                                          is_max);
      extremum_loop<T>(x, ref_values, ref_indices, outer, n, inner, is_max);
      Mismatch mv, mi;
      for (int64_t j = 0; j < outer * inner; ++j) {
        mv.add(j, double(values[j]), double(ref_values[j]), 0);
        mi.add(j, double(indices[j]), double(ref_indices[j]), 0);
      }
      const std::string what = std::string(is_max ? "max" : "min") +
                               " [outer, n, inner] = " + str({outer, n, inner}) + " dtype " +
                               std::string(soma::dtype_name(soma::dtype_of<T>())) +
                               (with_nan ? " with NaN" : "");
      EXPECT_EQ(mv.bad, 0) << mv.report(what + " values");
      EXPECT_EQ(mi.bad, 0) << mi.report(what + " indices");
    }
  }
}

TEST(KernelsExtremumDim, MatchesPlainLoop) {
  extremum_suite<float>(false);
  extremum_suite<double>(false);
  extremum_suite<int64_t>(false);
}

TEST(KernelsExtremumDim, NanWins) {
  extremum_suite<float>(true);
  extremum_suite<double>(true);
  // A NaN first, last and alone.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {nan, 5, 1, 2, 9, nan, nan, nan, nan};
  for (bool is_max : {true, false}) {
    std::vector<float> v(3);
    std::vector<int64_t> idx(3);
    soma::kernels::cpu::extremum_dim<float>(x.data(), v.data(), idx.data(), 3, 3, 1, is_max);
    EXPECT_TRUE(std::isnan(v[0]) && std::isnan(v[1]) && std::isnan(v[2]));
    EXPECT_EQ(idx, (std::vector<int64_t>{0, 2, 0}));
  }
}

// ---- softmax ---------------------------------------------------------------------------------

// Logits: normal, except every fourth reduced row holds values near +-1000 (stability).
template <typename T>
std::vector<T> logits(int64_t outer, int64_t n, int64_t inner, std::mt19937& rng) {
  std::vector<T> x = random_values<T>(outer * n * inner, rng);
  std::uniform_int_distribution<int> sign(0, 1);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t row = o * inner + i;
      if (row % 4 == 1)
        for (int64_t k = 0; k < n; ++k) x[(o * n + k) * inner + i] += T(1000);
      if (row % 4 == 2)
        for (int64_t k = 0; k < n; ++k) x[(o * n + k) * inner + i] += T(-1000);
      if (row % 4 == 3)  // both signs in one row: the +1000 entries take all the mass
        for (int64_t k = 0; k < n; ++k) x[(o * n + k) * inner + i] += T(sign(rng) ? 1000 : -1000);
    }
  return x;
}

template <typename T>
void softmax_forward_suite() {
  std::mt19937 rng(5);
  const double eps = std::numeric_limits<T>::epsilon();
  for (auto [outer, n, inner] : split_shapes()) {
    const std::vector<T> x = logits<T>(outer, n, inner, rng);
    for (bool log : {false, true}) {
      std::vector<T> y(x.size()), ref(x.size());
      soma::kernels::cpu::softmax_forward<T>(x.data(), y.data(), outer, n, inner, log);
      soma::kernels::cpu::softmax_reference<T>(x.data(), ref.data(), outer, n, inner, log);
      Mismatch mm;
      for (size_t j = 0; j < x.size(); ++j) {
        // softmax: relative error of exp(x - m) is about eps |x - m| (significant only for
        // |x - m| < ~100); log_softmax: x - lse with both up to ~1000 loses eps (|x| + |y|).
        const double tol = log ? 8 * eps * (std::abs(double(x[j])) + std::abs(double(ref[j])) + 1)
                               : 200 * eps * double(ref[j]) + 1e3 * std::numeric_limits<T>::min();
        mm.add(static_cast<int64_t>(j), double(y[j]), double(ref[j]), tol);
      }
      EXPECT_EQ(mm.bad, 0) << mm.report(std::string(log ? "log_softmax" : "softmax") +
                                        " [outer, n, inner] = " + str({outer, n, inner}) +
                                        " dtype " +
                                        std::string(soma::dtype_name(soma::dtype_of<T>())));
    }
  }
}

TEST(KernelsSoftmax, ForwardMatchesReference) {
  softmax_forward_suite<float>();
  softmax_forward_suite<double>();
}

TEST(KernelsSoftmax, ForwardExtremeLogitsAreFinite) {
  const std::vector<float> x = {1000, -1000, 1000, -1000, -1000, -1000};
  std::vector<float> y(6), ly(6);
  soma::kernels::cpu::softmax_forward<float>(x.data(), y.data(), 2, 3, 1, false);
  soma::kernels::cpu::softmax_forward<float>(x.data(), ly.data(), 2, 3, 1, true);
  const std::vector<float> want = {0.5f, 0.0f, 0.5f, 1 / 3.0f, 1 / 3.0f, 1 / 3.0f};
  for (int j = 0; j < 6; ++j) EXPECT_NEAR(y[j], want[j], 1e-6) << "softmax element " << j;
  // (x - m) - log sum: exact near 0 even though the logits are near 1000
  EXPECT_NEAR(ly[0], -std::log(2.0f), 1e-6);
  EXPECT_NEAR(ly[1], -2000 - std::log(2.0f), 1e-3);  // float spacing at 2000 is 1.2e-4
  EXPECT_NEAR(ly[3], -std::log(3.0f), 1e-6);
  for (float v : ly) EXPECT_TRUE(std::isfinite(v));
}

// dx_k = y_k (g_k - sum_j g_j y_j)   or, for log_softmax,   dx_k = g_k - exp(y_k) sum_j g_j
template <typename T>
std::vector<T> softmax_backward_formula(const std::vector<T>& y, const std::vector<T>& g,
                                        int64_t outer, int64_t n, int64_t inner, bool log) {
  std::vector<T> dx(y.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
      long double s = 0;
      for (int64_t k = 0; k < n; ++k)
        s += log ? static_cast<long double>(g[at(k)])
                 : static_cast<long double>(g[at(k)]) * y[at(k)];
      for (int64_t k = 0; k < n; ++k) {
        const long double yk = y[at(k)], gk = g[at(k)];
        dx[at(k)] = static_cast<T>(log ? gk - std::exp(yk) * s : yk * (gk - s));
      }
    }
  return dx;
}

template <typename T>
void softmax_backward_suite() {
  std::mt19937 rng(11);
  const double eps = std::numeric_limits<T>::epsilon();
  for (auto [outer, n, inner] : split_shapes()) {
    const std::vector<T> x = logits<T>(outer, n, inner, rng);
    const std::vector<T> g = random_values<T>(outer * n * inner, rng);
    for (bool log : {false, true}) {
      std::vector<T> y(x.size()), dx(x.size());
      soma::kernels::cpu::softmax_forward<T>(x.data(), y.data(), outer, n, inner, log);
      soma::kernels::cpu::softmax_backward<T>(y.data(), g.data(), dx.data(), outer, n, inner, log);
      const std::vector<T> ref = softmax_backward_formula<T>(y, g, outer, n, inner, log);
      Mismatch mm;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          double row_scale = 0;  // sum_j |g_j| (times y_j for softmax)
          for (int64_t k = 0; k < n; ++k) {
            const int64_t j = (o * n + k) * inner + i;
            row_scale += std::abs(double(g[j])) * (log ? 1.0 : double(y[j]));
          }
          for (int64_t k = 0; k < n; ++k) {
            const int64_t j = (o * n + k) * inner + i;
            const double scale = std::abs(double(g[j])) + row_scale;
            mm.add(j, double(dx[j]), double(ref[j]), 16 * eps * scale);
          }
        }
      EXPECT_EQ(mm.bad, 0) << mm.report(std::string(log ? "log_softmax" : "softmax") +
                                        " backward [outer, n, inner] = " + str({outer, n, inner}) +
                                        " dtype " +
                                        std::string(soma::dtype_name(soma::dtype_of<T>())));
    }
  }
}

TEST(KernelsSoftmax, BackwardMatchesFormula) {
  softmax_backward_suite<float>();
  softmax_backward_suite<double>();
}

// Central differences of L(x) = sum_k g_k y_k(x) in float64 against softmax_backward.
TEST(KernelsSoftmax, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(3);
  const std::vector<std::array<int64_t, 3>> shapes = {{1, 7, 1}, {3, 5, 4}, {2, 1, 3}, {1, 65, 1}};
  for (auto [outer, n, inner] : shapes) {
    const std::vector<double> x = random_values<double>(outer * n * inner, rng);
    const std::vector<double> g = random_values<double>(outer * n * inner, rng);
    for (bool log : {false, true}) {
      auto loss = [&](const std::vector<double>& xs) {
        std::vector<double> y(xs.size());
        soma::kernels::cpu::softmax_reference<double>(xs.data(), y.data(), outer, n, inner, log);
        long double s = 0;
        for (size_t j = 0; j < y.size(); ++j) s += static_cast<long double>(g[j]) * y[j];
        return static_cast<double>(s);
      };
      std::vector<double> y(x.size()), dx(x.size());
      soma::kernels::cpu::softmax_forward<double>(x.data(), y.data(), outer, n, inner, log);
      soma::kernels::cpu::softmax_backward<double>(y.data(), g.data(), dx.data(), outer, n, inner,
                                                   log);
      const double h = 1e-6;
      Mismatch mm;
      for (size_t j = 0; j < x.size(); ++j) {
        std::vector<double> xp = x, xm = x;
        xp[j] += h;
        xm[j] -= h;
        const double numeric = (loss(xp) - loss(xm)) / (2 * h);
        mm.add(static_cast<int64_t>(j), dx[j], numeric, 1e-6 + 1e-5 * std::abs(numeric));
      }
      EXPECT_EQ(mm.bad, 0) << mm.report(std::string(log ? "log_softmax" : "softmax") +
                                        " finite differences " + str({outer, n, inner}));
    }
  }
}

// ---- elementwise strided engine --------------------------------------------------------------

// A strided layout described independently of soma: logical element idx of a view lives at
// offset + sum_d idx[d] * strides[d] of its base buffer.
struct Layout {
  Shape shape, strides;
  int64_t offset = 0;
};

Layout contiguous_layout(const Shape& shape) {
  Layout l{shape, Shape(shape.size()), 0};
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    l.strides[d] = s;
    s *= shape[d];
  }
  return l;
}

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// Row-major multi-index of linear position `j` in `shape`.
Shape unravel(int64_t j, const Shape& shape) {
  Shape idx(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = j % shape[d];
    j /= shape[d];
  }
  return idx;
}

// How an operand of a given logical shape is produced.
enum class View {
  kContiguous,
  kTransposed,  // transpose(-1, -2) of a contiguous tensor with the last two dims swapped
  kStep2,       // slice(-1, 1, 2 s, 2) of a contiguous tensor twice as long in the last dim
  kExpanded,    // dim 0 of size 1 stretched with stride 0 (a real stride-0 view, not size 1)
};

const char* view_name(View v) {
  switch (v) {
    case View::kContiguous:
      return "contiguous";
    case View::kTransposed:
      return "transposed";
    case View::kStep2:
      return "step2";
    case View::kExpanded:
      return "expanded";
  }
  return "?";
}

// A soma tensor and, independently, its base values and layout.
struct Operand {
  Tensor t;
  std::vector<double> base;
  Layout layout;

  // Value of the operand at `idx` of a broadcast shape (aligned from the right).
  double at(const Shape& idx) const {
    const int64_t lead = static_cast<int64_t>(idx.size() - layout.shape.size());
    int64_t off = layout.offset;
    for (size_t d = 0; d < layout.shape.size(); ++d)
      if (layout.shape[d] != 1) off += idx[lead + d] * layout.strides[d];
    return base[off];
  }
};

// Operand of logical `shape` built as `view` of a fresh base of `dtype`. Base values are normal
// for floats, in [-50, 50] for int64 and 0/1 for bool.
Operand make_operand(const Shape& shape, View view, soma::DType dtype, std::mt19937& rng) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (nd < 2 && view == View::kTransposed) view = View::kContiguous;
  Shape base_shape = shape;
  if (view == View::kTransposed) std::swap(base_shape[nd - 1], base_shape[nd - 2]);
  if (view == View::kStep2) base_shape[nd - 1] *= 2;
  if (view == View::kExpanded) base_shape[0] = 1;

  Operand op;
  const int64_t n = numel_of(base_shape);
  op.base.resize(n);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int64_t> ints(-50, 50), bits(0, 1);
  for (double& v : op.base) {
    if (dtype == soma::kFloat32) v = static_cast<float>(normal(rng));
    if (dtype == soma::kFloat64) v = normal(rng);
    if (dtype == soma::kInt64) v = static_cast<double>(ints(rng));
    if (dtype == soma::kBool) v = static_cast<double>(bits(rng));
  }
  Tensor base = soma::tensor(op.base, base_shape).to(dtype);
  op.layout = contiguous_layout(base_shape);
  switch (view) {
    case View::kContiguous:
      op.t = base;
      break;
    case View::kTransposed:
      op.t = base.transpose(-1, -2);
      std::swap(op.layout.shape[nd - 1], op.layout.shape[nd - 2]);
      std::swap(op.layout.strides[nd - 1], op.layout.strides[nd - 2]);
      break;
    case View::kStep2:
      op.t = base.slice(-1, 1, base_shape[nd - 1], 2);
      op.layout.offset = op.layout.strides[nd - 1];
      op.layout.shape[nd - 1] = shape[nd - 1];
      op.layout.strides[nd - 1] *= 2;
      break;
    case View::kExpanded: {
      Shape strides = base.strides();
      strides[0] = 0;
      op.t = soma::detail::make_view(base, shape, strides, 0);
      op.layout.shape = shape;
      op.layout.strides[0] = 0;
      break;
    }
  }
  EXPECT_EQ(op.t.shape(), shape) << view_name(view);
  EXPECT_EQ(op.t.strides(), op.layout.strides) << view_name(view) << " of " << str(shape);
  return op;
}

// The elements of `t`, read through its own data pointer (it must be contiguous).
std::vector<double> values_of(const Tensor& t) {
  EXPECT_TRUE(t.is_contiguous());
  std::vector<double> out(t.numel());
  switch (t.dtype()) {
    case soma::kFloat32:
      std::copy_n(t.data<float>(), t.numel(), out.begin());
      break;
    case soma::kFloat64:
      std::copy_n(t.data<double>(), t.numel(), out.begin());
      break;
    case soma::kInt64:
      std::copy_n(t.data<int64_t>(), t.numel(), out.begin());
      break;
    case soma::kBool:
      std::copy_n(t.data<bool>(), t.numel(), out.begin());
      break;
    case soma::kUInt8:
      std::copy_n(t.data<uint8_t>(), t.numel(), out.begin());
      break;
    case soma::kInt8:
      std::copy_n(t.data<int8_t>(), t.numel(), out.begin());
      break;
    case soma::kInt32:
      std::copy_n(t.data<int32_t>(), t.numel(), out.begin());
      break;
    case soma::kBFloat16:
      std::copy_n(t.data<soma::BFloat16>(), t.numel(), out.begin());
      break;
    case soma::kFloat16:
      std::copy_n(t.data<soma::Half>(), t.numel(), out.begin());
      break;
  }
  return out;
}

// Compares `got` (contiguous, shape `shape`) with f(idx) for every multi-index.
template <typename F>
void expect_elements(const Tensor& got, const Shape& shape, double rtol, const std::string& what,
                     F f) {
  ASSERT_EQ(got.shape(), shape) << what;
  const std::vector<double> v = values_of(got);
  Mismatch mm;
  for (int64_t j = 0; j < numel_of(shape); ++j) {
    const double want = f(unravel(j, shape));
    mm.add(j, v[j], want, rtol * std::abs(want));
  }
  EXPECT_EQ(mm.bad, 0) << mm.report(what);
}

Shape broadcast(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n, 1);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

struct BinaryCase {
  Shape a;
  View va;
  Shape b;
  View vb;
};

// Small, odd, broadcast and > kParallelGrain (32768) shapes; rows < threads for [2, 20000].
const std::vector<BinaryCase> kBinaryCases = {
    {{7, 63}, View::kContiguous, {63}, View::kContiguous},
    {{1}, View::kContiguous, {65}, View::kStep2},
    {{7, 65}, View::kTransposed, {7, 65}, View::kStep2},
    {{63, 7}, View::kStep2, {7}, View::kContiguous},
    {{7, 65}, View::kExpanded, {65, 1, 1}, View::kContiguous},
    {{1000, 1}, View::kContiguous, {1, 63}, View::kContiguous},
    {{200, 300}, View::kTransposed, {200, 300}, View::kStep2},
    {{2, 20000}, View::kStep2, {2, 20000}, View::kContiguous},
    {{40000}, View::kStep2, {1}, View::kContiguous},
    {{1000, 65}, View::kExpanded, {1000, 65}, View::kTransposed},
    {{3, 1, 1000}, View::kContiguous, {63, 1}, View::kTransposed},
    {{65, 7, 63}, View::kTransposed, {65, 1, 63}, View::kExpanded},
    {{1, 1, 1}, View::kContiguous, {7, 1, 65}, View::kStep2},
};

std::string case_name(const BinaryCase& c, soma::DType dtype, int threads) {
  std::ostringstream os;
  os << str(c.a) << " " << view_name(c.va) << " with " << str(c.b) << " " << view_name(c.vb) << ", "
     << soma::dtype_name(dtype) << ", " << threads << " threads";
  return os.str();
}

void run_binary_cases(soma::DType dtype, int threads) {
  ThreadsGuard restore;
  soma::set_num_threads(threads);
  std::mt19937 rng(17);
  const bool is_float = soma::is_floating(dtype);
  for (const BinaryCase& c : kBinaryCases) {
    const std::string name = case_name(c, dtype, threads);
    const Operand a = make_operand(c.a, c.va, dtype, rng);
    const Operand b = make_operand(c.b, c.vb, dtype, rng);
    const Shape out = broadcast(c.a, c.b);
    auto round = [dtype](double v) {
      return dtype == soma::kFloat32 ? static_cast<double>(static_cast<float>(v)) : v;
    };

    expect_elements(soma::add(a.t, b.t), out, 0, "add " + name,
                    [&](const Shape& i) { return round(a.at(i) + b.at(i)); });
    expect_elements(soma::mul(a.t, b.t), out, 0, "mul " + name,
                    [&](const Shape& i) { return round(a.at(i) * b.at(i)); });
    if (is_float) {
      expect_elements(soma::add(a.t, b.t, 0.5), out, 1e-6, "add alpha=0.5 " + name,
                      [&](const Shape& i) { return a.at(i) + 0.5 * b.at(i); });
      expect_elements(soma::relu(a.t), c.a, 0, "relu " + name,
                      [&](const Shape& i) { return std::max(a.at(i), 0.0); });
    }
    // where(cond, a, b) with the condition laid out like b (and broadcast like it).
    const Operand cond = make_operand(c.b, c.vb, soma::kBool, rng);
    expect_elements(soma::where(cond.t, a.t, b.t), out, 0, "where " + name,
                    [&](const Shape& i) { return cond.at(i) != 0 ? a.at(i) : b.at(i); });
    // contiguous() of each operand.
    for (const Operand* op : {&a, &b}) {
      const Tensor cont = op->t.contiguous();
      EXPECT_TRUE(cont.is_contiguous()) << name;
      expect_elements(cont, op->layout.shape, 0, "contiguous " + name,
                      [&](const Shape& i) { return op->at(i); });
    }
  }
}

TEST(KernelsElementwise, FloatMatchesIndexLoops) {
  for (int threads : {1, 2, 3}) run_binary_cases(soma::kFloat32, threads);
}

TEST(KernelsElementwise, DoubleMatchesIndexLoops) {
  run_binary_cases(soma::kFloat64, 2);
}

TEST(KernelsElementwise, Int64MatchesIndexLoops) {
  for (int threads : {1, 3}) run_binary_cases(soma::kInt64, threads);
}

// copy_ (and add_) into a transposed view write the transposed positions of the base.
TEST(KernelsElementwise, CopyIntoTransposedView) {
  ThreadsGuard restore;
  std::mt19937 rng(23);
  struct Case {
    int64_t rows, cols;
    Shape src;
    View view;
    soma::DType src_dtype;
  };
  const std::vector<Case> cases = {
      {7, 65, {7, 65}, View::kContiguous, soma::kFloat32},
      {7, 65, {65}, View::kStep2, soma::kFloat32},
      {63, 1, {63, 1}, View::kContiguous, soma::kFloat64},
      {300, 200, {300, 200}, View::kTransposed, soma::kFloat32},
      {300, 200, {300, 1}, View::kContiguous, soma::kFloat32},
      {1000, 65, {1000, 65}, View::kStep2, soma::kFloat64},
  };
  for (int threads : {1, 2}) {
    soma::set_num_threads(threads);
    for (const Case& c : cases) {
      Tensor base = soma::full({c.cols, c.rows}, -7.0);  // float32
      Tensor dst = base.t();                             // [rows, cols], strides [1, rows]
      ASSERT_FALSE(dst.is_contiguous() && c.rows > 1 && c.cols > 1);
      const Operand src = make_operand(c.src, c.view, c.src_dtype, rng);
      dst.copy_(src.t);
      const std::vector<double> got = values_of(base);
      Mismatch mm;
      for (int64_t r = 0; r < c.rows; ++r)
        for (int64_t k = 0; k < c.cols; ++k)
          mm.add(k * c.rows + r, got[k * c.rows + r],
                 static_cast<double>(static_cast<float>(src.at({r, k}))), 0);
      const std::string what = str(c.src) + " " + view_name(c.view) + " into a transposed [" +
                               std::to_string(c.rows) + ", " + std::to_string(c.cols) + "] view, " +
                               std::to_string(threads) + " threads";
      EXPECT_EQ(mm.bad, 0) << mm.report("copy_ of " + what);
      // In place through the same strided output: dst += 0.5 src, computed in the promoted
      // dtype (float64 for a float64 src, as in PyTorch) and stored as float32.
      dst.add_(src.t, 0.5);
      const std::vector<double> after = values_of(base);
      Mismatch mi;
      for (int64_t r = 0; r < c.rows; ++r)
        for (int64_t k = 0; k < c.cols; ++k) {
          const double s = src.at({r, k});
          const float v = static_cast<float>(s);
          const float want = c.src_dtype == soma::kFloat64
                                 ? static_cast<float>(static_cast<double>(v) + 0.5 * s)
                                 : static_cast<float>(v + 0.5f * v);
          mi.add(k * c.rows + r, after[k * c.rows + r], want, 0);
        }
      EXPECT_EQ(mi.bad, 0) << mi.report("add_ of " + what);
    }
  }
}

// ---- thread-count independence ---------------------------------------------------------------

template <typename T>
bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data<T>(), cb.data<T>(), sizeof(T) * ca.numel()) == 0;
}

TEST(KernelsThreads, ResultsDoNotDependOnThreadCount) {
  ThreadsGuard restore;
  soma::manual_seed(2024);
  const Tensor a = soma::randn({1000, 300});
  const Tensor b = soma::randn({300, 1000}).t();  // non-contiguous
  const Tensor c = soma::randn({300});
  const Tensor m1 = soma::randn({300, 200}), m2 = soma::randn({200, 100});
  const Tensor big1 = soma::randn({515, 300}), big2 = soma::randn({200, 300}).t();
  const Tensor wide1 = soma::randn({200, 300}), wide2 = soma::randn({300, 515});

  struct Results {
    Tensor elementwise, sum_all, sum0, sum1, matmul, matmul_rows, matmul_cols;
  };
  auto run = [&](int threads) {
    soma::set_num_threads(threads);
    EXPECT_EQ(soma::get_num_threads(), threads);
    Results r;
    r.elementwise = soma::relu(a * b + c);
    r.sum_all = (a * b).sum();
    r.sum0 = a.sum(0);
    r.sum1 = b.sum(1);
    r.matmul = soma::matmul(m1, m2);
    r.matmul_rows = soma::matmul(big1, big2);    // 2 threads: rows split, one BLAS call each
    r.matmul_cols = soma::matmul(wide1, wide2);  // columns split
    return r;
  };
  const Results one = run(1), two = run(2);
  EXPECT_TRUE(bitwise_equal<float>(one.elementwise, two.elementwise));
  EXPECT_TRUE(bitwise_equal<float>(one.sum_all, two.sum_all));
  EXPECT_TRUE(bitwise_equal<float>(one.sum0, two.sum0));
  EXPECT_TRUE(bitwise_equal<float>(one.sum1, two.sum1));
  // BLAS's threads (and soma's row split) change where the kernel's edge tiles fall: equal up to
  // rounding.
  const std::vector<float> p = one.matmul.to_vector<float>(), q = two.matmul.to_vector<float>();
  ASSERT_EQ(p.size(), q.size());
  for (size_t j = 0; j < p.size(); ++j) ASSERT_NEAR(p[j], q[j], 1e-4f) << "matmul element " << j;
  // 2 threads: rows split over the threads, one single-threaded BLAS call each.
  const std::vector<float> r = one.matmul_rows.to_vector<float>(),
                           s = two.matmul_rows.to_vector<float>();
  ASSERT_EQ(r.size(), s.size());
  for (size_t j = 0; j < r.size(); ++j)
    ASSERT_NEAR(r[j], s[j], 1e-4f) << "matmul_rows element " << j;
}

TEST(KernelsThreads, RandnDoesNotDependOnThreadCount) {
  ThreadsGuard restore;
  auto draw = [](int threads) {
    soma::set_num_threads(threads);
    soma::manual_seed(77);
    return std::vector<Tensor>{soma::randn({100000}), soma::randn({333}, soma::kFloat64),
                               soma::rand({50000})};
  };
  const std::vector<Tensor> one = draw(1), two = draw(2);
  EXPECT_TRUE(bitwise_equal<float>(one[0], two[0]));
  EXPECT_TRUE(bitwise_equal<double>(one[1], two[1]));
  EXPECT_TRUE(bitwise_equal<float>(one[2], two[2]));
}

}  // namespace

// ---- dropout (Philox4x32-10) -------------------------------------------------------------
// The known-answer vectors published with the Random123 library (Salmon et al. 2011,
// tests/kat_vectors: "philox4x32 10"): counter, key, expected output.
TEST(KernelsDropout, PhiloxReferenceMatchesRandom123KnownAnswers) {
  struct Kat {
    uint32_t ctr[4], key[2], want[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    uint32_t got[4];
    soma::kernels::cpu::philox4x32_reference(k.ctr, k.key, got);
    for (int r = 0; r < 4; ++r)
      EXPECT_EQ(got[r], k.want[r]) << "word " << r << " of counter " << k.ctr[0];
  }
}

// Word w (0..63) of chunk c under `key`, per the layout in dropout.h.
uint32_t dropout_word(uint64_t c, int w, uint64_t key) {
  const uint64_t block = c * 16 + static_cast<uint64_t>(w % 16);
  const uint32_t ctr[4] = {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0, 0};
  const uint32_t k[2] = {static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)};
  uint32_t out[4];
  soma::kernels::cpu::philox4x32_reference(ctr, k, out);
  return out[w / 16];
}

template <typename T>
void check_dropout(int64_t n, double p, uint64_t key) {
  std::vector<T> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<T>(1 + i % 13);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  std::vector<T> ref_out(x.size()), ref_mask(x.size());
  for (int64_t i = 0; i < n; ++i) {
    T u;
    if constexpr (sizeof(T) == 4) {
      u = static_cast<float>(dropout_word(i / 64, static_cast<int>(i % 64), key) >> 8) * 0x1.0p-24f;
    } else {
      const uint64_t hi = dropout_word(i / 32, static_cast<int>(i % 32), key);
      const uint64_t lo = dropout_word(i / 32, static_cast<int>(i % 32) + 32, key);
      u = static_cast<double>(((hi << 32) | lo) >> 11) * 0x1.0p-53;
    }
    ref_mask[i] = u >= static_cast<T>(p) ? scale : T(0);
    ref_out[i] = x[i] * ref_mask[i];
  }
  ThreadsGuard guard;
  for (int threads : {1, 2, 3}) {
    soma::set_num_threads(threads);
    std::vector<T> out(x.size()), mask(x.size());
    soma::kernels::cpu::dropout<T>(x.data(), out.data(), mask.data(), n, p, key);
    EXPECT_EQ(out, ref_out) << "n " << n << " p " << p << " threads " << threads;
    EXPECT_EQ(mask, ref_mask) << "n " << n << " p " << p << " threads " << threads;
  }
}

TEST(KernelsDropout, MatchesDocumentedDrawAtAnyThreadCount) {
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{63}, int64_t{65}, int64_t{1000}, int64_t{40000},
                    int64_t{100003}}) {
    check_dropout<float>(n, 0.2, 0x0123456789abcdefULL);
    check_dropout<double>(n, 0.5, 0xfedcba9876543210ULL);
  }
  check_dropout<float>(5000, 0.0, 1);  // p = 0 keeps everything (u >= 0 always)
}
