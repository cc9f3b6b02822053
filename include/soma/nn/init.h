// nn::init: in-place parameter initialisation with torch.nn.init's formulas. Each fills `t`
// (under NoGradGuard) from soma's generator and returns it (the same handle).
//   fan_in = t.size(1) * receptive field, fan_out = t.size(0) * receptive field
//   xavier_uniform_:  U(-a, a),  a = gain sqrt(6 / (fan_in + fan_out))
//   xavier_normal_:   N(0, std), std = gain sqrt(2 / (fan_in + fan_out))
//   kaiming_uniform_: U(-b, b),  b = gain sqrt(3 / fan),  gain = calculate_gain(nonlinearity, a)
//   kaiming_normal_:  N(0, std), std = gain / sqrt(fan)
#pragma once

#include <string>
#include <utility>

#include "soma/core/tensor.h"

namespace soma::nn::init {

enum class FanMode { FanIn, FanOut };

/// torch.nn.init.calculate_gain: "linear", "conv*", "sigmoid" -> 1; "tanh" -> 5/3;
/// "relu" -> sqrt(2); "leaky_relu" -> sqrt(2 / (1 + param^2)) (param default 0.01); "selu" -> 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
/// (fan_in, fan_out) of a tensor with at least 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

Tensor uniform_(Tensor t, double a = 0.0, double b = 1.0);
Tensor normal_(Tensor t, double mean = 0.0, double std = 1.0);
Tensor constant_(Tensor t, double value);
Tensor zeros_(Tensor t);
Tensor ones_(Tensor t);
Tensor xavier_uniform_(Tensor t, double gain = 1.0);
Tensor xavier_normal_(Tensor t, double gain = 1.0);
Tensor kaiming_uniform_(Tensor t, double a = 0.0, FanMode mode = FanMode::FanIn,
                        const std::string& nonlinearity = "leaky_relu");
Tensor kaiming_normal_(Tensor t, double a = 0.0, FanMode mode = FanMode::FanIn,
                       const std::string& nonlinearity = "leaky_relu");

}  // namespace soma::nn::init
