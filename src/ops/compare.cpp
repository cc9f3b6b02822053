// isclose, allclose and equal: comparisons that tests and user code reach for (torch.isclose,
// torch.allclose, torch.equal). Not differentiable; computed in float64 on broadcast copies.
#include <cmath>
#include <vector>

#include "core/tensor_impl.h"
#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"
#include "soma/ops/shape.h"

namespace soma {

Tensor isclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  SOMA_CHECK(a.defined() && b.defined(), "isclose: called with an undefined tensor");
  SOMA_CHECK(rtol >= 0 && atol >= 0, "isclose: rtol ", rtol, " and atol ", atol,
             " must be non-negative");
  NoGradGuard no_grad;
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "isclose");
  const std::vector<double> x = expand(a, shape).to(kFloat64).contiguous().to_vector<double>();
  const std::vector<double> y = expand(b, shape).to(kFloat64).contiguous().to_vector<double>();
  Tensor out = detail::make_tensor(shape, kBool);
  bool* o = out.data<bool>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i]))
      o[i] = equal_nan && std::isnan(x[i]) && std::isnan(y[i]);
    else if (std::isinf(x[i]) || std::isinf(y[i]))
      o[i] = x[i] == y[i];  // an infinity is close only to itself (atol + rtol * inf is inf)
    else
      o[i] = x[i] == y[i] || std::abs(x[i] - y[i]) <= atol + rtol * std::abs(y[i]);
  }
  return out;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  const Tensor c = isclose(a, b, rtol, atol, equal_nan);
  const bool* p = c.data<bool>();
  for (int64_t i = 0; i < c.numel(); ++i)
    if (!p[i]) return false;
  return true;
}

bool equal(const Tensor& a, const Tensor& b) {
  SOMA_CHECK(a.defined() && b.defined(), "equal: called with an undefined tensor");
  if (a.shape() != b.shape()) return false;
  NoGradGuard no_grad;
  return a.to(kFloat64).contiguous().to_vector<double>() ==
         b.to(kFloat64).contiguous().to_vector<double>();
}

}  // namespace soma
