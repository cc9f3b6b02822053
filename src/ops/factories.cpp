// Factories (linspace, eye, one_hot) and random sampling from the global generator
// (bernoulli, multinomial, and the in-place fills normal_, uniform_, bernoulli_).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "core/dispatch.h"
#include "core/tensor_impl.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/core/random.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/reduce.h"

namespace soma {

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  SOMA_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
  SOMA_CHECK(dtype != kBool, "linspace: dtype bool is not supported");
  Tensor out = detail::make_tensor({steps}, dtype);
  auto fill = [&]<typename T, typename C>() {  // computed in C, stored as T
    T* p = out.data<T>();
    if (steps == 1) p[0] = static_cast<T>(start);
    if (steps <= 1) return;
    // PyTorch's symmetric form: the first half steps up from start, the second down from end.
    if constexpr (std::is_integral_v<T>)
      SOMA_CHECK(std::abs(start) < 9.2e18 && std::abs(end) < 9.2e18, "linspace: start ", start,
                 " and end ", end, " must fit in ", dtype);
    // An integer dtype converts start and end first, as PyTorch does (linspace(-5.5, 5, 6,
    // int64) steps from -5).
    const C s =
        std::is_integral_v<T> ? static_cast<C>(static_cast<T>(start)) : static_cast<C>(start);
    const C e = std::is_integral_v<T> ? static_cast<C>(static_cast<T>(end)) : static_cast<C>(end);
    const C step = (e - s) / static_cast<C>(steps - 1);
    const int64_t half = steps / 2;
    // One rounding per value (a fused multiply-add), as PyTorch's kernel computes it: written
    // out, so the result does not depend on whether the compiler contracts a * b + c
    // (linspace(-1, 1, 7)[3] is -2^-25 fused and 0 with two roundings).
    for (int64_t i = 0; i < steps; ++i)
      p[i] = static_cast<T>(i < half ? std::fma(step, static_cast<C>(i), s)
                                     : std::fma(-step, static_cast<C>(steps - 1 - i), e));
  };
  detail::dispatch_all(dtype, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float>)
      fill.template operator()<float, float>();
    else
      fill.template operator()<T, double>();
  });
  return out;
}

Tensor eye(int64_t n, DType dtype) {
  return eye(n, n, dtype);
}

Tensor eye(int64_t n, int64_t m, DType dtype) {
  SOMA_CHECK(n >= 0, "eye: n must be greater or equal to 0, got ", n);
  SOMA_CHECK(m >= 0, "eye: m must be greater or equal to 0, got ", m);
  Tensor out = zeros({n, m}, dtype);
  detail::dispatch_all(dtype, [&]<typename T>() {
    T* p = out.data<T>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = static_cast<T>(1);
  });
  return out;
}

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  SOMA_CHECK(indices.defined(), "one_hot: called with an undefined tensor");
  SOMA_CHECK(indices.dtype() == kInt64,
             "one_hot: one_hot is only applicable to index tensor (int64), got ", indices.dtype());
  const std::vector<int64_t> v = indices.to_vector<int64_t>();
  if (num_classes == -1) {
    SOMA_CHECK(!v.empty(), "one_hot: Can not infer total number of classes from empty tensor.");
    num_classes = *std::max_element(v.begin(), v.end()) + 1;
  }
  SOMA_CHECK(num_classes >= 0, "one_hot: num_classes must be -1 or non-negative, got ",
             num_classes);
  for (size_t i = 0; i < v.size(); ++i) {
    SOMA_CHECK(v[i] >= 0, "one_hot: Class values must be non-negative, got ", v[i],
               " at flat index ", i);
    SOMA_CHECK(v[i] < num_classes, "one_hot: Class values must be smaller than num_classes (",
               num_classes, "), got ", v[i], " at flat index ", i);
  }
  Shape shape = indices.shape();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, kInt64);
  int64_t* p = out.data<int64_t>();
  for (size_t i = 0; i < v.size(); ++i) p[static_cast<int64_t>(i) * num_classes + v[i]] = 1;
  return out;
}

namespace {

void check_probability(double p, const char* op) {
  SOMA_CHECK(p >= 0.0 && p <= 1.0, op, ": p must be in [0, 1], got ", p);
}

void check_probabilities(const Tensor& p, const char* op) {
  SOMA_CHECK(p.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(is_floating(p.dtype()), op, ": probabilities must be float32 or float64, got ",
             p.dtype());
  const std::vector<double> v = p.to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i)
    SOMA_CHECK(v[i] >= 0.0 && v[i] <= 1.0, op, ": p must be in [0, 1], got ", v[i],
               " at flat index ", i);
}

// 0/1 draws of `dtype`, u < p with u ~ U[0, 1) drawn in float64 (outside the graph).
Tensor draws(const Shape& shape, const Tensor& p, DType dtype) {
  NoGradGuard no_grad;
  return lt(rand(shape, kFloat64), p.detach().to(kFloat64)).to(dtype);
}

}  // namespace

Tensor bernoulli(const Tensor& p) {
  check_probabilities(p, "bernoulli");
  return draws(p.shape(), p, p.dtype());
}

Tensor bernoulli(const Tensor& x, double p) {
  SOMA_CHECK(x.defined(), "bernoulli: called with an undefined tensor");
  check_probability(p, "bernoulli");
  SOMA_CHECK(is_floating(x.dtype()), "bernoulli: input must be float32 or float64, got ",
             x.dtype());
  return draws(x.shape(), full({}, p, kFloat64), x.dtype());
}

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement) {
  const char* op = "multinomial";
  SOMA_CHECK(probs.defined(), op, ": called with an undefined tensor");
  SOMA_CHECK(probs.dim() == 1 || probs.dim() == 2, op, ": prob_dist must be 1 or 2 dim, got shape ",
             probs.shape());
  SOMA_CHECK(is_floating(probs.dtype()), op, ": probabilities must be float32 or float64, got ",
             probs.dtype());
  SOMA_CHECK(num_samples > 0, op,
             ": cannot sample n_sample <= 0 samples (num_samples=", num_samples, ")");
  const int64_t rows = probs.dim() == 2 ? probs.size(0) : 1, n = probs.size(-1);
  SOMA_CHECK(n > 0, op, ": number of categories cannot be zero");
  SOMA_CHECK(replacement || num_samples <= n, op, ": cannot sample n_sample > prob_dist.size(-1) ",
             "samples without replacement (num_samples=", num_samples, ", categories=", n, ")");
  const std::vector<double> w = probs.to_vector<double>();
  for (int64_t r = 0; r < rows; ++r) {
    double total = 0;
    for (int64_t c = 0; c < n; ++c) {
      const double v = w[r * n + c];
      SOMA_CHECK(std::isfinite(v) && v >= 0, op,
                 ": probability tensor contains either `inf`, `nan` or element < 0 (", v,
                 " in row ", r, ", category ", c, ")");
      total += v;
    }
    SOMA_CHECK(total > 0, op, ": invalid multinomial distribution (sum of probabilities <= 0) in ",
               "row ", r);
  }
  Shape shape = probs.dim() == 2 ? Shape{rows, num_samples} : Shape{num_samples};
  Tensor out = detail::make_tensor(shape, kInt64);
  int64_t* o = out.data<int64_t>();
  std::vector<double> cdf(static_cast<size_t>(n)), key(static_cast<size_t>(n));
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = w.data() + r * n;
    if (replacement) {
      std::partial_sum(row, row + n, cdf.begin());
      for (int64_t s = 0; s < num_samples; ++s) {
        const double u = detail::random_uniform() * cdf.back();
        int64_t c = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
        // never a zero-weight category (u lands past the last positive one only by rounding)
        c = std::min(c, n - 1);
        while (c > 0 && row[c] == 0) --c;
        o[r * num_samples + s] = c;
      }
    } else {
      // Without replacement: the num_samples largest keys w_c / E_c, E_c ~ Exp(1), which
      // draws categories one at a time proportionally to the remaining weight (PyTorch's
      // method; zero-weight categories come last, lowest index first).
      for (int64_t c = 0; c < n; ++c)
        key[c] = row[c] == 0 ? 0.0 : row[c] / -std::log1p(-detail::random_uniform());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return key[a] > key[b]; });
      for (int64_t s = 0; s < num_samples; ++s) o[r * num_samples + s] = order[s];
    }
  }
  return out;
}

Tensor& Tensor::normal_(double mean, double sd) {
  SOMA_CHECK(defined(), "normal_: called on an undefined tensor");
  SOMA_CHECK(is_floating(dtype()), "normal_: tensor must be float32 or float64, got ", dtype());
  SOMA_CHECK(sd >= 0.0, "normal_: normal expects std >= 0.0, but found std ", sd);
  Tensor values;
  {
    NoGradGuard no_grad;
    values = randn(shape(), dtype()) * sd + mean;
  }
  return copy_(values);
}

Tensor& Tensor::uniform_(double from, double to) {
  SOMA_CHECK(defined(), "uniform_: called on an undefined tensor");
  SOMA_CHECK(is_floating(dtype()), "uniform_: tensor must be float32 or float64, got ", dtype());
  SOMA_CHECK(from <= to,
             "uniform_: uniform_ expects to return a [from, to) range, but found from=", from,
             " > to=", to);
  Tensor values;
  {
    NoGradGuard no_grad;
    values = rand(shape(), kFloat64) * (to - from) + from;
  }
  return copy_(values.to(dtype()));
}

Tensor& Tensor::bernoulli_(double p) {
  SOMA_CHECK(defined(), "bernoulli_: called on an undefined tensor");
  check_probability(p, "bernoulli_");
  return copy_(draws(shape(), full({}, p, kFloat64), dtype()));
}

Tensor& Tensor::bernoulli_(const Tensor& p) {
  SOMA_CHECK(defined(), "bernoulli_: called on an undefined tensor");
  check_probabilities(p, "bernoulli_");
  SOMA_CHECK(broadcast_shapes(shape(), p.shape(), "bernoulli_") == shape(), "bernoulli_: p of ",
             "shape ", p.shape(), " cannot be broadcast to the tensor's shape ", shape());
  return copy_(draws(shape(), p, dtype()));
}

Tensor Tensor::bernoulli() const {
  return soma::bernoulli(*this);
}
Tensor Tensor::bernoulli(double p) const {
  return soma::bernoulli(*this, p);
}
Tensor Tensor::multinomial(int64_t num_samples, bool replacement) const {
  return soma::multinomial(*this, num_samples, replacement);
}

}  // namespace soma
