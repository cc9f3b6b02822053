#include "soma/nn/utils.h"

#include <cmath>
#include <limits>

#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"

namespace soma::nn::utils {

double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type) {
  SOMA_CHECK(max_norm >= 0 && !std::isnan(max_norm), "clip_grad_norm_: max_norm must be >= 0, got ",
             max_norm);
  SOMA_CHECK(norm_type > 0 && !std::isnan(norm_type),
             "clip_grad_norm_: norm_type must be > 0, got ", norm_type);
  const bool inf = std::isinf(norm_type);
  // total = (sum_p ||g_p||^q)^(1/q), each ||g_p|| computed first, as PyTorch does.
  double total = 0;
  bool any = false;
  for (const Tensor& p : parameters) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    any = true;
    double n = 0;
    for (double v : g.to_vector<double>())
      n = inf ? std::max(n, std::abs(v)) : n + std::pow(std::abs(v), norm_type);
    if (!inf) n = std::pow(n, 1.0 / norm_type);
    if (g.dtype() == kFloat32) n = static_cast<float>(n);
    total = inf ? std::max(total, n) : total + std::pow(n, norm_type);
  }
  if (!any) return 0.0;
  if (!inf) total = std::pow(total, 1.0 / norm_type);
  const double coef = std::min(1.0, max_norm / (total + 1e-6));
  NoGradGuard no_grad;
  for (const Tensor& p : parameters) {
    Tensor g = p.grad();
    if (g.defined()) g.mul_(coef);
  }
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value) {
  SOMA_CHECK(clip_value >= 0 && !std::isnan(clip_value),
             "clip_grad_value_: clip_value must be >= 0, got ", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& p : parameters) {
    Tensor g = p.grad();
    if (g.defined()) g.copy_(clamp(g, -clip_value, clip_value));
  }
}

}  // namespace soma::nn::utils
