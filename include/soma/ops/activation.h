// Activations (elementwise non-linearities) and softmax, differentiable in float32/float64.
//
//   relu(x)        = max(x, 0)                    gradient 1 for x > 0, else 0
//   sigmoid(x)     = 1 / (1 + e^-x)               gradient s (1 - s)
//   tanh(x)                                       gradient 1 - tanh(x)^2
//   leaky_relu(x)  = x > 0 ? x : slope x
//   gelu(x)        = x Phi(x) = x/2 (1 + erf(x/sqrt 2))   (PyTorch's exact form)
//   softmax(x, d)  = exp(x - max) / sum exp(x - max)     along dim d; stable for logits of 1e3
//   log_softmax    = x - max - log sum exp(x - max)
#pragma once

#include "soma/core/tensor.h"

namespace soma {

Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor gelu(const Tensor& x);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace soma
