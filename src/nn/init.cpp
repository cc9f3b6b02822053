// torch.nn.init's formulas (torch/nn/init.py, PyTorch 1.13).
#include "soma/nn/init.h"

#include <cmath>

#include "soma/autograd/grad_mode.h"
#include "soma/core/error.h"
#include "soma/ops/elementwise.h"

namespace soma::nn::init {

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity.rfind("conv", 0) == 0)
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu") return 3.0 / 4.0;
  detail::fail("calculate_gain: unsupported nonlinearity '", nonlinearity, "'");
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  SOMA_CHECK(t.dim() >= 2, "calculate_fan_in_and_fan_out: fan in and fan out cannot be computed ",
             "for a tensor with fewer than 2 dims (shape ", t.shape(), ")");
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

namespace {

// Writes `values` (a fresh tensor of t's shape) into t without recording a graph.
Tensor assign(Tensor t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
  return t;
}

void check(const Tensor& t, const char* op) {
  SOMA_CHECK(t.defined() && is_floating(t.dtype()), op, ": expected a floating-point tensor");
}

}  // namespace

Tensor uniform_(Tensor t, double a, double b) {
  check(t, "uniform_");
  SOMA_CHECK(a <= b, "uniform_: a (", a, ") must not exceed b (", b, ")");
  return assign(t, rand(t.shape(), t.dtype()) * (b - a) + a);
}

Tensor normal_(Tensor t, double mean, double std) {
  check(t, "normal_");
  SOMA_CHECK(std >= 0, "normal_: std must be non-negative, got ", std);
  return assign(t, randn(t.shape(), t.dtype()) * std + mean);
}

Tensor constant_(Tensor t, double value) {
  check(t, "constant_");
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}
Tensor zeros_(Tensor t) {
  return constant_(t, 0.0);
}
Tensor ones_(Tensor t) {
  return constant_(t, 1.0);
}

Tensor xavier_uniform_(Tensor t, double gain) {
  check(t, "xavier_uniform_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  const double a = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform_(t, -a, a);
}

Tensor xavier_normal_(Tensor t, double gain) {
  check(t, "xavier_normal_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  return normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)));
}

namespace {

double kaiming_std(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  const int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  SOMA_CHECK(fan > 0, "kaiming init: fan is 0 for a tensor of shape ", t.shape());
  return calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan));
}

}  // namespace

Tensor kaiming_uniform_(Tensor t, double a, FanMode mode, const std::string& nonlinearity) {
  check(t, "kaiming_uniform_");
  const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  return uniform_(t, -bound, bound);
}

Tensor kaiming_normal_(Tensor t, double a, FanMode mode, const std::string& nonlinearity) {
  check(t, "kaiming_normal_");
  return normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity));
}

}  // namespace soma::nn::init
