// Activations (elementwise non-linearities) and softmax, differentiable in float32/float64 and
// twice differentiable (backward with create_graph), with PyTorch's parameters and defaults.
//
//   relu(x)        = max(x, 0)                    gradient 1 for x > 0, else 0
//   sigmoid(x)     = 1 / (1 + e^-x)               gradient s (1 - s)
//   tanh(x)                                       gradient 1 - tanh(x)^2
//   leaky_relu(x)  = x > 0 ? x : slope x
//   gelu(x)        = x Phi(x) = x/2 (1 + erf(x/sqrt 2))   (PyTorch's exact form)
//   softmax(x, d)  = exp(x - max) / sum exp(x - max)     along dim d; stable for logits of 1e3
//   log_softmax    = x - max - log sum exp(x - max)
//   softmin(x, d)  = softmax(-x, d)
//   elu(x, a)      = x > 0 ? x : a (e^x - 1)
//   selu(x)        = scale elu(x, alpha), alpha = 1.6732632..., scale = 1.0507009...
//   celu(x, a)     = max(0, x) + min(0, a (e^(x/a) - 1))        (a != 0)
//   silu(x)        = x sigmoid(x)
//   mish(x)        = x tanh(softplus(x))
//   softplus(x, b, t) = log(1 + e^(b x)) / b, or x where b x > t
//   hardtanh(x, lo, hi) = clamp(x, lo, hi)                    gradient 0 outside (lo, hi)
//   hardsigmoid(x) = clamp(x / 6 + 1/2, 0, 1)
//   hardswish(x)   = x clamp(x + 3, 0, 6) / 6
//   log_sigmoid(x) = -softplus(-x)
//   prelu(x, w)    = x > 0 ? x : w x, w of 1 or C (= x.size(1)) entries broadcast over dim 1
//   glu(x, d)      = a sigmoid(b), a and b the halves of x along d (an even size)
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
Tensor softmin(const Tensor& x, int64_t dim);

Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor selu(const Tensor& x);
Tensor celu(const Tensor& x, double alpha = 1.0);
Tensor silu(const Tensor& x);
Tensor mish(const Tensor& x);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
Tensor hardtanh(const Tensor& x, double min_val = -1.0, double max_val = 1.0);
Tensor hardsigmoid(const Tensor& x);
Tensor hardswish(const Tensor& x);
Tensor log_sigmoid(const Tensor& x);
Tensor prelu(const Tensor& x, const Tensor& weight);
Tensor glu(const Tensor& x, int64_t dim = -1);

}  // namespace soma
